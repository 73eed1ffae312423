//! The daemon's `-H` addresses and TLS settings, checked before anything is
//! bound: a TCP port that other hosts can reach is served only behind TLS,
//! unless `--insecure-tcp` says the operator knows it is unauthenticated.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use pier_server::{ListenAddr, TlsOptions};

/// Docker's ports: 2375 for plain HTTP, 2376 under TLS.
const PLAIN_PORT: u16 = 2375;
const TLS_PORT: u16 = 2376;

/// One `-H` value as dockerd reads it: `unix:///path`, `/path`,
/// `tcp://[ADDR][:PORT]` (no address: every interface; no port: 2375, or
/// 2376 with TLS).
pub fn parse_listen(host: &str, tls: bool) -> Result<ListenAddr> {
    if let Some(p) = host.strip_prefix("unix://") {
        if p.is_empty() {
            bail!("invalid bind address ({host}): empty unix socket path");
        }
        return Ok(ListenAddr::Unix(PathBuf::from(p)));
    }
    if host.starts_with('/') {
        return Ok(ListenAddr::Unix(PathBuf::from(host)));
    }
    if let Some(n) = host.strip_prefix("fd://") {
        return match n {
            "" | "*" => Ok(ListenAddr::Fd(None)),
            n => n.parse().map(|n| ListenAddr::Fd(Some(n))).map_err(|_| {
                anyhow::anyhow!("failed to parse systemd fd address: should be a number: {n}")
            }),
        };
    }
    let Some(rest) = host.strip_prefix("tcp://") else {
        bail!("invalid bind address ({host}): pier listens on unix://, tcp:// and fd:// addresses");
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') {
        bail!("invalid bind address ({host}): a TCP address has no path");
    }
    let default_port = if tls { TLS_PORT } else { PLAIN_PORT };
    // `[v6]:port`, `[v6]`, `host:port`, `host`, `:port`, ``.
    let (name, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .with_context(|| format!("invalid bind address ({host}): unclosed '['"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => bail!("invalid bind address ({host})"),
        };
        (addr.to_string(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (rest.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .with_context(|| format!("invalid bind address ({host}): bad port {p:?}"))?,
        None => default_port,
    };
    let name = if name.is_empty() { "0.0.0.0" } else { &name };
    let addr: SocketAddr = (name, port)
        .to_socket_addrs()
        .with_context(|| format!("invalid bind address ({host})"))?
        .next()
        .with_context(|| format!("invalid bind address ({host}): {name} has no address"))?;
    Ok(ListenAddr::Tcp(addr))
}

/// Refuses plain HTTP on an address other hosts can reach: whoever connects
/// controls the host as root. Loopback stays allowed (only local users reach
/// it, as with the socket, though without the socket's group check).
pub fn check_plain_tcp(hosts: &[ListenAddr], tls: bool, insecure_tcp: bool) -> Result<()> {
    if tls || insecure_tcp {
        return Ok(());
    }
    for h in hosts {
        if let ListenAddr::Tcp(a) = h
            && !a.ip().is_loopback()
        {
            bail!(
                    "refusing to serve the API on tcp://{a} without TLS: anyone who can reach it gets root on this host. Use --tlsverify (client certificates), or --insecure-tcp to serve it unauthenticated anyway"
                );
        }
    }
    Ok(())
}

/// The TLS flags and daemon.json keys, merged.
#[derive(Debug, Default, Clone)]
pub struct TlsFlags {
    pub tls: bool,
    pub verify: bool,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// dockerd's defaults: `$DOCKER_CERT_PATH` or `~/.docker`, files `ca.pem`,
/// `cert.pem`, `key.pem`; `--tlsverify` implies `--tls`.
pub fn tls_options(f: TlsFlags) -> Option<TlsOptions> {
    if !f.tls && !f.verify {
        return None;
    }
    let dir = cert_dir();
    let or_default = |p: Option<PathBuf>, name: &str| p.unwrap_or_else(|| dir.join(name));
    let ca = or_default(f.ca, "ca.pem");
    Some(TlsOptions {
        verify: f.verify,
        ca: (f.verify || ca.exists()).then_some(ca),
        cert: or_default(f.cert, "cert.pem"),
        key: or_default(f.key, "key.pem"),
    })
}

fn cert_dir() -> PathBuf {
    match std::env::var_os("DOCKER_CERT_PATH") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => std::env::var_os("HOME")
            .map_or_else(|| PathBuf::from("/root"), PathBuf::from)
            .join(".docker"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(s: &str, tls: bool) -> SocketAddr {
        match parse_listen(s, tls).unwrap() {
            ListenAddr::Tcp(a) => a,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn addresses_parse_as_dockerd_reads_them() {
        assert_eq!(
            parse_listen("unix:///run/x.sock", false).unwrap(),
            ListenAddr::Unix("/run/x.sock".into())
        );
        assert_eq!(
            parse_listen("/run/y.sock", false).unwrap(),
            ListenAddr::Unix("/run/y.sock".into())
        );
        assert_eq!(
            tcp("tcp://127.0.0.1:2999", false).to_string(),
            "127.0.0.1:2999"
        );
        assert_eq!(tcp("tcp://127.0.0.1", false).port(), 2375);
        assert_eq!(tcp("tcp://127.0.0.1", true).port(), 2376);
        assert_eq!(tcp("tcp://:2380", false).to_string(), "0.0.0.0:2380");
        assert_eq!(tcp("tcp://[::1]:2381", false).to_string(), "[::1]:2381");
        assert_eq!(tcp("tcp://[::]", true).to_string(), "[::]:2376");
        assert_eq!(parse_listen("fd://", false).unwrap(), ListenAddr::Fd(None));
        assert_eq!(parse_listen("fd://*", false).unwrap(), ListenAddr::Fd(None));
        assert_eq!(
            parse_listen("fd://4", false).unwrap(),
            ListenAddr::Fd(Some(4))
        );
        assert!(parse_listen("fd://x", false).is_err());
        assert!(parse_listen("npipe://x", false).is_err());
        assert!(parse_listen("tcp://1.2.3.4:notaport", false).is_err());
        assert!(parse_listen("unix://", false).is_err());
    }

    #[test]
    fn plain_tcp_beyond_loopback_needs_tls_or_the_insecure_flag() {
        let lo = vec![ListenAddr::Tcp("127.0.0.1:1".parse().unwrap())];
        let all = vec![ListenAddr::Tcp("0.0.0.0:1".parse().unwrap())];
        check_plain_tcp(&lo, false, false).unwrap();
        let e = check_plain_tcp(&all, false, false).unwrap_err().to_string();
        assert!(e.contains("--insecure-tcp"), "{e}");
        check_plain_tcp(&all, true, false).unwrap();
        check_plain_tcp(&all, false, true).unwrap();
    }

    #[test]
    fn tls_verify_implies_tls_and_defaults_to_the_cert_dir() {
        assert!(tls_options(TlsFlags::default()).is_none());
        let t = tls_options(TlsFlags {
            verify: true,
            cert: Some("/c.pem".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(t.verify);
        assert_eq!(t.cert, PathBuf::from("/c.pem"));
        assert!(t.ca.unwrap().ends_with("ca.pem"));
        assert!(t.key.ends_with("key.pem"));
    }
}
