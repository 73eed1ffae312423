//! How registries are reached: which are insecure (plain HTTP allowed, TLS
//! certificates not checked), which CAs and client certificates each one gets
//! from a `certs.d` directory laid out as Docker's `/etc/docker/certs.d`, and the
//! HTTP clients built from that.
//!
//! `certs.d/<host[:port]>/`: `*.crt` are extra CAs trusted for that registry
//! (on top of the system bundle); a `name.cert` with its `name.key` is a client
//! certificate offered to it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{http_err, io_err, RegistryError, Result};

/// Where the daemon looks for per-registry certificates: its own directory,
/// then Docker's, so registries set up for Docker work unchanged.
pub const DEFAULT_CERTS_DIRS: [&str; 2] = ["/etc/pier/certs.d", "/etc/docker/certs.d"];

/// How the client reaches registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Insecure registries: `host`, `host:port` or an IP network (`10.0.0.0/8`).
    /// They are tried over HTTPS without certificate checks, then plain HTTP.
    /// Loopback registries are always insecure, as in Docker.
    pub insecure: Vec<String>,
    /// `certs.d` directories, searched in order (see the module docs).
    pub certs_dirs: Vec<PathBuf>,
    /// Fixed addresses for host names, like curl's `--resolve` (tests use it
    /// to reach a TLS registry on loopback by its certificate's name).
    pub resolve: Vec<(String, SocketAddr)>,
    /// Sent as `User-Agent`.
    pub user_agent: Option<String>,
    /// dockerd's `registry-mirrors`: `http(s)://host[:port]` URLs tried in
    /// order before Docker Hub, for Docker Hub pulls only.
    pub mirrors: Vec<String>,
}

impl RegistryOptions {
    /// Whether `domain` (`host`, `host:port`, `[v6]:port`) is listed as insecure.
    pub fn is_insecure(&self, domain: &str) -> bool {
        let host = host_of(domain);
        let ip = host.parse::<IpAddr>().ok();
        self.insecure.iter().any(|entry| {
            let entry = entry.trim();
            if entry == domain || entry == host {
                return true;
            }
            match (ip, entry.split_once('/')) {
                (Some(ip), Some((net, bits))) => in_network(ip, net, bits),
                _ => false,
            }
        })
    }
}

/// The host part of a registry domain, without port or IPv6 brackets.
pub(crate) fn host_of(domain: &str) -> &str {
    if let Some(rest) = domain.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match domain.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => domain,
    }
}

fn in_network(ip: IpAddr, net: &str, bits: &str) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The TLS material of one registry, read from the `certs.d` directories.
#[derive(Default)]
struct HostCerts {
    cas: Vec<reqwest::Certificate>,
    identity: Option<reqwest::Identity>,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(io_err("read", path))
}

// Lists `certs.d/<domain>/`: a few files at most, usually no directory at
// all, as a session with that registry starts (Docker reads it there too).
#[allow(clippy::disallowed_methods)]
fn host_certs(dirs: &[PathBuf], domain: &str) -> Result<HostCerts> {
    let mut out = HostCerts::default();
    for base in dirs {
        let dir = base.join(domain);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("read directory", &dir)(e)),
        };
        let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for p in names {
            match p.extension().and_then(|e| e.to_str()) {
                Some("crt") => {
                    let pem = read(&p)?;
                    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                        RegistryError::Invalid(format!("CA certificate {}: {e}", p.display()))
                    })?;
                    out.cas.extend(certs);
                }
                Some("cert") if out.identity.is_none() => {
                    let key = p.with_extension("key");
                    let mut pem = read(&p)?;
                    pem.push(b'\n');
                    pem.extend(read(&key).map_err(|_| {
                        RegistryError::Invalid(format!(
                            "client certificate {} has no key {}",
                            p.display(),
                            key.display()
                        ))
                    })?);
                    out.identity = Some(reqwest::Identity::from_pem(&pem).map_err(|e| {
                        RegistryError::Invalid(format!("client certificate {}: {e}", p.display()))
                    })?);
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Adds the CA and client certificate files a `hosts.toml` names.
fn extra_certs(extra: &ExtraTls, out: &mut HostCerts) -> Result<()> {
    if extra.is_empty() {
        return Ok(());
    }
    for p in &extra.ca {
        let pem = read(p)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| RegistryError::Invalid(format!("CA certificate {}: {e}", p.display())))?;
        out.cas.extend(certs);
    }
    if let Some((cert, key)) = extra.client.first() {
        let mut pem = read(cert)?;
        if let Some(key) = key {
            pem.push(b'\n');
            pem.extend(read(key)?);
        }
        out.identity = Some(reqwest::Identity::from_pem(&pem).map_err(|e| {
            RegistryError::Invalid(format!("client certificate {}: {e}", cert.display()))
        })?);
    }
    Ok(())
}

/// Files of `certs.d/<domain>/` with their size and mtime: a client built for
/// a registry is reused only while its certificate files stay the same, so a
/// CA dropped in while the daemon runs is used at once, as Docker does.
type CertsStamp = Vec<(PathBuf, u64, Option<std::time::SystemTime>)>;

// As `host_certs`: one small directory, usually missing.
#[allow(clippy::disallowed_methods)]
fn certs_stamp(dirs: &[PathBuf], domain: &str) -> CertsStamp {
    let mut out = Vec::new();
    for base in dirs {
        let Ok(entries) = std::fs::read_dir(base.join(domain)) else {
            continue;
        };
        for e in entries.flatten() {
            if let Ok(m) = e.metadata() {
                out.push((e.path(), m.len(), m.modified().ok()));
            }
        }
    }
    out.sort();
    out
}

