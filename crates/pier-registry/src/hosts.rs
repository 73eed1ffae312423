//! Where a registry's pulls and pushes go: containerd's `hosts.toml` in
//! `certs.d/<host>/` (mirrors tried in order, then the registry's server),
//! and dockerd's `registry-mirrors` for Docker Hub.
//!
//! ```toml
//! server = "https://registry.k8s.io"          # the registry itself, tried last
//! [host."http://127.0.0.1:5000"]              # mirrors, in file order
//!   capabilities = ["pull", "resolve"]        # default: pull, resolve, push
//!   skip_verify = true
//!   ca = "ca.crt"                             # or a list; relative to the dir
//!   client = [["c.cert", "c.key"]]            # or "both.pem", or a list of them
//!   header = { x-mirror = "1" }               # or lists of values
//!   override_path = true                      # the URL's path is the API root
//! ```
//!
//! As containerd: `certs.d/<host>_<port>_/` or `certs.d/<host:port>/` for a
//! registry with a port, else `certs.d/_default/` when the registry has no
//! directory of its own; the top-level keys apply to the server; a missing
//! `server` means the registry's usual address. Unlike containerd, a file
//! that does not parse fails the pull with its path and key, rather than being
//! skipped: a mirror silently ignored would send traffic where the operator
//! said not to.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use toml::{Table, Value};

use crate::error::{RegistryError, Result};
use crate::transport::RegistryOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub pull: bool,
    /// Tags may be resolved here (pulls by digest need only `pull`).
    pub resolve: bool,
    pub push: bool,
}

impl Capabilities {
    pub const ALL: Capabilities = Capabilities {
        pull: true,
        resolve: true,
        push: true,
    };
    pub const PULL: Capabilities = Capabilities {
        pull: true,
        resolve: true,
        push: false,
    };
}

/// One place a registry's content may be fetched from or pushed to.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `https` or `http`.
    pub scheme: String,
    /// `host[:port]` to connect to.
    pub host: String,
    /// The API root, `/v2` unless `override_path` said otherwise.
    pub path: String,
    /// Whether the scheme was written down. The registry's implied address
    /// is tried over HTTPS then plain HTTP when it is insecure, as Docker does.
    pub explicit_scheme: bool,
    pub capabilities: Capabilities,
    pub skip_verify: Option<bool>,
    /// Extra CA files, absolute.
    pub ca: Vec<PathBuf>,
    /// Client certificates: (cert, key); no key means the key is in the cert file.
    pub client: Vec<(PathBuf, Option<PathBuf>)>,
    pub headers: Vec<(String, String)>,
    /// `dial_timeout`: how long a connection may take to open.
    pub dial_timeout: Option<Duration>,
    /// False for the registry itself (the server).
    pub mirror: bool,
    /// The `hosts.toml` it came from, for messages.
    pub source: Option<PathBuf>,
}

impl Endpoint {
    /// The registry at its usual address.
    pub fn registry(domain: &str) -> Endpoint {
        Endpoint {
            scheme: "https".into(),
            host: api_host(domain).to_string(),
            path: "/v2".into(),
            explicit_scheme: false,
            capabilities: Capabilities::ALL,
            skip_verify: None,
            ca: Vec::new(),
            client: Vec::new(),
            headers: Vec::new(),
            dial_timeout: None,
            mirror: false,
            source: None,
        }
    }

    /// `scheme://host/path` for messages.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.path)
    }
}

/// The registry host dirs containerd looks for, in its order.
fn host_dir_names(domain: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((h, p)) = domain.rsplit_once(':')
        && !h.is_empty()
    {
        out.push(format!("{h}_{p}_"));
    }
    out.push(domain.to_string());
    out
}

/// Every endpoint of `domain`, in the order they are tried: dockerd's
/// `registry-mirrors` (Docker Hub only), the `hosts.toml` mirrors, then the
/// registry itself.
pub fn endpoints(opts: &RegistryOptions, domain: &str) -> Result<Vec<Endpoint>> {
    let mut out = Vec::new();
    if matches!(domain, "docker.io" | "index.docker.io") {
        for m in &opts.mirrors {
            out.push(docker_mirror(m)?);
        }
    }
    match find_hosts_file(&opts.certs_dirs, domain) {
        Some(file) => out.extend(load_hosts_file(&file, domain)?),
        None => out.push(Endpoint::registry(domain)),
    }
    Ok(out)
}

