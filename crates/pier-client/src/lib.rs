//! Client of the Engine API that a Pier (or Docker) daemon serves on a unix
//! socket, a TCP port (optionally TLS) or through `ssh ... dial-stdio`.
//!
//! The CLI needs things a generic client does not give it (waiting for
//! response headers before going on, hijacked attach/exec streams, streaming
//! uploads and downloads, raw JSON kept in the daemon's field order), so the
//! helpers here speak HTTP/1.1 themselves, one short-lived connection per
//! request (a unix socket connect is cheap).

// A client blocks only its own command (the context store is a few small
// files), as in the CLI.
#![allow(clippy::disallowed_methods)]

mod autostart;
pub mod config;
pub mod context;
mod endpoint;
mod error;
mod hijack;
mod raw;
mod tls;

pub use autostart::{daemon_log_path, start_daemon, DETACH_ENV};
pub use endpoint::{parse_host, ssh_args, HostSpec, Io, SshTarget};
pub use error::ClientError;
pub use hijack::{HijackWriter, Hijacked};
pub use raw::{
    body_async_read, body_bytes, body_chunks, body_empty, body_json, body_reader, query, read_body,
    read_json, Body, JsonLines,
};
pub use tls::TlsSettings;

pub use pier_api::models;

/// A response whose body has not been read yet.
pub type Response = http::Response<hyper::body::Incoming>;

use std::path::{Path, PathBuf};
use std::time::Duration;

use endpoint::Endpoint;

/// Where the CLI looks for the daemon when nothing says otherwise.
pub const DEFAULT_HOST: &str = "unix:///run/pier/pier.sock";
/// The API version the client speaks (path prefix `/v1.43/`).
pub const CLIENT_API_VERSION: &str = "1.43";

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// The CLI's global connection flags, as the docker CLI has them.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// `-H`
    pub host: Option<String>,
    /// `--context`
    pub context: Option<String>,
    /// `--tls`
    pub tls: bool,
    /// `--tlsverify`
    pub tlsverify: bool,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
}

/// Which daemon a command talks to, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The context in use (`default` unless a stored one is chosen).
    pub context: String,
    pub host: String,
    pub tls: Option<TlsSettings>,
    /// False only for the built-in default, which may be started on demand.
    pub explicit: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The docker CLI's order: `-H` or `--context` (not both), then
/// `PIER_HOST`, `DOCKER_HOST`, `DOCKER_CONTEXT`, `config.json`'s
/// `currentContext`, and the default socket.
pub fn resolve(o: &ConnectOptions) -> Result<Target> {
    let flag_host = o.host.clone().filter(|h| !h.is_empty());
    if flag_host.is_some() && o.context.is_some() {
        return Err(ClientError::Context(
            "conflicting options: either specify --host or --context, not both".into(),
        ));
    }
    let host = flag_host.or_else(|| {
        if o.context.is_some() {
            None
        } else {
            env("PIER_HOST").or_else(|| env("DOCKER_HOST"))
        }
    });
    if let Some(host) = host {
        return default_target(o, host, true);
    }
    let name = match &o.context {
        Some(c) => c.clone(),
        None => match env("DOCKER_CONTEXT") {
            Some(c) => c,
            None => context::current_in_config()?.unwrap_or_else(|| "default".into()),
        },
    };
    if name == context::DEFAULT_CONTEXT {
        return default_target(o, DEFAULT_HOST.to_string(), false);
    }
    let meta = context::load(&name)?;
    let host = meta
        .host()
        .ok_or_else(|| ClientError::Context(format!("context {name:?} has no docker endpoint")))?
        .to_string();
    let files = context::tls_files(&name);
    let file = |n: &str| files.iter().find(|(f, _)| f == n).map(|(_, p)| p.clone());
    let tls = (!files.is_empty() || meta.skip_tls_verify()).then(|| TlsSettings {
        verify: !meta.skip_tls_verify(),
        ca: file("ca.pem"),
        cert: file("cert.pem"),
        key: file("key.pem"),
    });
    Ok(Target {
        context: name,
        host,
        tls,
        explicit: true,
    })
}

