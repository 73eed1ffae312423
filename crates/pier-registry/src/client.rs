//! HTTP to registries: scheme choice (HTTPS, with plain HTTP as a fallback
//! for loopback and insecure registries), the `/v2/` ping, and the auth handshake (Basic, Bearer
//! tokens cached per scope) with one retry after a 401.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use crate::auth::{encode_basic, parse_www_authenticate, AuthConfig, Challenge, TokenResponse};
use crate::error::{http_err, status_error, RegistryError, Result};
use crate::hosts::{self, Endpoint};
use crate::transport::{host_of, ExtraTls, RegistryOptions, Transports};

#[derive(Clone)]
struct CachedToken {
    header: HeaderValue,
    expires: Instant,
}

/// A registry client. Cheap to clone; tokens are shared between clones.
#[derive(Clone)]
pub struct Client {
    transports: Transports,
    tokens: Arc<Mutex<HashMap<String, CachedToken>>>,
    /// The scheme that last worked for each insecure registry, tried first.
    schemes: Arc<Mutex<HashMap<String, &'static str>>>,
}

impl Client {
    pub fn new(opts: RegistryOptions) -> Result<Client> {
        Ok(Client {
            transports: Transports::new(opts)?,
            tokens: Arc::default(),
            schemes: Arc::default(),
        })
    }

    pub fn options(&self) -> &RegistryOptions {
        self.transports.opts()
    }

    /// Where `domain`'s content is fetched and pushed, in the order tried
    /// (`hosts.toml` mirrors and `registry-mirrors` first; see [`crate::hosts`]).
    pub fn endpoints(&self, domain: &str) -> Result<Vec<Endpoint>> {
        hosts::endpoints(self.options(), domain)
    }

    /// The endpoints a pull of `domain` tries, in order: those with the
    /// `pull` capability, and `resolve` too unless the pull is by digest.
    pub fn pull_endpoints(&self, domain: &str, by_digest: bool) -> Result<Vec<Endpoint>> {
        let all = self.endpoints(domain)?;
        let source = all.iter().find_map(|e| e.source.clone());
        let eps: Vec<Endpoint> = all
            .into_iter()
            .filter(|e| e.capabilities.pull && (e.capabilities.resolve || by_digest))
            .collect();
        if eps.is_empty() {
            return Err(RegistryError::Invalid(format!(
                "no host of {domain} may {}{}",
                if by_digest { "pull" } else { "resolve tags" },
                source.map_or(String::new(), |s| format!(" (see {})", s.display()))
            )));
        }
        Ok(eps)
    }

    /// Opens a session with registry `domain` for `repo` with `actions`
    /// (`pull`, `push`), plus `pull` on `extra_pull` repos (mount sources),
    /// at the registry's first endpoint that may push when `actions` has
    /// `push` (mirrors never get a push without that capability), else at
    /// the registry itself.
    pub async fn session(
        &self,
        domain: &str,
        repo: &str,
        actions: &[&str],
        extra_pull: &[String],
        creds: Option<AuthConfig>,
    ) -> Result<Session> {
        let eps = self.endpoints(domain)?;
        let ep =
            if actions.contains(&"push") {
                eps.iter().find(|e| e.capabilities.push).ok_or_else(|| {
                    RegistryError::Invalid(format!(
                        "no host of {domain} may push{}",
                        eps.iter().find_map(|e| e.source.as_ref()).map_or(
                            String::new(),
                            |s| format!(" ({} gives none the \"push\" capability)", s.display())
                        )
                    ))
                })?
            } else {
                eps.iter()
                    .find(|e| !e.mirror)
                    .or(eps.last())
                    .ok_or_else(|| RegistryError::Invalid(format!("no host for {domain}")))?
            };
        self.session_at(ep, domain, repo, actions, extra_pull, creds)
            .await
    }

