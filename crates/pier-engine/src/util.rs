use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Docker's `label` filter: an object passes only if it has every label
/// asked for (`key`, or `key=value`). Unlike the other filter keys, whose
/// values are alternatives, label values add up: Compose lists a service's
/// containers with `project=..` and `service=..` together.
pub fn labels_match(want: &[String], labels: &std::collections::HashMap<String, String>) -> bool {
    want.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(w.as_str()),
    })
}

/// Docker's answer to a filter key a listing does not know.
pub fn check_filter_keys(
    filters: &std::collections::HashMap<String, Vec<String>>,
    known: &[&str],
) -> crate::Result<()> {
    match filters.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(crate::EngineError::invalid_argument(format!(
            "Invalid filter '{k}'"
        ))),
        None => Ok(()),
    }
}

/// Mutual exclusion per key (a container ID), for blocking code: holders of
/// different keys do not wait for each other.
#[derive(Default)]
pub struct KeyedLock {
    held: std::sync::Mutex<std::collections::HashSet<String>>,
    freed: std::sync::Condvar,
}

/// Holds a key of a [`KeyedLock`] until dropped.
pub struct KeyedGuard<'a> {
    lock: &'a KeyedLock,
    key: String,
}

impl KeyedLock {
    pub fn lock(&self, key: &str) -> KeyedGuard<'_> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        while held.contains(key) {
            held = self.freed.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        held.insert(key.to_string());
        KeyedGuard {
            lock: self,
            key: key.to_string(),
        }
    }
}

impl Drop for KeyedGuard<'_> {
    fn drop(&mut self) {
        let mut held = self.lock.held.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(&self.key);
        self.lock.freed.notify_all();
    }
}

/// A body streamed to a client (logs, events, image archives, progress).
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// A file's mtime as Docker's path stat header has it.
pub fn rfc3339_from_unix(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

pub fn unix_of(s: &str) -> i64 {
    parse_rfc3339(s).map(|t| t.unix_timestamp()).unwrap_or(0)
}

/// Docker's zero time, used for FinishedAt/StartedAt before they happen.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A new random 64-hex identifier (containers, execs).
pub fn random_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// Sends `Bytes` chunks from blocking code into an async body stream.
pub struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl ChannelWriter {
    pub fn new(tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }

    pub fn fail(self, e: std::io::Error) {
        let _ = self.tx.blocking_send(Err(e));
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// A stream fed by an mpsc receiver.
pub fn channel_stream(rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>) -> ByteStream {
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Reads a blocking `Read` from async code (request bodies for import/load).
pub fn json_line<T: serde::Serialize>(v: &T) -> Bytes {
    let mut s = serde_json::to_vec(v).unwrap_or_default();
    s.push(b'\n');
    Bytes::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex() {
        let id = random_id();
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, random_id());
    }

    #[test]
    fn keyed_lock_excludes_per_key() {
        let l = std::sync::Arc::new(KeyedLock::default());
        let a = l.lock("a");
        let _b = l.lock("b"); // another key: no wait
        let (l2, order) = (
            l.clone(),
            std::sync::Arc::new(std::sync::Mutex::new(Vec::new())),
        );
        let o2 = order.clone();
        let t = std::thread::spawn(move || {
            let _a = l2.lock("a");
            o2.lock().unwrap().push("second");
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        order.lock().unwrap().push("first");
        drop(a);
        t.join().unwrap();
        assert_eq!(*order.lock().unwrap(), ["first", "second"]);
    }

    #[test]
    fn label_filters_add_up() {
        let labels: std::collections::HashMap<String, String> = [("a", "1"), ("b", "2")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(labels_match(&w(&[]), &labels));
        assert!(labels_match(&w(&["a", "b=2"]), &labels));
        assert!(!labels_match(&w(&["a=1", "b=3"]), &labels));
        assert!(!labels_match(&w(&["a=1", "c"]), &labels));
        assert!(!labels_match(&w(&["a=2"]), &labels));
    }
}
