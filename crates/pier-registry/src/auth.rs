//! Credentials and the registry auth handshake: `WWW-Authenticate` challenges,
//! Docker's `AuthConfig` (the `X-Registry-Auth` header), and token answers.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{RegistryError, Result};

/// Docker's `AuthConfig`: what `X-Registry-Auth` and `POST /auth` carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub username: String,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub password: String,
    /// base64 of `user:password`, as stored in config.json.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub auth: String,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub email: String,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub serveraddress: String,
    /// An OAuth refresh token from an earlier login.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub identitytoken: String,
    /// A bearer token to send as is.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub registrytoken: String,
}

/// Go's decoder leaves a string field empty for `null`; clients send it
/// (bollard: `"password": null`), so it is not an error here either.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl AuthConfig {
    pub fn basic(username: &str, password: &str) -> AuthConfig {
        AuthConfig {
            username: username.into(),
            password: password.into(),
            ..Default::default()
        }
    }

    /// Decodes `X-Registry-Auth`: base64url (padded or not; plain base64 is
    /// accepted too) of a JSON `AuthConfig`. Empty or `{}` means anonymous.
    pub fn from_header(value: &str) -> Result<Option<AuthConfig>> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        let trimmed = value.trim_end_matches('=');
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(trimmed)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
            .map_err(|e| RegistryError::Invalid(format!("invalid X-Registry-Auth header: {e}")))?;
        let mut cfg: AuthConfig = serde_json::from_slice(&raw)
            .map_err(|e| RegistryError::Invalid(format!("invalid X-Registry-Auth header: {e}")))?;
        cfg.expand_auth();
        Ok(if cfg.is_anonymous() { None } else { Some(cfg) })
    }

    /// Encodes as `X-Registry-Auth` does (base64url of the JSON).
    pub fn to_header(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }

    /// Fills username/password from `auth` when only that is set.
    pub fn expand_auth(&mut self) {
        if self.username.is_empty()
            && self.password.is_empty()
            && !self.auth.is_empty()
            && let Some((u, p)) = decode_basic(&self.auth)
        {
            self.username = u;
            self.password = p;
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.auth.is_empty()
            && self.identitytoken.is_empty()
            && self.registrytoken.is_empty()
    }
}

/// `base64(user:password)` -> (user, password).
pub(crate) fn decode_basic(auth: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

pub(crate) fn encode_basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-cased: `bearer`, `basic`.
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

/// Parses `WWW-Authenticate` (RFC 7235): one or more challenges, each a
/// scheme followed by `key=value` or `key="quoted, value"` pairs.
pub fn parse_www_authenticate(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let b = header.as_bytes();
    let mut i = 0;
    let skip = |i: &mut usize, pred: &dyn Fn(u8) -> bool| {
        while *i < b.len() && pred(b[*i]) {
            *i += 1;
        }
    };
    let is_token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&c);
    while i < b.len() {
        skip(&mut i, &|c| c == b' ' || c == b'\t' || c == b',');
        let start = i;
        skip(&mut i, &is_token);
        if i == start {
            // Not a token: skip the stray byte rather than loop.
            i += 1;
            continue;
        }
        let word = &header[start..i];
        skip(&mut i, &|c| c == b' ' || c == b'\t');
        if i < b.len() && b[i] == b'=' && !out.is_empty() {
            i += 1;
            skip(&mut i, &|c| c == b' ' || c == b'\t');
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    // Quoted strings are ASCII in practice; keep bytes as chars.
                    let ch_len = header[i..].chars().next().map(char::len_utf8).unwrap_or(1);
                    v.push_str(&header[i..i + ch_len]);
                    i += ch_len;
                }
                i += 1;
                v
            } else {
                let vs = i;
                skip(&mut i, &|c| c != b',' && c != b' ' && c != b'\t');
                header[vs..i].to_string()
            };
            if let Some(c) = out.last_mut() {
                c.params.insert(word.to_ascii_lowercase(), value);
            }
        } else if i < b.len() && b[i] == b'=' {
            // A parameter with no scheme before it: ignore it.
            i += 1;
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    out
}