/// The default context: `host`, with TLS from the flags and
/// `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH` (files that are not there and
/// not named by a flag are left out, as the docker CLI does).
fn default_target(o: &ConnectOptions, host: String, explicit: bool) -> Result<Target> {
    let verify = o.tlsverify || env("DOCKER_TLS_VERIFY").is_some();
    let tls = o.tls || verify || env("DOCKER_TLS").is_some();
    let tls = tls.then(|| {
        let dir = env("DOCKER_CERT_PATH").map_or_else(config::config_dir, PathBuf::from);
        let pick = |flag: &Option<PathBuf>, name: &str| match flag {
            Some(p) => Some(p.clone()),
            None => Some(dir.join(name)).filter(|p| p.is_file()),
        };
        TlsSettings {
            verify,
            ca: pick(&o.tlscacert, "ca.pem"),
            cert: pick(&o.tlscert, "cert.pem"),
            key: pick(&o.tlskey, "key.pem"),
        }
    });
    Ok(Target {
        context: context::DEFAULT_CONTEXT.into(),
        host,
        tls,
        explicit,
    })
}

/// A connection handle to one daemon. Cheap: it holds no open connection.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    endpoint: Endpoint,
}

/// The socket path of a `unix://` host.
pub fn socket_path(host: &str) -> Result<PathBuf> {
    match parse_host(host, false)? {
        HostSpec::Unix(p) => Ok(p),
        _ => Err(ClientError::InvalidHost {
            host: host.to_string(),
            why: "not a unix socket".into(),
        }),
    }
}

/// Connects to the daemon that `o` names (see [`resolve`]). The default
/// host is started on demand when it does not answer; any other host that
/// does not answer is an error.
pub async fn connect(o: &ConnectOptions) -> Result<Client> {
    connect_to(resolve(o)?).await
}

pub async fn connect_to(t: Target) -> Result<Client> {
    let spec = parse_host(&t.host, t.tls.is_some())?;
    let HostSpec::Unix(socket) = &spec else {
        // Remote hosts are checked by the first request.
        let endpoint = Endpoint::new(spec, t.tls.as_ref())?;
        return Ok(Client {
            host: t.host,
            endpoint,
        });
    };
    // A successful connect is taken as "the daemon is up": no /_ping round trip,
    // since every CLI call pays for it.
    match tokio::net::UnixStream::connect(socket).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            // A daemon runs; this user may not use it (not in its group).
            return Err(ClientError::PermissionDenied { host: t.host });
        }
        Err(e) => {
            if t.explicit || t.host != DEFAULT_HOST {
                return Err(ClientError::Connect {
                    host: t.host,
                    source: e,
                });
            }
            autostart::start_daemon(socket, Duration::from_secs(10))
                .await
                .map_err(|_| ClientError::Connect {
                    host: t.host.clone(),
                    source: e,
                })?;
        }
    }
    Ok(Client::new_unchecked(t.host.clone(), socket.clone()))
}

impl Client {
    /// A handle on a unix socket that does not check the daemon is there.
    pub fn new_unchecked(host: String, socket: PathBuf) -> Client {
        Client {
            host,
            endpoint: Endpoint::Unix(socket),
        }
    }

    /// The host string, e.g. `unix:///run/pier/pier.sock`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The socket, when the daemon is reached through a local unix socket.
    pub fn socket(&self) -> Option<&Path> {
        match &self.endpoint {
            Endpoint::Unix(p) => Some(p),
            _ => None,
        }
    }

    /// Opens one connection to the daemon.
    pub async fn dial(&self) -> Result<Box<dyn Io>> {
        self.endpoint.dial().await.map_err(|e| {
            use std::io::ErrorKind as K;
            match e.kind() {
                // Nobody there: Docker's "Cannot connect ... Is the daemon running?".
                K::NotFound | K::ConnectionRefused | K::PermissionDenied => ClientError::Connect {
                    host: self.host.clone(),
                    source: e,
                },
                // Someone there, but the TLS handshake (or ssh) failed: say why.
                _ => ClientError::Dial {
                    host: self.host.clone(),
                    source: e,
                },
            }
        })
    }

