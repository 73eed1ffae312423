//! Root integration tests. Each test makes its own "host" namespace with
//! `ip netns add` and runs the controller inside it, so bridges, veths and
//! nftables rules never touch the machine's own; everything is deleted at
//! the end (deleting the namespace takes its links and tables with it).

// Test set-up and checks, not daemon code.
#![allow(clippy::disallowed_methods)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pier_network::{dns, link, netns, Controller, EndpointSpec, NetworkSpec, PortRequest};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn sh(args: &[&str]) -> std::process::Output {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `f` on a thread (with a runtime) inside a fresh named namespace.
fn in_host_ns<F, Fut>(name: &str, f: F)
where
    F: FnOnce(PathBuf) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let name = format!("{name}-{}", std::process::id());
    let _ = Command::new("ip").args(["netns", "del", &name]).output();
    sh(&["ip", "netns", "add", &name]);
    sh(&[
        "ip", "netns", "exec", &name, "ip", "link", "set", "lo", "up",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = PathBuf::from(format!("/run/netns/{name}"));
    let d = dir.path().to_path_buf();
    let r = std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        // Worker threads are cloned from this one, so they share its namespace.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(f(d));
    })
    .join();
    // Whatever happened, take the namespaces away.
    for e in std::fs::read_dir(dir.path())
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = netns::delete(&e.path());
    }
    let _ = Command::new("ip").args(["netns", "del", &name]).output();
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

fn net(id: &str, bridge: &str, subnet: &str, dns: bool) -> NetworkSpec {
    let subnet: pier_network::Subnet = subnet.parse().unwrap();
    NetworkSpec {
        id: id.into(),
        bridge: bridge.into(),
        subnet,
        gateway: subnet.first_host(),
        internal: false,
        dns,
    }
}

fn ep(host_veth: &str, ip: Ipv4Addr) -> EndpointSpec {
    EndpointSpec {
        ifname: "eth0".into(),
        host_veth: host_veth.into(),
        ip,
        mac: link::mac_for_ip(ip),
        default_route: true,
    }
}

async fn sandbox(ctl: &Controller, dir: &Path, name: &str, net_id: &str, ip: Ipv4Addr) -> PathBuf {
    let p = dir.join(name);
    netns::create(&p).unwrap();
    assert!(netns::exists(&p));
    ctl.attach(&p, net_id, &ep(&format!("vt{name}"), ip))
        .await
        .unwrap();
    p
}