/// What a token endpoint answers.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    pub fn bearer(&self) -> Option<&str> {
        [&self.token, &self.access_token]
            .into_iter()
            .find(|t| !t.is_empty())
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(alphabet: &base64::engine::GeneralPurpose, json: &str) -> String {
        alphabet.encode(json)
    }

    /// What clients send: bollard's nulls, missing fields, unknown fields,
    /// either alphabet, with or without padding.
    #[test]
    fn header_accepts_what_docker_accepts() {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        let bollard = r#"{"username":"me","password":null,"auth":null,"email":null,"serveraddress":"127.0.0.1:5000","identitytoken":null,"registrytoken":null}"#;
        for alphabet in [&URL_SAFE, &URL_SAFE_NO_PAD, &STANDARD, &STANDARD_NO_PAD] {
            let a = AuthConfig::from_header(&b64(alphabet, bollard))
                .unwrap()
                .unwrap();
            assert_eq!(a.username, "me");
            assert_eq!(a.password, "");
            assert_eq!(a.serveraddress, "127.0.0.1:5000");
        }
        let all_null = r#"{"username":null,"password":null}"#;
        assert_eq!(
            AuthConfig::from_header(&b64(&URL_SAFE, all_null)).unwrap(),
            None
        );
        let extra = r#"{"username":"u","password":"p","unknown":[1]}"#;
        let a = AuthConfig::from_header(&b64(&URL_SAFE_NO_PAD, extra))
            .unwrap()
            .unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p"));
        // A JSON whose base64 differs between the alphabets ('?' -> '/' or '_').
        let odd = r#"{"username":"u??>","password":"p>>?"}"#;
        assert!(STANDARD.encode(odd).contains('/') || STANDARD.encode(odd).contains('+'));
        for alphabet in [&URL_SAFE, &URL_SAFE_NO_PAD, &STANDARD, &STANDARD_NO_PAD] {
            let a = AuthConfig::from_header(&b64(alphabet, odd))
                .unwrap()
                .unwrap();
            assert_eq!(a.username, "u??>");
        }
        // `POST /auth` bodies go through the same fields.
        let a: AuthConfig = serde_json::from_str(bollard).unwrap();
        assert_eq!(a.password, "");
    }

    #[test]
    fn bearer_challenge() {
        let h = r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:library/busybox:pull""#;
        let c = parse_www_authenticate(h);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.example.com/token"));
        assert_eq!(c[0].param("service"), Some("registry.example.com"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn scope_with_commas_and_error_param() {
        let h = r#"Bearer realm="http://127.0.0.1:1/t", service=svc, scope="repository:a/b:pull,push",error="insufficient_scope""#;
        let c = parse_www_authenticate(h);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].param("scope"), Some("repository:a/b:pull,push"));
        assert_eq!(c[0].param("service"), Some("svc"));
        assert_eq!(c[0].param("error"), Some("insufficient_scope"));
    }

    #[test]
    fn basic_and_multiple_challenges() {
        let c = parse_www_authenticate(r#"Basic realm="Registry Realm""#);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some("Registry Realm"));
        let c = parse_www_authenticate(r#"Basic realm="a", Bearer realm="b",service="s""#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("service"), Some("s"));
        let c = parse_www_authenticate(r#"Bearer realm="x\"y""#);
        assert_eq!(c[0].param("realm"), Some("x\"y"));
        assert!(parse_www_authenticate("").is_empty());
    }

    #[test]
    fn registry_auth_header_round_trip() {
        let a = AuthConfig {
            username: "u".into(),
            password: "p?>".into(),
            serveraddress: "localhost:5000".into(),
            ..Default::default()
        };
        let h = a.to_header();
        assert_eq!(AuthConfig::from_header(&h).unwrap(), Some(a.clone()));
        // Unpadded and standard alphabets are accepted.
        assert_eq!(
            AuthConfig::from_header(h.trim_end_matches('=')).unwrap(),
            Some(a)
        );
        assert_eq!(AuthConfig::from_header("e30=").unwrap(), None);
        assert_eq!(AuthConfig::from_header("").unwrap(), None);
        assert!(AuthConfig::from_header("!!!").is_err());
        let enc = base64::engine::general_purpose::STANDARD.encode(br#"{"auth":"dTpw"}"#);
        let got = AuthConfig::from_header(&enc).unwrap().unwrap();
        assert_eq!((got.username.as_str(), got.password.as_str()), ("u", "p"));
    }
}