    /// Opens a session with endpoint `ep` of registry `domain`.
    ///
    /// The registry at its implied address is reached as Docker does: over
    /// HTTPS with verified certificates, or, when insecure (loopback, or
    /// listed), HTTPS without certificate checks, then plain HTTP when HTTPS
    /// cannot connect. An endpoint written with its scheme gets that scheme.
    pub async fn session_at(
        &self,
        ep: &Endpoint,
        domain: &str,
        repo: &str,
        actions: &[&str],
        extra_pull: &[String],
        creds: Option<AuthConfig>,
    ) -> Result<Session> {
        let mut scopes = BTreeSet::new();
        if !repo.is_empty() && !actions.is_empty() {
            scopes.insert(format!("repository:{repo}:{}", actions.join(",")));
        }
        for r in extra_pull {
            if r != repo {
                scopes.insert(format!("repository:{r}:pull"));
            }
        }
        let insecure_host = |h: &str| is_loopback(h) || self.options().is_insecure(h);
        let insecure = insecure_host(&ep.host) || (!ep.mirror && insecure_host(domain));
        // A hosts.toml mirror is another party: the registry's credentials
        // are not sent there (dockerd's registry-mirrors do get them).
        let creds = if ep.mirror && ep.source.is_some() && ep.host != domain {
            None
        } else {
            creds
        };
        let certs_key = if ep.mirror { ep.host.as_str() } else { domain };
        let extra = ExtraTls {
            ca: ep.ca.clone(),
            client: ep.client.clone(),
            connect_timeout: ep.dial_timeout,
        };
        let mut headers = Vec::new();
        for (k, v) in &ep.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| RegistryError::Invalid(format!("invalid header name {k:?}")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| RegistryError::Invalid(format!("invalid value of header {k}")))?;
            headers.push((name, value));
        }
        let mut s = Session {
            client: self.clone(),
            http: self.transports.for_domain(
                certs_key,
                ep.skip_verify.unwrap_or(insecure),
                &extra,
            )?,
            domain: domain.to_string(),
            base: Url::parse(&format!("{}://{}/", ep.scheme, ep.host))
                .map_err(|e| RegistryError::Invalid(format!("invalid registry {domain}: {e}")))?,
            root: ep.path.clone(),
            headers,
            creds: creds.filter(|c| !c.is_anonymous()),
            scopes,
            auth: Arc::new(Mutex::new(None)),
        };
        if ep.explicit_scheme || !insecure {
            s.ping().await?;
            return Ok(s);
        }
        let known = self.lock_schemes().get(domain).copied();
        let order = match known {
            Some("http") => ["http", "https"],
            _ => ["https", "http"],
        };
        let mut last = None;
        for scheme in order {
            s.base.set_scheme(scheme).ok();
            match s.ping().await {
                Ok(()) => {
                    self.lock_schemes().insert(domain.to_string(), scheme);
                    return Ok(s);
                }
                // Only a failure to talk at all means "try the other scheme".
                Err(e @ RegistryError::Http { .. }) => {
                    tracing::debug!("{scheme} to {domain} failed: {e}");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::Protocol(format!("cannot reach {domain}"))))
    }