/// TLS files a `hosts.toml` names for one endpoint, on top of its `certs.d` dir.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct ExtraTls {
    pub ca: Vec<PathBuf>,
    pub client: Vec<(PathBuf, Option<PathBuf>)>,
    /// `dial_timeout`, instead of the usual 30 s.
    pub connect_timeout: Option<Duration>,
}

impl ExtraTls {
    fn is_empty(&self) -> bool {
        self.ca.is_empty() && self.client.is_empty()
    }

    fn is_default(&self) -> bool {
        self.is_empty() && self.connect_timeout.is_none()
    }

    fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.ca.iter().chain(
            self.client
                .iter()
                .flat_map(|(c, k)| std::iter::once(c).chain(k)),
        )
    }
}

type HostKey = (String, bool, ExtraTls);

/// HTTP clients: one shared for registries with no special TLS needs, one per
/// registry that has certificates or skips verification.
#[derive(Clone)]
pub(crate) struct Transports {
    opts: RegistryOptions,
    plain: reqwest::Client,
    per_host: Arc<Mutex<HashMap<HostKey, (CertsStamp, reqwest::Client)>>>,
}

impl Transports {
    pub fn new(opts: RegistryOptions) -> Result<Transports> {
        let plain = builder(&opts)
            .build()
            .map_err(http_err("building the HTTP client"))?;
        Ok(Transports {
            opts,
            plain,
            per_host: Arc::default(),
        })
    }

    pub fn opts(&self) -> &RegistryOptions {
        &self.opts
    }

    /// The client for `domain`; `skip_verify` for insecure registries;
    /// `extra` CA and client certificate files from a `hosts.toml`.
    pub fn for_domain(
        &self,
        domain: &str,
        skip_verify: bool,
        extra: &ExtraTls,
    ) -> Result<reqwest::Client> {
        let key = (domain.to_string(), skip_verify, extra.clone());
        let mut stamp = certs_stamp(&self.opts.certs_dirs, domain);
        for f in extra.files() {
            let m = std::fs::metadata(f).ok();
            stamp.push((
                f.clone(),
                m.as_ref().map_or(0, |m| m.len()),
                m.and_then(|m| m.modified().ok()),
            ));
        }
        if let Some((st, c)) = self.lock().get(&key)
            && *st == stamp
        {
            return Ok(c.clone());
        }
        let mut certs = host_certs(&self.opts.certs_dirs, domain)?;
        extra_certs(extra, &mut certs)?;
        let client = if certs.cas.is_empty()
            && certs.identity.is_none()
            && !skip_verify
            && extra.is_default()
        {
            self.plain.clone()
        } else {
            let mut b = builder(&self.opts).danger_accept_invalid_certs(skip_verify);
            if let Some(t) = extra.connect_timeout {
                b = b.connect_timeout(t);
            }
            for ca in certs.cas {
                b = b.add_root_certificate(ca);
            }
            if let Some(id) = certs.identity {
                b = b.identity(id);
            }
            b.build()
                .map_err(http_err(format!("building the HTTP client for {domain}")))?
        };
        self.lock().insert(key, (stamp, client.clone()));
        Ok(client)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<HostKey, (CertsStamp, reqwest::Client)>> {
        self.per_host.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn builder(opts: &RegistryOptions) -> reqwest::ClientBuilder {
    let ua = opts
        .user_agent
        .clone()
        .unwrap_or_else(|| format!("pier/{}", env!("CARGO_PKG_VERSION")));
    let mut b = reqwest::Client::builder()
        .user_agent(ua)
        .connect_timeout(Duration::from_secs(30))
        // Per read, not per request: layers may take long, stalls may not.
        .read_timeout(Duration::from_secs(120));
    for (name, addr) in &opts.resolve {
        b = b.resolve(name, *addr);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_entries() {
        let o = RegistryOptions {
            insecure: vec![
                "reg.example:5000".into(),
                "plain.example".into(),
                "10.251.0.0/16".into(),
                "fd00::/8".into(),
            ],
            ..Default::default()
        };
        for d in [
            "reg.example:5000",
            "plain.example",
            "plain.example:443",
            "10.251.3.1:5000",
            "10.251.255.255",
            "[fd00::1]:5000",
        ] {
            assert!(o.is_insecure(d), "{d}");
        }
        for d in [
            "reg.example",
            "reg.example:5001",
            "10.252.0.1:5000",
            "[fe80::1]:1",
        ] {
            assert!(!o.is_insecure(d), "{d}");
        }
        assert_eq!(host_of("[::1]:5000"), "::1");
        assert_eq!(host_of("h:80"), "h");
        assert_eq!(host_of("h"), "h");
    }

    #[test]
    fn certs_dir_is_read_per_host() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("reg.example:5000");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("client.cert"), "x").unwrap();
        let dirs = [dir.path().to_path_buf()];
        // Another registry's directory is not read.
        let other = host_certs(&dirs, "other:5000").unwrap();
        assert!(other.cas.is_empty() && other.identity.is_none());
        let e = host_certs(&dirs, "reg.example:5000")
            .err()
            .expect("a client certificate without key is an error");
        assert!(e.to_string().contains("client.key"), "{e}");
    }
}
