//! One-time tokens for the URLs that Exec, Attach and PortForward return,
//! as the kubelet's streaming request cache: random, single use, expiring
//! after a minute, at most 1000 waiting.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use crate::backend::{AttachRequest, ExecRequest, PortForwardRequest};
use crate::RequestError;

pub(crate) const TTL: Duration = Duration::from_secs(60);
pub(crate) const MAX_IN_FLIGHT: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cached {
    Exec(ExecRequest),
    Attach(AttachRequest),
    PortForward(PortForwardRequest),
}

pub(crate) struct Cache {
    ttl: Duration,
    max: usize,
    entries: Mutex<HashMap<String, (Cached, Instant)>>,
}

impl Cache {
    pub fn new(ttl: Duration, max: usize) -> Self {
        Cache {
            ttl,
            max,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn insert(&self, req: Cached) -> Result<String, RequestError> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (_, expires)| *expires > now);
        if entries.len() >= self.max {
            return Err(RequestError::TooManyInFlight);
        }
        let token = loop {
            let mut raw = [0u8; 16];
            rand::rng().fill_bytes(&mut raw);
            let t = URL_SAFE_NO_PAD.encode(raw);
            if !entries.contains_key(&t) {
                break t;
            }
        };
        entries.insert(token.clone(), (req, now + self.ttl));
        Ok(token)
    }

    /// The request behind `token`, once; `None` if unknown, used or expired.
    pub fn consume(&self, token: &str) -> Option<Cached> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (req, expires) = entries.remove(token)?;
        (expires > Instant::now()).then_some(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(id: &str) -> Cached {
        Cached::Exec(ExecRequest {
            container_id: id.into(),
            ..Default::default()
        })
    }

    #[test]
    fn a_token_is_used_once() {
        let c = Cache::new(TTL, MAX_IN_FLIGHT);
        let t = c.insert(exec("a")).unwrap();
        let u = c.insert(exec("b")).unwrap();
        assert_ne!(t, u);
        assert!(
            t.len() >= 20
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(c.consume(&t), Some(exec("a")));
        assert_eq!(c.consume(&t), None);
        assert_eq!(c.consume("nope"), None);
        assert_eq!(c.consume(&u), Some(exec("b")));
    }

    #[test]
    fn tokens_expire() {
        let c = Cache::new(Duration::from_millis(30), MAX_IN_FLIGHT);
        let t = c.insert(exec("a")).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.consume(&t), None);
    }

    #[test]
    fn in_flight_is_bounded_and_expired_ones_make_room() {
        let c = Cache::new(Duration::from_millis(30), 3);
        for _ in 0..3 {
            c.insert(exec("a")).unwrap();
        }
        assert!(matches!(
            c.insert(exec("a")),
            Err(RequestError::TooManyInFlight)
        ));
        std::thread::sleep(Duration::from_millis(60));
        c.insert(exec("a")).unwrap();
    }
}