/// The `hosts.toml` for `domain`: in the first certs dir holding a
/// directory for it; `_default/hosts.toml` only when none does.
fn find_hosts_file(dirs: &[PathBuf], domain: &str) -> Option<PathBuf> {
    let names = host_dir_names(domain);
    let mut had_dir = false;
    for base in dirs {
        for n in &names {
            let dir = base.join(n);
            if dir.is_dir() {
                had_dir = true;
                let f = dir.join("hosts.toml");
                if f.is_file() {
                    return Some(f);
                }
            }
        }
    }
    if had_dir {
        return None;
    }
    dirs.iter()
        .map(|b| b.join("_default").join("hosts.toml"))
        .find(|f| f.is_file())
}

/// A `registry-mirrors` entry: an `http(s)://host[:port]` URL, no path.
pub fn docker_mirror(s: &str) -> Result<Endpoint> {
    let bad = |why: &str| RegistryError::Invalid(format!("invalid mirror: {why}: {s}"));
    let u = Url::parse(s).map_err(|e| bad(&e.to_string()))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(bad(&format!("unsupported scheme {:?}", u.scheme())));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("credentials are not allowed in the URL"));
    }
    if u.path() != "/" && !u.path().is_empty() {
        return Err(bad(&format!("path ({}) not allowed", u.path())));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad("query or fragment not allowed"));
    }
    let host = host_port(&u).ok_or_else(|| bad("no host"))?;
    Ok(Endpoint {
        scheme: u.scheme().to_string(),
        host,
        path: "/v2".into(),
        explicit_scheme: true,
        capabilities: Capabilities::PULL,
        skip_verify: None,
        ca: Vec::new(),
        client: Vec::new(),
        headers: Vec::new(),
        dial_timeout: None,
        mirror: true,
        source: None,
    })
}

fn host_port(u: &Url) -> Option<String> {
    let h = u.host_str()?;
    Some(match u.port() {
        Some(p) => format!("{h}:{p}"),
        None => h.to_string(),
    })
}

// A small file, read as a pull starts (containerd reads it there too, so
// edits apply without a restart); callers run on the pull's task.
fn load_hosts_file(path: &Path, domain: &str) -> Result<Vec<Endpoint>> {
    let text = std::fs::read_to_string(path).map_err(crate::error::io_err("read", path))?;
    parse_hosts(&text, path, domain)
}

pub(crate) fn parse_hosts(text: &str, path: &Path, domain: &str) -> Result<Vec<Endpoint>> {
    let err = |key: &str, msg: String| {
        RegistryError::Invalid(if key.is_empty() {
            format!("{}: {msg}", path.display())
        } else {
            format!("{}: {key}: {msg}", path.display())
        })
    };
    let table: Table = text
        .parse()
        .map_err(|e: toml::de::Error| err("", e.to_string().trim().replace('\n', " ")))?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut out = Vec::new();
    for (key, value) in &table {
        match key.as_str() {
            "server" | "capabilities" | "ca" | "client" | "skip_verify" | "header"
            | "override_path" | "dial_timeout" => {}
            "host" => {
                let Value::Table(hosts) = value else {
                    return Err(err(
                        "host",
                        "must be a table of [host.\"URL\"] sections".into(),
                    ));
                };
                for (url, conf) in hosts {
                    let key = format!("host.{url:?}");
                    let Value::Table(conf) = conf else {
                        return Err(err(&key, "must be a table".into()));
                    };
                    let mut ep = endpoint_of(url, conf, dir, &key, &err)?;
                    ep.mirror = true;
                    ep.source = Some(path.to_path_buf());
                    out.push(ep);
                }
            }
            k => return Err(err(k, "unknown key".into())),
        }
    }
    let server = match table.get("server") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(err("server", "must be a string".into())),
    };
    let mut ep = match server {
        Some(s) if !s.is_empty() => endpoint_of(s, &table, dir, "server", &err)?,
        _ => {
            // containerd: the registry's usual address, with every
            // capability, but the top-level TLS and header settings.
            let mut ep = endpoint_of(
                &format!("https://{}", api_host(domain)),
                &table,
                dir,
                "server",
                &err,
            )?;
            ep.explicit_scheme = false;
            ep.capabilities = Capabilities::ALL;
            ep.path = "/v2".into();
            ep
        }
    };
    ep.mirror = false;
    ep.source = Some(path.to_path_buf());
    out.push(ep);
    Ok(out)
}

