//! The embedded DNS server of a user network: answers the names and
//! aliases of the network's containers, forwards the rest upstream.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};

use crate::error::{NetError, Result};

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const TTL: u32 = 600;
const RCODE_SERVFAIL: u8 = 2;
const RCODE_NXDOMAIN: u8 = 3;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// Names of one network: (owner, lowercase name, address). Several owners
/// may share a name (aliases); a lookup returns all their addresses.
#[derive(Debug, Default, Clone)]
pub struct DnsTable {
    entries: Arc<RwLock<Vec<(String, String, Ipv4Addr)>>>,
    /// Legacy links: (owner, alias, target name). The server cannot tell
    /// which container asks, so an alias resolves network-wide.
    links: Arc<RwLock<Vec<(String, String, String)>>>,
    /// Containers with their own servers (`--dns`): queries from the address
    /// go there instead of the daemon's upstreams, as Docker's embedded DNS
    /// does. Keyed by the asking address, with the owner for removal.
    upstreams: Arc<RwLock<HashMap<Ipv4Addr, OwnServers>>>,
}

/// The owner of an address and its servers.
type OwnServers = (String, Vec<SocketAddr>);

impl DnsTable {
    /// Replaces the names of `owner` (a container) with `names` -> `ip`.
    pub fn set(&self, owner: &str, names: &[String], ip: Ipv4Addr) {
        let mut e = self.entries.write().unwrap_or_else(|e| e.into_inner());
        e.retain(|(o, _, _)| o != owner);
        for n in names.iter().filter(|n| !n.is_empty()) {
            e.push((
                owner.to_string(),
                n.trim_end_matches('.').to_ascii_lowercase(),
                ip,
            ));
        }
    }

    /// Replaces the links of `owner`: each `(alias, target)` makes `alias`
    /// answer with the addresses of `target` (resolved at query time, so
    /// the target may start later).
    pub fn set_links(&self, owner: &str, links: &[(String, String)]) {
        let mut l = self.links.write().unwrap_or_else(|e| e.into_inner());
        l.retain(|(o, _, _)| o != owner);
        for (alias, target) in links {
            l.push((
                owner.to_string(),
                alias.to_ascii_lowercase(),
                target.to_ascii_lowercase(),
            ));
        }
    }

    /// Sets where names `owner` (at `ip`) asks for and this table does not
    /// know are forwarded; empty: the daemon's upstreams.
    pub fn set_upstreams(&self, owner: &str, ip: Ipv4Addr, servers: &[SocketAddr]) {
        let mut u = self.upstreams.write().unwrap_or_else(|e| e.into_inner());
        u.retain(|_, (o, _)| o != owner);
        if !servers.is_empty() {
            u.insert(ip, (owner.to_string(), servers.to_vec()));
        }
    }

    /// The servers of the container at `ip`, if it has its own.
    pub fn upstreams_for(&self, ip: IpAddr) -> Option<Vec<SocketAddr>> {
        let IpAddr::V4(ip) = ip else { return None };
        let u = self.upstreams.read().unwrap_or_else(|e| e.into_inner());
        u.get(&ip).map(|(_, s)| s.clone())
    }

    pub fn remove(&self, owner: &str) {
        let mut e = self.entries.write().unwrap_or_else(|e| e.into_inner());
        e.retain(|(o, _, _)| o != owner);
        drop(e);
        let mut l = self.links.write().unwrap_or_else(|e| e.into_inner());
        l.retain(|(o, _, _)| o != owner);
        drop(l);
        let mut u = self.upstreams.write().unwrap_or_else(|e| e.into_inner());
        u.retain(|_, (o, _)| o != owner);
    }

    pub fn lookup(&self, name: &str) -> Vec<Ipv4Addr> {
        let direct = self.lookup_direct(name);
        if !direct.is_empty() {
            return direct;
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let target = {
            let l = self.links.read().unwrap_or_else(|e| e.into_inner());
            l.iter()
                .find(|(_, a, _)| *a == name)
                .map(|(_, _, t)| t.clone())
        };
        target.map(|t| self.lookup_direct(&t)).unwrap_or_default()
    }

    fn lookup_direct(&self, name: &str) -> Vec<Ipv4Addr> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let e = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<Ipv4Addr> = Vec::new();
        for (_, n, ip) in e.iter() {
            if *n == name && !out.contains(ip) {
                out.push(*ip);
            }
        }
        out
    }
}

/// The nameservers of a resolv.conf, as upstreams on port 53.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let servers: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .collect();
    parse_servers(&servers)
}

/// `--dns` values (`1.2.3.4`, `::1`, `1.2.3.4:5353`) as socket addresses;
/// what does not parse is left out.
pub fn parse_servers<S: AsRef<str>>(servers: &[S]) -> Vec<SocketAddr> {
    servers
        .iter()
        .filter_map(|a| {
            let a = a.as_ref().trim();
            a.parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, 53))
                .or_else(|_| a.parse::<SocketAddr>())
                .ok()
        })
        .collect()
}

