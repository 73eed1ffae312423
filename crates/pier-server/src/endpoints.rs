//! Where the API is served: unix sockets (root and the socket's group only)
//! and TCP ports, which are reachable by anyone who can route to them and so
//! are normally behind TLS, with client certificates under `--tlsverify`.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::DaemonError;

/// One `-H` address of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Unix(PathBuf),
    Tcp(SocketAddr),
    /// `fd://` (every socket a service manager passed) or `fd://N` (only
    /// fd N): systemd socket activation, as dockerd takes it.
    Fd(Option<i32>),
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Unix(p) => write!(f, "unix://{}", p.display()),
            ListenAddr::Tcp(a) => write!(f, "tcp://{a}"),
            ListenAddr::Fd(None) => write!(f, "fd://"),
            ListenAddr::Fd(Some(n)) => write!(f, "fd://{n}"),
        }
    }
}

/// TLS on the TCP addresses, as dockerd's `--tls`/`--tlsverify` set it up.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// `--tlsverify`: clients must present a certificate signed by `ca`.
    pub verify: bool,
    pub ca: Option<PathBuf>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A bound address.
pub(crate) enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener, Option<TlsAcceptor>),
}

/// A connection whose TLS handshake (if any) has not been made yet: that is
/// done off the accept loop so a slow client delays nobody else.
pub(crate) enum Accepted {
    Unix(UnixStream),
    Tcp(TcpStream, Option<TlsAcceptor>),
}

/// Any established connection, whatever its transport.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

impl Listener {
    pub(crate) async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Unix(l) => Ok(Accepted::Unix(l.accept().await?.0)),
            Listener::Tcp(l, tls) => {
                let (s, _) = l.accept().await?;
                // Attach and exec carry keystrokes: no Nagle delay on them.
                let _ = s.set_nodelay(true);
                Ok(Accepted::Tcp(s, tls.clone()))
            }
        }
    }
}

impl Accepted {
    /// The stream to speak HTTP over; a TLS handshake must end within `timeout`.
    pub(crate) async fn establish(self, timeout: Duration) -> io::Result<Box<dyn Io>> {
        match self {
            Accepted::Unix(s) => Ok(Box::new(s)),
            Accepted::Tcp(s, None) => Ok(Box::new(s)),
            Accepted::Tcp(mut s, Some(tls)) => {
                let handshake = async {
                    refuse_plain_http(&mut s).await?;
                    tls.accept(s).await
                };
                match tokio::time::timeout(timeout, handshake).await {
                    Ok(r) => Ok(Box::new(r?)),
                    Err(_) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "TLS handshake timed out",
                    )),
                }
            }
        }
    }
}

/// A plain HTTP request on a TLS port gets the answer Go's server gives
/// (docker's CLI prints it), instead of a handshake error it cannot explain.
async fn refuse_plain_http(s: &mut TcpStream) -> io::Result<()> {
    let mut first = [0u8; 1];
    if s.peek(&mut first).await? == 1 && first[0].is_ascii_uppercase() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = s
            .write_all(
                b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
            )
            .await;
        // Closing with the request unread would reset the connection and
        // lose the answer: half-close, and drain briefly as Go's server does.
        let _ = s.shutdown().await;
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "plain HTTP on a TLS port",
        ));
    }
    Ok(())
}

