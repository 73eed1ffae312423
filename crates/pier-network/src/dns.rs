//! The embedded DNS server of a user network: answers the names and
//! aliases of the network's containers, forwards the rest upstream.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};

pub use crate::dns_wire::{build_query, TYPE_A, TYPE_AAAA};
use crate::dns_wire::{
    fit_answer, parse_query, reply, Query, CLASS_IN, RCODE_BADVERS, RCODE_NXDOMAIN, RCODE_REFUSED,
    RCODE_SERVFAIL, TCP_SIZE,
};
use crate::error::{NetError, Result};

const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// Forwarded queries in flight, in all and per asking address: each holds a
/// socket for up to UPSTREAM_TIMEOUT, so a container flooding us with
/// names to forward must not take the daemon's descriptors or everyone's
/// turn. Names of the network are answered at once and never wait here.
const MAX_FORWARDS: usize = 256;
const MAX_FORWARDS_PER_CLIENT: usize = 32;
/// TCP connections, in all and per address, and how long one may sit idle.
const MAX_TCP: usize = 64;
const MAX_TCP_PER_CLIENT: usize = 8;
const TCP_IDLE: Duration = Duration::from_secs(10);

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

/// A bounded number of slots, in all and per client address.
struct Slots {
    used: Mutex<HashMap<IpAddr, usize>>,
    total: usize,
    per_client: usize,
}

/// One taken slot, given back on drop.
struct Slot {
    slots: Arc<Slots>,
    ip: IpAddr,
}

impl Slots {
    fn new(total: usize, per_client: usize) -> Arc<Slots> {
        Arc::new(Slots {
            used: Mutex::new(HashMap::new()),
            total,
            per_client,
        })
    }

    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let all: usize = used.values().sum();
        let mine = used.get(&ip).copied().unwrap_or(0);
        if all >= self.total || mine >= self.per_client {
            return None;
        }
        used.insert(ip, mine + 1);
        Some(Slot {
            slots: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut used = self.slots.used.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = used.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                used.remove(&self.ip);
            }
        }
    }
}