    /// `path` with the API version prefix, e.g. `/v1.43/containers/json`.
    pub fn versioned(path: &str) -> String {
        format!("/v{CLIENT_API_VERSION}{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test for everything that reads the environment (tests run in
    /// parallel threads of one process).
    #[test]
    // SAFETY (the `unsafe` env calls): std serialises its own environment
    // access, and no test of this binary calls into C code that reads it.
    #[allow(unsafe_code)]
    fn hosts_resolve_in_the_docker_cli_s_order() {
        let dir = tempfile::tempdir().unwrap();
        unsafe { std::env::set_var("DOCKER_CONFIG", dir.path()) };
        for v in [
            "PIER_HOST",
            "DOCKER_HOST",
            "DOCKER_CONTEXT",
            "DOCKER_TLS_VERIFY",
        ] {
            unsafe { std::env::remove_var(v) };
        }
        let o = ConnectOptions::default();
        let t = resolve(&o).unwrap();
        assert_eq!((t.host.as_str(), t.explicit), (DEFAULT_HOST, false));
        let flag = ConnectOptions {
            host: Some("unix:///x.sock".into()),
            ..Default::default()
        };
        unsafe { std::env::set_var("DOCKER_HOST", "tcp://127.0.0.1:9") };
        assert_eq!(resolve(&flag).unwrap().host, "unix:///x.sock");
        assert_eq!(resolve(&o).unwrap().host, "tcp://127.0.0.1:9");
        unsafe { std::env::set_var("PIER_HOST", "unix:///y.sock") };
        assert_eq!(resolve(&o).unwrap().host, "unix:///y.sock");
        unsafe { std::env::remove_var("PIER_HOST") };
        unsafe { std::env::set_var("DOCKER_TLS_VERIFY", "1") };
        let t = resolve(&o).unwrap();
        assert!(t.tls.unwrap().verify);
        unsafe { std::env::remove_var("DOCKER_TLS_VERIFY") };
        unsafe { std::env::remove_var("DOCKER_HOST") };

        let meta = context::ContextMeta {
            name: "far".into(),
            metadata: Default::default(),
            endpoints: serde_json::json!({"docker": {"Host": "tcp://10.1.1.1:2376", "SkipTLSVerify": false}})
                .as_object()
                .unwrap()
                .clone(),
        };
        context::create(&meta, &[]).unwrap();
        let by_flag = ConnectOptions {
            context: Some("far".into()),
            ..Default::default()
        };
        assert_eq!(resolve(&by_flag).unwrap().host, "tcp://10.1.1.1:2376");
        let both = ConnectOptions {
            host: Some("unix:///x.sock".into()),
            context: Some("far".into()),
            ..Default::default()
        };
        assert!(resolve(&both).is_err());
        unsafe { std::env::set_var("DOCKER_CONTEXT", "far") };
        assert_eq!(resolve(&o).unwrap().context, "far");
        unsafe { std::env::remove_var("DOCKER_CONTEXT") };
        context::set_current("far").unwrap();
        assert_eq!(resolve(&o).unwrap().context, "far");
        context::set_current("default").unwrap();
        assert_eq!(resolve(&o).unwrap().context, "default");
        context::remove("far").unwrap();
        unsafe { std::env::remove_var("DOCKER_CONFIG") };
    }

    #[test]
    fn socket_paths() {
        assert_eq!(
            socket_path("unix:///run/pier/pier.sock").unwrap(),
            PathBuf::from("/run/pier/pier.sock")
        );
        assert_eq!(socket_path("/tmp/s").unwrap(), PathBuf::from("/tmp/s"));
        assert!(socket_path("tcp://127.0.0.1:2375").is_err());
        assert!(socket_path("ssh://h").is_err());
        assert!(socket_path("unix://").is_err());
    }

    #[tokio::test]
    async fn explicit_host_that_does_not_answer_is_an_error() {
        let err = connect_to(Target {
            context: "default".into(),
            host: "unix:///nonexistent/pier-test.sock".into(),
            tls: None,
            explicit: true,
        })
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Cannot connect to the Pier daemon at unix:///nonexistent/pier-test.sock. Is the daemon running?"
        );
    }
}