fn ping(from: &Path, to: Ipv4Addr) -> bool {
    Command::new("nsenter")
        .arg(format!("--net={}", from.display()))
        .args(["busybox", "ping", "-c1", "-W2", &to.to_string()])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn two_namespaces_on_one_bridge_ping_each_other() {
    if !is_root() {
        return;
    }
    in_host_ns("pier-nt-ping", |dir| async move {
        let ctl = Controller::new(vec![]);
        ctl.add_network(net("n1", "ptbr0", "10.88.0.0/24", false))
            .await
            .unwrap();
        // Idempotent, as a daemon restart needs.
        ctl.add_network(net("n1", "ptbr0", "10.88.0.0/24", false))
            .await
            .unwrap();
        let a = sandbox(&ctl, &dir, "a", "n1", Ipv4Addr::new(10, 88, 0, 2)).await;
        let b = sandbox(&ctl, &dir, "b", "n1", Ipv4Addr::new(10, 88, 0, 3)).await;
        assert!(ping(&a, Ipv4Addr::new(10, 88, 0, 3)));
        assert!(ping(&b, Ipv4Addr::new(10, 88, 0, 2)));
        assert!(ping(&a, Ipv4Addr::new(10, 88, 0, 1)), "gateway");
        // A second network is isolated from the first.
        ctl.add_network(net("n2", "ptbr1", "10.88.1.0/24", false))
            .await
            .unwrap();
        let c = sandbox(&ctl, &dir, "c", "n2", Ipv4Addr::new(10, 88, 1, 2)).await;
        assert!(ping(&c, Ipv4Addr::new(10, 88, 1, 1)));
        assert!(
            !ping(&c, Ipv4Addr::new(10, 88, 0, 2)),
            "networks must be isolated"
        );
        let mac = link::Netlink::in_netns(&a)
            .unwrap()
            .mac_of("eth0")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(link::format_mac(&mac), "02:42:0a:58:00:02");
        ctl.detach("vtb").await.unwrap();
        assert!(!ping(&a, Ipv4Addr::new(10, 88, 0, 3)));
        ctl.remove_network("n2").await.unwrap();
        assert!(link::Netlink::current()
            .unwrap()
            .index("ptbr1")
            .await
            .unwrap()
            .is_none());
        ctl.shutdown().await.unwrap();
        assert!(link::Netlink::current()
            .unwrap()
            .index("ptbr0")
            .await
            .unwrap()
            .is_none());
        for p in [a, b, c] {
            netns::delete(&p).unwrap();
            assert!(!p.exists());
        }
    });
}

/// A one-shot HTTP-ish server in `ns`: answers each connection with the
/// peer address it saw.
fn serve_peer_addr(ns: &Path, port: u16) {
    let l = netns::run_in(ns, move || TcpListener::bind(("0.0.0.0", port)).unwrap()).unwrap();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let peer = c.peer_addr().unwrap();
            let _ = c.write_all(format!("HTTP/1.0 200 OK\r\n\r\npeer={}", peer.ip()).as_bytes());
        }
    });
}

