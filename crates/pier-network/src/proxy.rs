//! Userland proxies for published ports, like docker-proxy.
//!
//! Why a proxy beside the DNAT rules: connections to 127.0.0.1 never cross
//! the nat prerouting hook, and DNAT'ing them to a bridge address needs
//! `route_localnet=1`, which makes the host route loopback addresses off-box
//! (a known hole). Holding the listening socket also reserves the host port,
//! so a taken port fails at bind time with Docker's message, before the
//! container starts.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};

use crate::error::{NetError, Result};

/// How long a UDP client's flow is kept without traffic.
const UDP_IDLE: Duration = Duration::from_secs(90);

/// A running proxy; dropping it closes the port and every connection.
pub struct PortProxy {
    pub proto: String,
    pub host_ip: IpAddr,
    pub host_port: u16,
    task: JoinHandle<()>,
}

impl Drop for PortProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for PortProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            SocketAddr::new(self.host_ip, self.host_port),
            self.proto
        )
    }
}

fn allocated(ip: IpAddr, port: u16) -> NetError {
    NetError::Conflict(format!(
        "Bind for {} failed: port is already allocated",
        SocketAddr::new(ip, port)
    ))
}

/// Whether this network namespace has IPv6 (any interface with an IPv6
/// address, loopback's `::1` included): Docker then publishes a port on
/// `[::]` beside `0.0.0.0`.
pub fn host_has_ipv6() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6").is_ok_and(|s| !s.trim().is_empty())
}