async fn serve(udp: Arc<UdpSocket>, tcp: TcpListener, r: Resolver) {
    let mut tasks = JoinSet::new();
    let forwards = Slots::new(MAX_FORWARDS, MAX_FORWARDS_PER_CLIENT);
    let conns = Slots::new(MAX_TCP, MAX_TCP_PER_CLIENT);
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            q = udp.recv_from(&mut buf) => {
                let Ok((n, from)) = q else { continue };
                // The serving task must outlive any packet: a panic while
                // reading one (none is known; see the fuzz tests) drops
                // that packet, not the network's name service.
                let plan = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    plan_udp(&r, &forwards, &buf[..n], from.ip())
                }));
                let (upstreams, limit, slot) = match plan {
                    Ok(UdpPlan::Drop) => continue,
                    Ok(UdpPlan::Send(a)) => {
                        let _ = udp.try_send_to(&a, from);
                        continue;
                    }
                    Ok(UdpPlan::Forward(ups, limit, slot)) => (ups, limit, slot),
                    Err(_) => {
                        tracing::error!("DNS: a query from {from} made the parser panic; dropped");
                        continue;
                    }
                };
                let (q, udp) = (buf[..n].to_vec(), udp.clone());
                tasks.spawn(async move {
                    let _slot = slot;
                    if let Some(a) = forward_or_fail(&q, &upstreams, limit).await {
                        let _ = udp.send_to(&a, from).await;
                    }
                });
            }
            c = tcp.accept() => {
                let Ok((s, from)) = c else { continue };
                let Some(slot) = conns.take(from.ip()) else { continue };
                let r = r.clone();
                tasks.spawn(async move {
                    let _slot = slot;
                    serve_tcp(s, from.ip(), r).await;
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// What to do with one UDP packet.
enum UdpPlan {
    Drop,
    Send(Vec<u8>),
    /// Ask these upstreams, answer within this size, holding this slot.
    Forward(Vec<SocketAddr>, usize, Slot),
}

fn plan_udp(r: &Resolver, forwards: &Arc<Slots>, packet: &[u8], from: IpAddr) -> UdpPlan {
    let Some(query) = parse_query(packet) else {
        return UdpPlan::Drop;
    };
    let limit = query.udp_limit();
    match r.local(&query, from, limit) {
        Ok(a) => UdpPlan::Send(a),
        Err(ups) => match forwards.take(from) {
            Some(slot) => UdpPlan::Forward(ups, limit, slot),
            None => UdpPlan::Send(reply(&query, RCODE_REFUSED.into(), &[], limit)),
        },
    }
}

/// Queries over one TCP connection (RFC 7766), until the client closes,
/// idles or sends what is not a query.
async fn serve_tcp(mut s: tokio::net::TcpStream, from: IpAddr, r: Resolver) {
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, s.read_u16()).await else {
            return;
        };
        let mut q = vec![0u8; len as usize];
        if !matches!(
            tokio::time::timeout(TCP_IDLE, s.read_exact(&mut q)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let a = match parse_query(&q) {
            None => return,
            Some(query) => match r.local(&query, from, TCP_SIZE) {
                Ok(a) => a,
                Err(ups) => match forward_or_fail(&q, &ups, TCP_SIZE).await {
                    Some(a) => a,
                    None => return,
                },
            },
        };
        let mut out = (a.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&a);
        if s.write_all(&out).await.is_err() {
            return;
        }
    }
}

impl Resolver {
    /// The answer to `q` from `from` when this server knows it; else the
    /// upstreams to ask.
    fn local(
        &self,
        q: &Query,
        from: IpAddr,
        limit: usize,
    ) -> std::result::Result<Vec<u8>, Vec<SocketAddr>> {
        if q.edns.is_some_and(|e| e.version > 0) {
            return Ok(reply(q, RCODE_BADVERS, &[], limit));
        }
        let ips = self.table.lookup(&q.name);
        if !ips.is_empty() && q.qclass == CLASS_IN {
            let ips = if q.qtype == TYPE_A { ips } else { Vec::new() };
            return Ok(reply(q, 0, &ips, limit));
        }
        // A container's short name that is not (or no longer) on the network
        // must not leak to the host's resolvers.
        if !q.name.contains('.') && matches!(q.qtype, TYPE_A | TYPE_AAAA) {
            return Ok(reply(q, RCODE_NXDOMAIN.into(), &[], limit));
        }
        Err(self
            .table
            .upstreams_for(from)
            .unwrap_or_else(|| self.upstreams.to_vec()))
    }
}

/// The upstream answer to `raw`, cut to `limit`; SERVFAIL if none answers.
async fn forward_or_fail(raw: &[u8], upstreams: &[SocketAddr], limit: usize) -> Option<Vec<u8>> {
    let q = parse_query(raw)?;
    Some(match forward(upstreams, raw).await {
        Some(a) => fit_answer(&q, a, limit),
        None => reply(&q, RCODE_SERVFAIL.into(), &[], limit),
    })
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
        if let Ok(Ok(n)) = tokio::time::timeout(UPSTREAM_TIMEOUT, s.recv(&mut buf)).await
            && n >= 2
            && buf[..2] == q[..2]
        {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

/// The rcode and A addresses of a reply (for tests and health checks).
pub fn parse_reply(a: &[u8]) -> Option<(u8, Vec<Ipv4Addr>)> {
    crate::dns_wire::parse_reply(a).map(|r| (r.rcode, r.ips))
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

    /// A client flooding names to forward (to an upstream that never
    /// answers) is refused beyond its share; another client still gets the
    /// network's names at once and its own forwards.
    #[tokio::test]
    async fn a_flooding_client_does_not_starve_another() {
        let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let t = DnsTable::default();
        t.set("c1", &["web".into()], Ipv4Addr::new(10, 0, 0, 2));
        let s = DnsServer::start(
            "127.0.0.1:0".parse().unwrap(),
            t,
            vec![sink.local_addr().unwrap()],
        )
        .await
        .unwrap();
        let flood = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for i in 0..200u16 {
            flood
                .send_to(&build_query(i, "x.example", TYPE_A), s.addr)
                .await
                .unwrap();
        }
        // Garbage in between must not matter either.
        for n in 0..200usize {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
            let _ = flood.send_to(&junk, s.addr).await;
        }
        let mut refused = 0;
        let mut b = [0u8; 512];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(500), flood.recv(&mut b)).await
        {
            if parse_reply(&b[..n]).map(|r| r.0) == Some(RCODE_REFUSED) {
                refused += 1;
            }
        }
        assert!(
            refused >= 200 - MAX_FORWARDS_PER_CLIENT,
            "only {refused} refused"
        );
        let other = UdpSocket::bind("127.0.0.2:0").await.unwrap();
        let t0 = std::time::Instant::now();
        other
            .send_to(&build_query(1, "web", TYPE_A), s.addr)
            .await
            .unwrap();
        let n = tokio::time::timeout(Duration::from_secs(1), other.recv(&mut b))
            .await
            .expect("the network's names answer at once")
            .unwrap();
        assert_eq!(
            parse_reply(&b[..n]).unwrap(),
            (0, vec![Ipv4Addr::new(10, 0, 0, 2)])
        );
        assert!(t0.elapsed() < Duration::from_secs(1));
        // Its forward gets a slot: it waits for the (silent) upstream and
        // ends in SERVFAIL, not REFUSED.
        other
            .send_to(&build_query(2, "y.example", TYPE_A), s.addr)
            .await
            .unwrap();
        let n = tokio::time::timeout(Duration::from_secs(6), other.recv(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(parse_reply(&b[..n]).unwrap().0, RCODE_SERVFAIL);
    }

    /// Large answers: truncated with TC over UDP to 512 bytes or the EDNS
    /// size (with the OPT record echoed), whole over TCP.
    #[tokio::test]
    async fn large_answers_truncate_over_udp_and_come_whole_over_tcp() {
        use crate::dns_wire::{parse_reply as full_reply, with_edns};
        let t = DnsTable::default();
        for i in 0..100u8 {
            t.set(
                &format!("c{i}"),
                &["many".into()],
                Ipv4Addr::new(10, 1, 0, i + 1),
            );
        }
        let s = DnsServer::start("127.0.0.1:0".parse().unwrap(), t, vec![])
            .await
            .unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut b = [0u8; 4096];
        for (q, max, edns) in [
            (build_query(1, "many", TYPE_A), 512, None),
            (
                with_edns(build_query(2, "many", TYPE_A), 4096),
                1232,
                Some(1232),
            ),
        ] {
            c.send_to(&q, s.addr).await.unwrap();
            let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut b))
                .await
                .unwrap()
                .unwrap();
            assert!(n <= max, "{n} > {max}");
            let r = full_reply(&b[..n]).unwrap();
            assert!(r.truncated, "TC set");
            assert_eq!(r.edns, edns);
        }
        let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let q = build_query(3, "many", TYPE_A);
        let mut msg = (q.len() as u16).to_be_bytes().to_vec();
        msg.extend_from_slice(&q);
        tcp.write_all(&msg).await.unwrap();
        let len = tcp.read_u16().await.unwrap() as usize;
        let mut a = vec![0u8; len];
        tcp.read_exact(&mut a).await.unwrap();
        let r = full_reply(&a).unwrap();
        assert_eq!((r.truncated, r.ips.len()), (false, 100));
    }
}