fn endpoint_of(
    url: &str,
    conf: &Table,
    dir: &Path,
    key: &str,
    err: &dyn Fn(&str, String) -> RegistryError,
) -> Result<Endpoint> {
    let sub = |k: &str| format!("{key}.{k}");
    let full = if url.starts_with("http://") || url.starts_with("https://") {
        url.to_string()
    } else {
        format!("https://{url}")
    };
    let u = Url::parse(&full).map_err(|e| err(key, format!("invalid URL {url:?}: {e}")))?;
    let host = host_port(&u).ok_or_else(|| err(key, format!("no host in {url:?}")))?;
    let override_path = match conf.get("override_path") {
        None => false,
        Some(Value::Boolean(b)) => *b,
        Some(_) => return Err(err(&sub("override_path"), "must be true or false".into())),
    };
    let mut path = u.path().trim_end_matches('/').to_string();
    if !override_path && !path.ends_with("/v2") {
        path.push_str("/v2");
    }
    if path.is_empty() {
        path = "/".into();
    }
    let capabilities = match conf.get("capabilities") {
        None => Capabilities::ALL,
        Some(v) => {
            let mut c = Capabilities {
                pull: false,
                resolve: false,
                push: false,
            };
            for s in strings(v).map_err(|m| err(&sub("capabilities"), m))? {
                match s.to_ascii_lowercase().as_str() {
                    "pull" => c.pull = true,
                    "resolve" => c.resolve = true,
                    "push" => c.push = true,
                    _ => {
                        return Err(err(
                            &sub("capabilities"),
                            format!("unknown capability {s:?} (pull, resolve, push)"),
                        ))
                    }
                }
            }
            if strings(v).is_ok_and(|l| l.is_empty()) {
                Capabilities::ALL
            } else {
                c
            }
        }
    };
    let skip_verify = match conf.get("skip_verify") {
        None => None,
        Some(Value::Boolean(b)) => Some(*b),
        Some(_) => return Err(err(&sub("skip_verify"), "must be true or false".into())),
    };
    let abs = |p: &str| {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        }
    };
    let ca = match conf.get("ca") {
        None => Vec::new(),
        Some(v) => strings(v)
            .map_err(|m| err(&sub("ca"), m))?
            .iter()
            .map(|s| abs(s))
            .collect(),
    };
    let mut client = Vec::new();
    match conf.get("client") {
        None => {}
        Some(Value::String(s)) => client.push((abs(s), None)),
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => client.push((abs(s), None)),
                    Value::Array(pair) => match pair.as_slice() {
                        [Value::String(c), Value::String(k)] => client.push((abs(c), Some(abs(k)))),
                        _ => {
                            return Err(err(
                                &sub("client"),
                                "a pair must be [\"cert\", \"key\"]".into(),
                            ))
                        }
                    },
                    _ => {
                        return Err(err(
                            &sub("client"),
                            "must hold paths or [cert, key] pairs".into(),
                        ))
                    }
                }
            }
        }
        Some(_) => return Err(err(&sub("client"), "must be a path or a list".into())),
    }
    let mut headers = Vec::new();
    match conf.get("header") {
        None => {}
        Some(Value::Table(t)) => {
            for (name, v) in t {
                let k = sub(&format!("header.{name}"));
                reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| err(&k, "not a header name".into()))?;
                for value in strings(v).map_err(|m| err(&k, m))? {
                    reqwest::header::HeaderValue::from_str(&value)
                        .map_err(|_| err(&k, "not a header value".into()))?;
                    headers.push((name.clone(), value));
                }
            }
        }
        Some(_) => return Err(err(&sub("header"), "must be a table".into())),
    }
    let dial_timeout = match conf.get("dial_timeout") {
        None => None,
        Some(Value::String(d)) => Some(
            go_duration(d)
                .ok_or_else(|| err(&sub("dial_timeout"), format!("invalid duration {d:?}")))?,
        ),
        Some(_) => {
            return Err(err(
                &sub("dial_timeout"),
                "must be a duration string (\"5s\")".into(),
            ))
        }
    };
    let top = key == "server";
    for k in conf.keys() {
        let known = matches!(
            k.as_str(),
            "capabilities"
                | "ca"
                | "client"
                | "skip_verify"
                | "header"
                | "override_path"
                | "dial_timeout"
        ) || (top && matches!(k.as_str(), "server" | "host"));
        if !known {
            return Err(err(&sub(k), "unknown key".into()));
        }
    }
    Ok(Endpoint {
        scheme: u.scheme().to_string(),
        host,
        path,
        explicit_scheme: true,
        capabilities,
        skip_verify,
        ca,
        client,
        headers,
        dial_timeout,
        mirror: false,
        source: None,
    })
}

