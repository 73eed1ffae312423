//! How one connection to the daemon is made: a unix socket, TCP (optionally
//! TLS), or `ssh HOST pier system dial-stdio` speaking HTTP over the ssh
//! process's stdio, as the docker CLI does for `ssh://` hosts.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::tls::{client_config, server_name, TlsSettings};
use crate::{ClientError, Result};

/// Any connection to the daemon, whatever its transport.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A `-H`/`DOCKER_HOST` value, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSpec {
    Unix(PathBuf),
    /// `host:port`
    Tcp(String),
    Ssh(SshTarget),
}

/// `ssh://[user@]host[:port][/socket]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The daemon's socket on the remote host, when not its default.
    pub socket: Option<String>,
}

/// Docker's ports: 2375 for plain HTTP, 2376 under TLS.
fn default_port(tls: bool) -> u16 {
    if tls {
        2376
    } else {
        2375
    }
}

/// Parses a host as the docker CLI accepts it.
pub fn parse_host(host: &str, tls: bool) -> Result<HostSpec> {
    let invalid = |why: &str| ClientError::InvalidHost {
        host: host.to_string(),
        why: why.to_string(),
    };
    if let Some(p) = host.strip_prefix("unix://") {
        if p.is_empty() {
            return Err(invalid("empty socket path"));
        }
        return Ok(HostSpec::Unix(PathBuf::from(p)));
    }
    if host.starts_with('/') {
        return Ok(HostSpec::Unix(PathBuf::from(host)));
    }
    if let Some(rest) = host.strip_prefix("tcp://") {
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') {
            return Err(invalid("expected tcp://HOST[:PORT]"));
        }
        let has_port = match rest.strip_prefix('[') {
            Some(v6) => v6.contains("]:"),
            None => rest.contains(':'),
        };
        let addr = if has_port {
            rest.to_string()
        } else {
            format!("{rest}:{}", default_port(tls))
        };
        if addr.starts_with(':') {
            return Err(invalid("no host name"));
        }
        return Ok(HostSpec::Tcp(addr));
    }
    if let Some(rest) = host.strip_prefix("ssh://") {
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, authority),
        };
        let (name, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| invalid("unclosed '['"))?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let port = port
            .map(|p| p.parse::<u16>().map_err(|_| invalid("bad port")))
            .transpose()?;
        if name.is_empty() {
            return Err(invalid("no host name"));
        }
        if user.as_deref() == Some("") {
            return Err(invalid("empty user name"));
        }
        return Ok(HostSpec::Ssh(SshTarget {
            user,
            host: name.to_string(),
            port,
            socket: (path.len() > 1).then(|| path.to_string()),
        }));
    }
    Err(invalid("pier connects to unix://, tcp:// and ssh:// hosts"))
}

/// A resolved way of reaching the daemon.
#[derive(Clone)]
pub(crate) enum Endpoint {
    Unix(PathBuf),
    Tcp {
        addr: String,
        tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    },
    Ssh(SshTarget),
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp { addr, tls } => {
                write!(
                    f,
                    "tcp://{addr}{}",
                    if tls.is_some() { " (TLS)" } else { "" }
                )
            }
            Endpoint::Ssh(t) => write!(f, "ssh://{}", t.host),
        }
    }
}

impl Endpoint {
    pub(crate) fn new(spec: HostSpec, tls: Option<&TlsSettings>) -> Result<Endpoint> {
        Ok(match spec {
            HostSpec::Unix(p) => Endpoint::Unix(p),
            HostSpec::Tcp(addr) => {
                let tls = match tls {
                    Some(s) => Some((client_config(s)?, server_name(&addr)?)),
                    None => None,
                };
                Endpoint::Tcp { addr, tls }
            }
            HostSpec::Ssh(t) => Endpoint::Ssh(t),
        })
    }