    fn lock_schemes(&self) -> std::sync::MutexGuard<'_, HashMap<String, &'static str>> {
        self.schemes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Loopback registries are reached over plain HTTP, as Docker does.
pub fn is_loopback(domain: &str) -> bool {
    let host = host_of(domain);
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

/// A client bound to one registry and a set of scopes.
#[derive(Clone)]
pub struct Session {
    client: Client,
    http: reqwest::Client,
    domain: String,
    base: Url,
    /// The API root on `base`: `/v2`, or a mirror's own (`/path/v2`).
    root: String,
    /// Sent with every request (a `hosts.toml`'s `header`).
    headers: Vec<(HeaderName, HeaderValue)>,
    creds: Option<AuthConfig>,
    scopes: BTreeSet<String>,
    auth: Arc<Mutex<Option<HeaderValue>>>,
}

impl Session {
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// `scheme://host/`.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// An absolute URL for `path` (which starts with `/v2/`, mapped onto the
    /// endpoint's API root), or a `Location` header value (absolute or relative).
    pub fn url(&self, path: &str) -> Result<Url> {
        let rooted;
        let path = match path.strip_prefix("/v2") {
            Some(rest) if self.root != "/v2" && (rest.is_empty() || rest.starts_with('/')) => {
                rooted = format!("{}{rest}", self.root.trim_end_matches('/'));
                rooted.as_str()
            }
            _ => path,
        };
        self.base
            .join(path)
            .map_err(|e| RegistryError::Protocol(format!("bad URL {path}: {e}")))
    }

    /// Adds the endpoint's configured headers.
    fn decorate(&self, mut rb: RequestBuilder) -> RequestBuilder {
        for (k, v) in &self.headers {
            rb = rb.header(k.clone(), v.clone());
        }
        rb
    }

    /// `GET /v2/`: learns the auth challenge and authenticates up front, so
    /// later requests with streamed bodies need no retry.
    async fn ping(&mut self) -> Result<()> {
        let url = self.url("/v2/")?;
        let resp = self
            .decorate(self.http.get(url.clone()))
            .send()
            .await
            .map_err(http_err(format!("Get \"{url}\"")))?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => {
                let challenges = challenges_of(&resp);
                self.authenticate(&challenges).await?;
                // Verify the credentials (a login checks exactly this).
                let what = format!("Get \"{url}\"");
                let resp = self.send(|h| h.get(url.clone()), &what).await?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(self.fail(&what, resp).await)
                }
            }
            // Some registries answer 404 on /v2/ but serve the API; carry on.
            StatusCode::NOT_FOUND => Ok(()),
            _ => Err(self.fail(&format!("Get \"{url}\""), resp).await),
        }
    }

    async fn fail(&self, what: &str, resp: Response) -> RegistryError {
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        status_error(what, status, &body)
    }

    /// Turns a non-success answer into an error.
    pub async fn error_of(&self, what: &str, resp: Response) -> RegistryError {
        self.fail(what, resp).await
    }

    /// Sends a request built by `build` with the current credentials; on a
    /// 401 authenticates against its challenge and sends it once more.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
        what: &str,
    ) -> Result<Response> {
        let mut retried = false;
        loop {
            let mut rb = self.decorate(build(&self.http));
            if let Some(h) = self.current_auth() {
                rb = rb.header(AUTHORIZATION, h);
            }
            let resp = rb.send().await.map_err(http_err(what.to_string()))?;
            if resp.status() != StatusCode::UNAUTHORIZED || retried {
                if resp.status() == StatusCode::UNAUTHORIZED {
                    let body = resp.bytes().await.unwrap_or_default();
                    let (codes, text) = crate::error::describe_error_body(401, &body);
                    let text = if codes.is_empty() {
                        "unauthorized".to_string()
                    } else {
                        text
                    };
                    return Err(RegistryError::Unauthorized(format!("{what}: {text}")));
                }
                return Ok(resp);
            }
            retried = true;
            let challenges = challenges_of(&resp);
            if challenges.is_empty() {
                return Err(self.fail(what, resp).await);
            }
            self.authenticate(&challenges).await?;
        }
    }

    /// A convenience for body-less requests.
    pub async fn request(
        &self,
        method: Method,
        url: Url,
        headers: &[(&str, &str)],
    ) -> Result<Response> {
        let what = format!("{method} {url}");
        self.send(
            |h| {
                let mut rb = h.request(method.clone(), url.clone());
                for (k, v) in headers {
                    rb = rb.header(*k, *v);
                }
                rb
            },
            &what,
        )
        .await
    }

    fn current_auth(&self) -> Option<HeaderValue> {
        self.auth.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_auth(&self, h: HeaderValue) {
        *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = Some(h);
    }

    async fn authenticate(&self, challenges: &[Challenge]) -> Result<()> {
        if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
            let h = self.bearer_token(c).await?;
            self.set_auth(h);
            return Ok(());
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            let Some(creds) = &self.creds else {
                // Docker's wording for a Basic registry and no login.
                return Err(RegistryError::Unauthorized(
                    "no basic auth credentials".into(),
                ));
            };
            let v = HeaderValue::from_str(&format!(
                "Basic {}",
                encode_basic(&creds.username, &creds.password)
            ))
            .map_err(|_| RegistryError::Invalid("credentials are not valid header text".into()))?;
            self.set_auth(v);
            return Ok(());
        }
        Err(RegistryError::Protocol(format!(
            "{}: unsupported authentication scheme {:?}",
            self.domain,
            challenges
                .iter()
                .map(|c| c.scheme.as_str())
                .collect::<Vec<_>>()
        )))
    }