/// A Go duration as containerd reads `dial_timeout`: `1.5s`, `300ms`, `1m30s`.
fn go_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * scale;
    }
    Some(Duration::from_secs_f64(total))
}

/// A string or a list of strings.
fn strings(v: &Value) -> std::result::Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "a list item is a {}, not a string",
                    other.type_str()
                )),
            })
            .collect(),
        other => Err(format!(
            "must be a string or a list of strings, not a {}",
            other.type_str()
        )),
    }
}

/// Docker Hub's API lives on another host than its name.
pub(crate) fn api_host(domain: &str) -> &str {
    match domain {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        d => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, domain: &str) -> Result<Vec<Endpoint>> {
        parse_hosts(text, Path::new("/etc/pier/certs.d/x/hosts.toml"), domain)
    }

    #[test]
    fn mirrors_in_file_order_then_the_server() {
        let eps = parse(
            r#"server = "https://registry.k8s.io"
[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
[host."https://b.example/some/path"]
  skip_verify = true
  ca = ["ca.crt", "/abs/ca2.crt"]
  client = [["c.cert", "c.key"], "both.pem"]
  header = { x-one = "1", x-two = ["a", "b"] }
[host."https://a.example/root"]
  override_path = true
  capabilities = ["pull"]
"#,
            "registry.k8s.io",
        )
        .unwrap();
        let urls: Vec<_> = eps.iter().map(Endpoint::url).collect();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:5000/v2",
                "https://b.example/some/path/v2",
                "https://a.example/root",
                "https://registry.k8s.io/v2",
            ]
        );
        assert_eq!(eps[0].capabilities, Capabilities::PULL);
        assert!(eps[0].mirror && !eps[3].mirror);
        assert_eq!(eps[3].capabilities, Capabilities::ALL);
        assert_eq!(eps[1].skip_verify, Some(true));
        assert_eq!(
            eps[1].ca,
            [
                PathBuf::from("/etc/pier/certs.d/x/ca.crt"),
                PathBuf::from("/abs/ca2.crt")
            ]
        );
        assert_eq!(
            eps[1].client,
            [
                (
                    PathBuf::from("/etc/pier/certs.d/x/c.cert"),
                    Some(PathBuf::from("/etc/pier/certs.d/x/c.key"))
                ),
                (PathBuf::from("/etc/pier/certs.d/x/both.pem"), None),
            ]
        );
        assert_eq!(
            eps[1].headers,
            [
                ("x-one".to_string(), "1".to_string()),
                ("x-two".into(), "a".into()),
                ("x-two".into(), "b".into())
            ]
        );
        let c = eps[2].capabilities;
        assert!(c.pull && !c.resolve && !c.push);
    }

    #[test]
    fn no_server_means_the_usual_address_with_top_level_settings() {
        let eps = parse(
            "skip_verify = true\ncapabilities = [\"pull\"]\n[host.\"mirror:5000\"]\n",
            "docker.io",
        )
        .unwrap();
        assert_eq!(eps[0].url(), "https://mirror:5000/v2");
        assert_eq!(eps[0].capabilities, Capabilities::ALL);
        assert_eq!(eps[1].url(), "https://registry-1.docker.io/v2");
        assert!(!eps[1].explicit_scheme);
        assert_eq!(eps[1].skip_verify, Some(true));
        assert_eq!(eps[1].capabilities, Capabilities::ALL);
        // A server with its own scheme keeps it.
        let eps = parse("server = \"http://127.0.0.1:5000\"", "127.0.0.1:5000").unwrap();
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].url(), "http://127.0.0.1:5000/v2");
        assert!(eps[0].explicit_scheme);
    }

    #[test]
    fn errors_name_the_file_and_key() {
        for (text, want) in [
            ("server = 5", "hosts.toml: server: must be a string"),
            (
                "[host.\"http://m\"]\ncapabilities = [\"pul\"]",
                "hosts.toml: host.\"http://m\".capabilities: unknown capability \"pul\"",
            ),
            (
                "[host.\"http://m\"]\nskip_verify = \"yes\"",
                "host.\"http://m\".skip_verify: must be true or false",
            ),
            (
                "[host.\"http://m\"]\ncapability = [\"pull\"]",
                "host.\"http://m\".capability: unknown key",
            ),
            ("mirrors = []", "hosts.toml: mirrors: unknown key"),
            (
                "[host.\"http://m\"]\nheader = { \"a b\" = \"x\" }",
                "header.a b: not a header name",
            ),
            (
                "server = ",
                "/etc/pier/certs.d/x/hosts.toml: TOML parse error",
            ),
        ] {
            let e = parse(text, "r.example").unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(e.starts_with("/etc/pier/certs.d/x/hosts.toml: "), "{e}");
        }
    }

    #[test]
    fn dial_timeouts_are_go_durations() {
        assert_eq!(go_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(go_duration("1.5s"), Some(Duration::from_millis(1500)));
        for bad in ["", "5", "5x", "s"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
        let eps = parse("[host.\"http://m\"]\ndial_timeout = \"3s\"", "r.example").unwrap();
        assert_eq!(eps[0].dial_timeout, Some(Duration::from_secs(3)));
        let e = parse("dial_timeout = \"soon\"", "r.example")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("server.dial_timeout: invalid duration \"soon\""),
            "{e}"
        );
    }

    #[test]
    fn docker_mirrors_are_validated() {
        let m = docker_mirror("http://127.0.0.1:5000/").unwrap();
        assert_eq!(m.url(), "http://127.0.0.1:5000/v2");
        assert_eq!(m.capabilities, Capabilities::PULL);
        for (bad, want) in [
            ("ftp://m", "unsupported scheme"),
            ("https://m/path", "path (/path) not allowed"),
            ("https://u:p@m", "credentials"),
            ("m:5000", "invalid mirror"),
        ] {
            let e = docker_mirror(bad).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn host_dirs_and_default() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path();
        let write = |dir: &str, text: &str| {
            std::fs::create_dir_all(d.join(dir)).unwrap();
            if !text.is_empty() {
                std::fs::write(d.join(dir).join("hosts.toml"), text).unwrap();
            }
        };
        write(
            "_default",
            "[host.\"http://127.0.0.1:1\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
        );
        write("reg.example_5000_", "server = \"http://10.0.0.1:5000\"\n");
        write("certs-only.example", "");
        let opts = RegistryOptions {
            certs_dirs: vec![d.join("missing"), d.to_path_buf()],
            mirrors: vec!["http://127.0.0.1:7000".into()],
            ..Default::default()
        };
        let urls = |domain: &str| -> Vec<String> {
            endpoints(&opts, domain)
                .unwrap()
                .iter()
                .map(Endpoint::url)
                .collect()
        };
        assert_eq!(urls("reg.example:5000"), ["http://10.0.0.1:5000/v2"]);
        // A directory of certificates only shadows _default, as in containerd.
        assert_eq!(
            urls("certs-only.example"),
            ["https://certs-only.example/v2"]
        );
        assert_eq!(
            urls("quay.io"),
            ["http://127.0.0.1:1/v2", "https://quay.io/v2"]
        );
        // registry-mirrors are Docker Hub's only, before the hosts.toml ones.
        assert_eq!(
            urls("docker.io"),
            [
                "http://127.0.0.1:7000/v2",
                "http://127.0.0.1:1/v2",
                "https://registry-1.docker.io/v2"
            ]
        );
    }
}