/// Binds every address; unix sockets get mode 0660, owner root and group `gid`.
pub(crate) fn bind_all(
    hosts: &[ListenAddr],
    activated: Vec<Vec<crate::activation::Taken>>,
    tls: Option<&TlsOptions>,
    gid: u32,
    exec_root: &Path,
) -> Result<Vec<Listener>, DaemonError> {
    // As dockerd: TLS settings concern TCP addresses only.
    // (An activated socket may be TCP too.)
    let any_tcp = hosts
        .iter()
        .any(|h| matches!(h, ListenAddr::Tcp(_) | ListenAddr::Fd(_)));
    let acceptor = tls.filter(|_| any_tcp).map(acceptor).transpose()?;
    let mut out = Vec::new();
    for (h, taken) in hosts.iter().zip(activated) {
        match h {
            ListenAddr::Unix(path) => out.push(Listener::Unix(bind_unix(path, gid, exec_root)?)),
            ListenAddr::Fd(_) => {
                for l in taken {
                    out.push(match l {
                        crate::activation::Taken::Unix(l) => Listener::Unix(l),
                        crate::activation::Taken::Tcp(l) => {
                            if acceptor.is_none() {
                                tracing::warn!("API listening on an activated TCP socket without TLS: anyone who reaches it controls this host");
                            }
                            Listener::Tcp(l, acceptor.clone())
                        }
                    });
                }
            }
            ListenAddr::Tcp(addr) => {
                let l = std::net::TcpListener::bind(addr)
                    .and_then(|l| {
                        l.set_nonblocking(true)?;
                        TcpListener::from_std(l)
                    })
                    .map_err(|source| DaemonError::Io {
                        context: format!("listening on tcp://{addr}"),
                        source,
                    })?;
                if acceptor.is_none() {
                    tracing::warn!(
                        "API listening on tcp://{addr} without TLS: anyone who reaches it controls this host"
                    );
                }
                out.push(Listener::Tcp(l, acceptor.clone()));
            }
        }
        tracing::info!(host = %h, "API listening");
    }
    Ok(out)
}

/// Removes the sockets that `hosts` names (at shutdown).
pub(crate) fn remove_sockets(hosts: &[ListenAddr]) {
    for h in hosts {
        if let ListenAddr::Unix(p) = h {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Listens on `path`, 0660 and owned by root and `gid`. The socket is bound
/// under a temporary name and renamed into place once its mode and owner are
/// set, so it is never reachable with the mode the umask gave it.
fn bind_unix(path: &Path, gid: u32, exec_root: &Path) -> Result<UnixListener, DaemonError> {
    let err = |source| DaemonError::Io {
        context: format!("listening on {}", path.display()),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| DaemonError::Io {
            context: format!("creating {}", dir.display()),
            source,
        })?;
    }
    // A socket left by a crashed daemon: remove it only if nobody answers.
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another daemon is already serving this socket",
            )));
        }
        let _ = std::fs::remove_file(path);
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let listener = match UnixListener::bind(&tmp) {
        Ok(l) => l,
        // A name near sun_path's limit leaves no room for the suffix: bind
        // it in place (with the umask's mode until it is set just below).
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            let l = UnixListener::bind(path).map_err(err)?;
            pier_engine::perms::secure_socket(path, gid, exec_root)?;
            return Ok(l);
        }
        Err(e) => return Err(err(e)),
    };
    let placed = pier_engine::perms::secure_socket(&tmp, gid, exec_root)
        .map_err(DaemonError::from)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(err));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(listener)
}

fn tls_err(path: &Path, what: &str, e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Io {
        context: format!("loading the TLS {what} {}", path.display()),
        source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    }
}

fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, DaemonError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_err(path, what, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(path, what, e))?;
    if certs.is_empty() {
        return Err(tls_err(path, what, "no certificate in the file"));
    }
    Ok(certs)
}

/// The server side of TLS: our certificate and key, and under `verify` the
/// CA that client certificates must chain to.
fn acceptor(t: &TlsOptions) -> Result<TlsAcceptor, DaemonError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(&t.cert, "certificate")?;
    let key = PrivateKeyDer::from_pem_file(&t.key).map_err(|e| tls_err(&t.key, "key", e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&t.cert, "certificate", e))?;
    let builder = if t.verify {
        let ca = t.ca.as_deref().ok_or_else(|| DaemonError::Io {
            context: "--tlsverify".into(),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "needs a CA certificate (--tlscacert) to check clients against",
            ),
        })?;
        let mut roots = RootCertStore::empty();
        for c in certs(ca, "CA certificate")? {
            roots.add(c).map_err(|e| tls_err(ca, "CA certificate", e))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| tls_err(ca, "CA certificate", e))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| tls_err(&t.key, "key", e))?;
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}