/// Binds `host_ip` on the first free port of `ports` (`0..=0`: any port the
/// kernel picks) and forwards what arrives there to `target`.
pub fn start(
    proto: &str,
    host_ip: IpAddr,
    ports: std::ops::RangeInclusive<u16>,
    target: SocketAddrV4,
) -> Result<PortProxy> {
    let (lo, hi) = (*ports.start(), *ports.end());
    for port in ports {
        let addr = SocketAddr::new(host_ip, port);
        let bound = match proto {
            "tcp" => bind_tcp(addr).map(|l| {
                let p = l.local_addr().map(|a| a.port()).unwrap_or(port);
                (p, tokio::spawn(serve_tcp(l, target)))
            }),
            "udp" => bind_udp(addr).map(|s| {
                let p = s.local_addr().map(|a| a.port()).unwrap_or(port);
                (p, tokio::spawn(serve_udp(Arc::new(s), target)))
            }),
            other => {
                return Err(NetError::InvalidArgument(format!(
                    "unsupported protocol for published port: {other}"
                )))
            }
        };
        match bound {
            Ok((host_port, task)) => {
                return Ok(PortProxy {
                    proto: proto.to_string(),
                    host_ip,
                    host_port,
                    task,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(NetError::io(format!("bind {addr}/{proto}"), e)),
        }
    }
    Err(if lo == hi {
        allocated(host_ip, lo)
    } else {
        let ip = match host_ip {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        NetError::Conflict(format!(
            "Bind for {ip}:{lo}-{hi} failed: all ports are already allocated"
        ))
    })
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => {
            let s = TcpSocket::new_v6()?;
            v6_only(&s)?;
            s
        }
    };
    // Restarting the daemon must be able to take its ports back while old
    // connections linger in TIME_WAIT.
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    s.listen(1024)
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = match addr {
        SocketAddr::V4(_) => std::net::UdpSocket::bind(addr)?,
        SocketAddr::V6(a) => {
            use nix::sys::socket as ns;
            use std::os::fd::AsRawFd as _;
            let fd = ns::socket(
                ns::AddressFamily::Inet6,
                ns::SockType::Datagram,
                ns::SockFlag::SOCK_CLOEXEC,
                None,
            )?;
            v6_only(&fd)?;
            ns::bind(fd.as_raw_fd(), &ns::SockaddrIn6::from(a))?;
            std::net::UdpSocket::from(fd)
        }
    };
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}

/// `[::]` only for IPv6: `0.0.0.0` on the same port is a proxy of its own,
/// as docker-proxy binds the two.
fn v6_only(fd: &impl std::os::fd::AsFd) -> std::io::Result<()> {
    nix::sys::socket::setsockopt(fd, nix::sys::socket::sockopt::Ipv6V6Only, &true)
        .map_err(std::io::Error::from)
}

async fn serve_tcp(l: TcpListener, target: SocketAddrV4) {
    // Owned here so that aborting the accept loop ends every connection.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = l.accept() => {
                let Ok((mut client, _)) = r else { continue };
                conns.spawn(async move {
                    let Ok(mut up) = TcpStream::connect(target).await else { return };
                    let _ = client.set_nodelay(true);
                    let _ = up.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve_udp(sock: Arc<UdpSocket>, target: SocketAddrV4) {
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; 65536];
    loop {
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let Ok((n, client)) = r else { continue };
                let existing = flows.lock().unwrap_or_else(|e| e.into_inner()).get(&client).cloned();
                let up = match existing {
                    Some(u) => u,
                    None => {
                        let Ok(u) = UdpSocket::bind("0.0.0.0:0").await else { continue };
                        if u.connect(target).await.is_err() {
                            continue;
                        }
                        let u = Arc::new(u);
                        flows.lock().unwrap_or_else(|e| e.into_inner()).insert(client, u.clone());
                        let (sock, flows, u2) = (sock.clone(), flows.clone(), u.clone());
                        tasks.spawn(async move {
                            let mut b = vec![0u8; 65536];
                            while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, u2.recv(&mut b)).await {
                                let _ = sock.send_to(&b[..n], client).await;
                            }
                            flows.lock().unwrap_or_else(|e| e.into_inner()).remove(&client);
                        });
                        u
                    }
                };
                let _ = up.send(&buf[..n]).await;
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn tcp_and_udp_round_trip_on_loopback() {
        let lo = IpAddr::from([127, 0, 0, 1]);
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = match echo.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).await.unwrap();
            s.write_all(&b).await.unwrap();
        });
        let p = start("tcp", lo, 0..=0, echo_addr).unwrap();
        assert_ne!(p.host_port, 0);
        // The same port again is refused with Docker's words.
        let e = start("tcp", lo, p.host_port..=p.host_port, echo_addr).unwrap_err();
        assert!(e.to_string().contains("port is already allocated"), "{e}");
        let mut c = TcpStream::connect((lo, p.host_port)).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut b = [0u8; 5];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"hello");

        let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let uaddr = match u.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        tokio::spawn(async move {
            let mut b = [0u8; 64];
            let (n, from) = u.recv_from(&mut b).await.unwrap();
            u.send_to(&b[..n], from).await.unwrap();
        });
        let up = start("udp", lo, 0..=0, uaddr).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(b"ping", (lo, up.host_port)).await.unwrap();
        let mut b = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&b[..n], b"ping");
    }

    #[tokio::test]
    async fn ipv6_binds_beside_ipv4_on_the_same_port() {
        if !host_has_ipv6() {
            return;
        }
        // Loopback only here; the wildcards (where IPV6_V6ONLY matters) are
        // the root test's, in a namespace of its own.
        let target = SocketAddrV4::new([127, 0, 0, 1].into(), 9);
        let lo6: IpAddr = "::1".parse().unwrap();
        for proto in ["tcp", "udp"] {
            let v4 = start(proto, IpAddr::from([127, 0, 0, 1]), 0..=0, target).unwrap();
            let p = v4.host_port;
            let v6 = start(proto, lo6, p..=p, target).unwrap();
            assert_eq!((v6.host_ip, v6.host_port), (lo6, p));
            let e = start(proto, lo6, p..=p, target).unwrap_err();
            assert!(
                e.to_string().contains(&format!(
                    "Bind for [::1]:{p} failed: port is already allocated"
                )),
                "{e}"
            );
        }
    }
}