    /// Opens one connection.
    pub(crate) async fn dial(&self) -> io::Result<Box<dyn Io>> {
        match self {
            Endpoint::Unix(p) => Ok(Box::new(tokio::net::UnixStream::connect(p).await?)),
            Endpoint::Tcp { addr, tls } => {
                let s = tokio::net::TcpStream::connect(addr.as_str()).await?;
                let _ = s.set_nodelay(true);
                match tls {
                    None => Ok(Box::new(s)),
                    Some((cfg, name)) => {
                        let c = tokio_rustls::TlsConnector::from(cfg.clone());
                        Ok(Box::new(c.connect(name.clone(), s).await?))
                    }
                }
            }
            Endpoint::Ssh(t) => Ok(Box::new(SshStream::spawn(t)?)),
        }
    }
}

/// The arguments docker's CLI gives ssh, with `pier` as the remote command.
pub fn ssh_args(t: &SshTarget) -> Vec<String> {
    let mut a = vec!["-o".to_string(), "ConnectTimeout=30".to_string()];
    if let Some(u) = &t.user {
        a.extend(["-l".to_string(), u.clone()]);
    }
    if let Some(p) = t.port {
        a.extend(["-p".to_string(), p.to_string()]);
    }
    a.extend(["-T".to_string(), "--".to_string(), t.host.clone()]);
    a.push("pier".to_string());
    if let Some(s) = &t.socket {
        a.extend(["--host".to_string(), format!("unix://{s}")]);
    }
    a.extend(["system".to_string(), "dial-stdio".to_string()]);
    a
}

/// An ssh process whose stdin and stdout are the connection. Shutting the
/// write side down closes its stdin, which the remote `dial-stdio` passes on
/// as a half-close; dropping the stream ends the process.
struct SshStream {
    _child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
}

impl SshStream {
    fn spawn(t: &SshTarget) -> io::Result<SshStream> {
        let mut child = Command::new("ssh")
            .args(ssh_args(t))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run ssh: {e}")))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("ssh has no stdout"))?;
        Ok(SshStream {
            _child: child,
            stdin,
            stdout,
        })
    }
}

impl AsyncRead for SshStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.stdin.as_mut() {
            Some(w) => Pin::new(w).poll_write(cx, buf),
            None => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stdin.as_mut() {
            Some(w) => Pin::new(w).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stdin = None;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_as_the_docker_cli_reads_them() {
        assert_eq!(
            parse_host("unix:///run/pier/pier.sock", false).unwrap(),
            HostSpec::Unix("/run/pier/pier.sock".into())
        );
        assert_eq!(
            parse_host("tcp://10.0.0.1", false).unwrap(),
            HostSpec::Tcp("10.0.0.1:2375".into())
        );
        assert_eq!(
            parse_host("tcp://10.0.0.1", true).unwrap(),
            HostSpec::Tcp("10.0.0.1:2376".into())
        );
        assert_eq!(
            parse_host("tcp://[::1]:99/", false).unwrap(),
            HostSpec::Tcp("[::1]:99".into())
        );
        assert_eq!(
            parse_host("ssh://me@box:2222", false).unwrap(),
            HostSpec::Ssh(SshTarget {
                user: Some("me".into()),
                host: "box".into(),
                port: Some(2222),
                socket: None
            })
        );
        assert_eq!(
            parse_host("ssh://box/run/p.sock", false).unwrap(),
            HostSpec::Ssh(SshTarget {
                user: None,
                host: "box".into(),
                port: None,
                socket: Some("/run/p.sock".into())
            })
        );
        for bad in [
            "fd://",
            "tcp://",
            "ssh://",
            "ssh://@h",
            "tcp://:2375",
            "ssh://h:x",
        ] {
            assert!(parse_host(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn ssh_runs_dial_stdio_remotely() {
        let t = SshTarget {
            user: Some("me".into()),
            host: "box".into(),
            port: Some(2222),
            socket: None,
        };
        assert_eq!(
            ssh_args(&t).join(" "),
            "-o ConnectTimeout=30 -l me -p 2222 -T -- box pier system dial-stdio"
        );
    }
}