fn fetch(s: TcpStream) -> String {
    let mut s = s;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn published_port_reaches_container_via_proxy_and_dnat() {
    if !is_root() {
        return;
    }
    in_host_ns("pier-nt-port", |dir| async move {
        let ctl = Controller::new(vec![]);
        ctl.add_network(net("n1", "ptbr0", "10.90.0.0/24", false))
            .await
            .unwrap();
        let cip = Ipv4Addr::new(10, 90, 0, 2);
        let c = sandbox(&ctl, &dir, "c", "n1", cip).await;
        serve_peer_addr(&c, 80);
        let req = |ports: (u16, u16)| PortRequest {
            proto: "tcp".into(),
            host_ip: Ipv4Addr::UNSPECIFIED.into(),
            all_families: false,
            host_ports: ports,
            container_ip: cip,
            container_port: 80,
        };
        let pubs = ctl
            .publish("c1", "n1", &[req((18080, 18080)), req((0, 0))])
            .unwrap();
        assert_eq!(pubs[0].host_port, 18080);
        assert_ne!(pubs[1].host_port, 0);
        // Taken: refused with Docker's words, and nothing of the set stays.
        let e = ctl
            .publish("c2", "n1", &[req((18081, 18081)), req((18080, 18080))])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for 0.0.0.0:18080 failed: port is already allocated"
        );
        // The proxy's accept task lets go of its socket when it is
        // cancelled, which may take a scheduler turn: allow a moment.
        let mut released = false;
        for _ in 0..100 {
            if std::net::TcpListener::bind("0.0.0.0:18081").is_ok() {
                released = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(released, "18081 must be released");

        // Loopback: through the userland proxy (its source is the gateway).
        let body =
            tokio::task::spawn_blocking(|| fetch(TcpStream::connect("127.0.0.1:18080").unwrap()))
                .await
                .unwrap();
        assert!(body.ends_with("peer=10.90.0.1"), "{body}");

        // From another machine (a namespace behind a veth): DNAT keeps the
        // client's address.
        let ext = dir.join("ext");
        netns::create(&ext).unwrap();
        sh(&[
            "ip", "link", "add", "ptext0", "type", "veth", "peer", "name", "ptext1",
        ]);
        sh(&["ip", "addr", "add", "192.168.77.1/24", "dev", "ptext0"]);
        sh(&["ip", "link", "set", "ptext0", "up"]);
        let extp = ext.display().to_string();
        sh(&["ip", "link", "set", "ptext1", "netns", &extp]);
        let inside = |args: &[&str]| {
            let mut v = vec!["nsenter".to_string(), format!("--net={extp}")];
            v.extend(args.iter().map(|s| s.to_string()));
            let refs: Vec<&str> = v.iter().map(String::as_str).collect();
            sh(&refs);
        };
        inside(&["ip", "addr", "add", "192.168.77.2/24", "dev", "ptext1"]);
        inside(&["ip", "link", "set", "ptext1", "up"]);
        let body = tokio::task::spawn_blocking(move || {
            let s = netns::run_in(&ext, || {
                TcpStream::connect_timeout(
                    &"192.168.77.1:18080".parse().unwrap(),
                    Duration::from_secs(5),
                )
            })
            .unwrap()
            .unwrap();
            fetch(s)
        })
        .await
        .unwrap();
        assert!(
            body.ends_with("peer=192.168.77.2"),
            "DNAT must keep the client address: {body}"
        );

        ctl.unpublish("c1").unwrap();
        assert!(TcpStream::connect("127.0.0.1:18080").is_err());
        let rules = String::from_utf8(sh(&["nft", "list", "table", "ip", "pier"]).stdout).unwrap();
        assert!(!rules.contains("18080"), "{rules}");
        ctl.shutdown().await.unwrap();
        assert!(Command::new("nft")
            .args(["list", "table", "ip", "pier"])
            .output()
            .map(|o| !o.status.success())
            .unwrap());
    });
}

#[test]
fn dns_answers_names_and_forwards_unknown_ones() {
    if !is_root() {
        return;
    }
    in_host_ns("pier-nt-dns", |dir| async move {
        // A fake upstream on loopback that answers every A query with 1.2.3.4.
        let up = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let up_addr = up.local_addr().unwrap();
        tokio::spawn(async move {
            let mut b = [0u8; 512];
            loop {
                let Ok((n, from)) = up.recv_from(&mut b).await else {
                    return;
                };
                let mut a = b[..n].to_vec();
                a[2] |= 0x80;
                a[3] = 0x80;
                a[7] = 1;
                a.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4]);
                let _ = up.send_to(&a, from).await;
            }
        });
        let ctl = Controller::new(vec![up_addr]);
        ctl.add_network(net("u1", "ptbr0", "10.91.0.0/24", true))
            .await
            .unwrap();
        let ip = Ipv4Addr::new(10, 91, 0, 2);
        let c = sandbox(&ctl, &dir, "c", "u1", ip).await;
        ctl.set_names("u1", "c1", &["web".into(), "web-alias".into()], ip);
        let sock = netns::run_in(&c, || UdpSocket::bind("0.0.0.0:0").unwrap()).unwrap();
        let answers = tokio::task::spawn_blocking(move || {
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let server = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 91, 0, 1), 53));
            let mut out = Vec::new();
            for (i, name) in ["web", "WEB-alias", "elsewhere.example", "gone"]
                .iter()
                .enumerate()
            {
                sock.send_to(&dns::build_query(i as u16, name, dns::TYPE_A), server)
                    .unwrap();
                let mut b = [0u8; 512];
                let n = sock.recv(&mut b).unwrap();
                out.push(dns::parse_reply(&b[..n]).unwrap());
            }
            out
        })
        .await
        .unwrap();
        assert_eq!(answers[0], (0, vec![ip]));
        assert_eq!(answers[1], (0, vec![ip]));
        assert_eq!(answers[2], (0, vec![Ipv4Addr::new(1, 2, 3, 4)]));
        assert_eq!(answers[3].0, 3, "unknown short names are NXDOMAIN");
        ctl.shutdown().await.unwrap();
    });
}