/// A running server; dropping it stops it.
pub struct DnsServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DnsServer {
    /// Serves UDP and TCP on `addr` (port 0: any, for tests).
    pub async fn start(
        addr: SocketAddr,
        table: DnsTable,
        upstreams: Vec<SocketAddr>,
    ) -> Result<DnsServer> {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|e| NetError::io(format!("bind DNS {addr}/udp"), e))?;
        let addr = udp
            .local_addr()
            .map_err(|e| NetError::io("DNS socket address", e))?;
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|e| NetError::io(format!("bind DNS {addr}/tcp"), e))?;
        let r = Resolver {
            table,
            upstreams: Arc::new(upstreams),
        };
        let task = tokio::spawn(serve(Arc::new(udp), tcp, r));
        Ok(DnsServer { addr, task })
    }
}

#[derive(Clone)]
struct Resolver {
    table: DnsTable,
    upstreams: Arc<Vec<SocketAddr>>,
}

async fn serve(udp: Arc<UdpSocket>, tcp: TcpListener, r: Resolver) {
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            q = udp.recv_from(&mut buf) => {
                let Ok((n, from)) = q else { continue };
                let (q, udp, r) = (buf[..n].to_vec(), udp.clone(), r.clone());
                tasks.spawn(async move {
                    if let Some(a) = r.answer(&q, from.ip()).await {
                        let _ = udp.send_to(&a, from).await;
                    }
                });
            }
            c = tcp.accept() => {
                let Ok((mut s, from)) = c else { continue };
                let r = r.clone();
                tasks.spawn(async move {
                    loop {
                        let Ok(len) = s.read_u16().await else { return };
                        let mut q = vec![0u8; len as usize];
                        if s.read_exact(&mut q).await.is_err() {
                            return;
                        }
                        let Some(a) = r.answer(&q, from.ip()).await else { return };
                        let mut out = (a.len() as u16).to_be_bytes().to_vec();
                        out.extend_from_slice(&a);
                        if s.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// The question of a query: name, type, class and where it ends.
struct Question {
    name: String,
    qtype: u16,
    qclass: u16,
    end: usize,
}

fn parse_question(q: &[u8]) -> Option<Question> {
    if q.len() < 12 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        // Queries carry no compression pointers in the question.
        if len & 0xC0 != 0 {
            return None;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).into_owned());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let qclass = u16::from_be_bytes([*q.get(i + 2)?, *q.get(i + 3)?]);
    Some(Question {
        name: labels.join("."),
        qtype,
        qclass,
        end: i + 4,
    })
}

/// A reply to `q` with `rcode` and A records for `ips`.
fn reply(q: &[u8], question: &Question, rcode: u8, ips: &[Ipv4Addr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(question.end + ips.len() * 16);
    out.extend_from_slice(&q[0..2]);
    // QR, the query's opcode and RD, AA, RA.
    let opcode_rd = q[2] & 0x79;
    out.push(0x80 | opcode_rd | 0x04);
    out.push(0x80 | (rcode & 0x0F));
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(ips.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&q[12..question.end]);
    for ip in ips {
        out.extend_from_slice(&[0xC0, 0x0C]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    out
}

impl Resolver {
    /// The reply to query `q` from `from`.
    async fn answer(&self, q: &[u8], from: IpAddr) -> Option<Vec<u8>> {
        let question = parse_question(q)?;
        let ips = self.table.lookup(&question.name);
        if !ips.is_empty() && question.qclass == CLASS_IN {
            let ips = if question.qtype == TYPE_A {
                ips
            } else {
                Vec::new()
            };
            return Some(reply(q, &question, 0, &ips));
        }
        // A container's short name that is not (or no longer) on the network
        // must not leak to the host's resolvers.
        if !question.name.contains('.') && matches!(question.qtype, TYPE_A | TYPE_AAAA) {
            return Some(reply(q, &question, RCODE_NXDOMAIN, &[]));
        }
        let own = self.table.upstreams_for(from);
        let ups = own.as_deref().unwrap_or(&self.upstreams);
        match forward(ups, q).await {
            Some(a) => Some(a),
            None => Some(reply(q, &question, RCODE_SERVFAIL, &[])),
        }
    }
}

async fn forward(upstreams: &[SocketAddr], q: &[u8]) -> Option<Vec<u8>> {
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(s) = UdpSocket::bind(bind).await else {
            continue;
        };
        if s.connect(up).await.is_err() || s.send(q).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok(n)) = tokio::time::timeout(UPSTREAM_TIMEOUT, s.recv(&mut buf)).await {
            if n >= 2 && buf[..2] == q[..2] {
                buf.truncate(n);
                return Some(buf);
            }
        }
    }
    None
}

/// Builds an A query for `name` (for tests and health checks).
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.trim_end_matches('.').split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q
}

/// The rcode and A addresses of a reply made by this module (answers
/// right after the question, names as pointers).
pub fn parse_reply(a: &[u8]) -> Option<(u8, Vec<Ipv4Addr>)> {
    let question = parse_question(a)?;
    let rcode = a[3] & 0x0F;
    let count = u16::from_be_bytes([a[6], a[7]]) as usize;
    let mut i = question.end;
    let mut ips = Vec::new();
    for _ in 0..count {
        // name (pointer or labels), type, class, ttl, rdlength, rdata
        if a.get(i)? & 0xC0 == 0xC0 {
            i += 2;
        } else {
            while *a.get(i)? != 0 {
                i += 1 + *a.get(i)? as usize;
            }
            i += 1;
        }
        let t = u16::from_be_bytes([*a.get(i)?, *a.get(i + 1)?]);
        let len = u16::from_be_bytes([*a.get(i + 8)?, *a.get(i + 9)?]) as usize;
        let data = a.get(i + 10..i + 10 + len)?;
        if t == TYPE_A && len == 4 {
            ips.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        i += 10 + len;
    }
    Some((rcode, ips))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_resolv_conf() {
        let t = DnsTable::default();
        t.set(
            "c1",
            &["web".into(), "Alias".into()],
            Ipv4Addr::new(10, 0, 0, 2),
        );
        t.set("c2", &["alias".into()], Ipv4Addr::new(10, 0, 0, 3));
        assert_eq!(t.lookup("WEB."), vec![Ipv4Addr::new(10, 0, 0, 2)]);
        assert_eq!(t.lookup("alias").len(), 2);
        t.set_links("c2", &[("db".into(), "web".into())]);
        assert_eq!(t.lookup("db"), vec![Ipv4Addr::new(10, 0, 0, 2)]);
        t.remove("c1");
        assert!(t.lookup("web").is_empty());
        assert!(t.lookup("db").is_empty());
        let u =
            upstreams_from_resolv_conf("# x\nnameserver 127.0.0.53\nsearch lan\nnameserver ::1\n");
        assert_eq!(u.len(), 2);
        assert_eq!(u[0], "127.0.0.53:53".parse().unwrap());
    }

    #[tokio::test]
    async fn answers_known_names_nxdomain_short_ones_servfail_without_upstream() {
        let t = DnsTable::default();
        t.set("c1", &["web".into()], Ipv4Addr::new(10, 0, 0, 2));
        let s = DnsServer::start("127.0.0.1:0".parse().unwrap(), t, vec![])
            .await
            .unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let ask = |name: &str, qt: u16| build_query(7, name, qt);
        let mut b = [0u8; 512];
        for (name, qt, rc, n) in [
            ("web", TYPE_A, 0, 1),
            ("web", TYPE_AAAA, 0, 0),
            ("nope", TYPE_A, 3, 0),
            ("x.example", TYPE_A, 2, 0),
        ] {
            c.send_to(&ask(name, qt), s.addr).await.unwrap();
            let len = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut b))
                .await
                .unwrap()
                .unwrap();
            let (rcode, ips) = parse_reply(&b[..len]).unwrap();
            assert_eq!((rcode, ips.len()), (rc, n), "{name}");
        }
    }
    #[tokio::test]
    async fn a_container_with_its_own_servers_is_forwarded_there() {
        let far = DnsTable::default();
        far.set("x", &["x.example".into()], Ipv4Addr::new(10, 9, 9, 9));
        let up = DnsServer::start("127.0.0.1:0".parse().unwrap(), far, vec![])
            .await
            .unwrap();
        let t = DnsTable::default();
        let s = DnsServer::start("127.0.0.1:0".parse().unwrap(), t.clone(), vec![])
            .await
            .unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        async fn ask(c: &UdpSocket, s: SocketAddr) -> (u8, Vec<Ipv4Addr>) {
            let mut b = [0u8; 512];
            c.send_to(&build_query(9, "x.example", TYPE_A), s)
                .await
                .unwrap();
            let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut b))
                .await
                .unwrap()
                .unwrap();
            parse_reply(&b[..n]).unwrap()
        }
        t.set_upstreams("c1", Ipv4Addr::LOCALHOST, &[up.addr]);
        assert_eq!(ask(&c, s.addr).await, (0, vec![Ipv4Addr::new(10, 9, 9, 9)]));
        // Without its own servers: the daemon's (none here).
        t.set_upstreams("c1", Ipv4Addr::LOCALHOST, &[]);
        assert_eq!(ask(&c, s.addr).await, (2, vec![]));
        assert_eq!(
            parse_servers(&["1.2.3.4", "::1", "1.2.3.4:5353", "bad"]),
            [
                "1.2.3.4:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap(),
                "1.2.3.4:5353".parse().unwrap()
            ]
        );
    }
}