    /// Fetches (or reuses) a bearer token for our scopes plus any the
    /// challenge names.
    async fn bearer_token(&self, c: &Challenge) -> Result<HeaderValue> {
        if let Some(t) = self
            .creds
            .as_ref()
            .map(|c| &c.registrytoken)
            .filter(|t| !t.is_empty())
        {
            return HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                RegistryError::Invalid("registry token is not valid header text".into())
            });
        }
        let realm = c.param("realm").ok_or_else(|| {
            RegistryError::Protocol(format!("{}: bearer challenge without realm", self.domain))
        })?;
        let service = c.param("service").unwrap_or("");
        let mut scopes = self.scopes.clone();
        if let Some(s) = c.param("scope") {
            // Several scopes may be space separated.
            scopes.extend(s.split(' ').filter(|s| !s.is_empty()).map(str::to_string));
        }
        // Keyed by the whole credentials (hashed), not only the user name: a
        // login with another password must not be answered from the cache.
        let who = self
            .creds
            .as_ref()
            .map(|c| {
                pier_reference::Digest::sha256(
                    format!("{}\0{}\0{}", c.username, c.password, c.identitytoken).as_bytes(),
                )
                .to_string()
            })
            .unwrap_or_default();
        let key = format!(
            "{realm}|{service}|{}|{who}",
            scopes.iter().cloned().collect::<Vec<_>>().join(" ")
        );
        if let Some(t) = self
            .client
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .filter(|t| t.expires > Instant::now())
        {
            return Ok(t.header.clone());
        }
        let mut url = Url::parse(realm)
            .map_err(|e| RegistryError::Protocol(format!("bad token realm {realm}: {e}")))?;
        let http = &self.http;
        let resp = match self.creds.as_ref().filter(|c| !c.identitytoken.is_empty()) {
            Some(creds) => {
                // OAuth2 refresh-token grant, as Docker does for identity tokens.
                let mut form = vec![
                    ("grant_type".to_string(), "refresh_token".to_string()),
                    ("refresh_token".into(), creds.identitytoken.clone()),
                    ("service".into(), service.to_string()),
                    ("client_id".into(), "pier".into()),
                ];
                form.extend(scopes.iter().map(|s| ("scope".to_string(), s.clone())));
                let body = form
                    .iter()
                    .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                self.decorate(http.post(url.clone()))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
            }
            None => {
                {
                    let mut q = url.query_pairs_mut();
                    if !service.is_empty() {
                        q.append_pair("service", service);
                    }
                    for s in &scopes {
                        q.append_pair("scope", s);
                    }
                    if let Some(c) = &self.creds {
                        q.append_pair("account", &c.username);
                    }
                }
                let mut rb = self.decorate(http.get(url.clone()));
                if let Some(c) = &self.creds {
                    rb = rb.basic_auth(&c.username, Some(&c.password));
                }
                rb.send().await
            }
        }
        .map_err(http_err(format!("Get \"{realm}\"")))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(http_err(format!("reading token from {realm}")))?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let (_, text) = crate::error::describe_error_body(status.as_u16(), &body);
            return Err(RegistryError::Unauthorized(format!(
                "Get \"{realm}\": unauthorized: {text}"
            )));
        }
        if !status.is_success() {
            return Err(status_error(
                &format!("Get \"{realm}\""),
                status.as_u16(),
                &body,
            ));
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::Protocol(format!("token answer from {realm}: {e}")))?;
        let token = t.bearer().ok_or_else(|| {
            RegistryError::Protocol(format!("token answer from {realm} has no token"))
        })?;
        let header = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| RegistryError::Protocol("token is not valid header text".into()))?;
        // Renew a little early; the spec's default lifetime is 60 s.
        let life = t.expires_in.unwrap_or(60).max(10);
        self.client
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                key,
                CachedToken {
                    header: header.clone(),
                    expires: Instant::now() + Duration::from_secs(life - 5),
                },
            );
        Ok(header)
    }
}

fn challenges_of(resp: &Response) -> Vec<Challenge> {
    resp.headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_www_authenticate)
        .collect()
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        for d in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback(d), "{d}");
        }
        for d in [
            "docker.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[::2]:1",
        ] {
            assert!(!is_loopback(d), "{d}");
        }
        assert_eq!(crate::hosts::api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(crate::hosts::api_host("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn urlencode_form_values() {
        assert_eq!(
            urlencode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
