//! Small conversions: engine errors to gRPC statuses, times, ids, labels.

use std::collections::{BTreeMap, HashMap};

use pier_engine::{EngineError, ErrorKind};
use tonic::Status;

pub(crate) fn status_of(e: EngineError) -> Status {
    let msg = e.to_string();
    match e.kind() {
        ErrorKind::NotFound => Status::not_found(msg),
        ErrorKind::InvalidArgument => Status::invalid_argument(msg),
        ErrorKind::Conflict => Status::failed_precondition(msg),
        ErrorKind::Unauthorized | ErrorKind::Forbidden => Status::permission_denied(msg),
        ErrorKind::NotImplemented => Status::unimplemented(msg),
        ErrorKind::Unavailable => Status::unavailable(msg),
        _ => Status::internal(msg),
    }
}

pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Nanoseconds since the epoch of an RFC 3339 time; 0 for none or Go's zero time.
pub(crate) fn ns_of(rfc3339: &str) -> i64 {
    let Ok(t) =
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
    else {
        return 0;
    };
    if t.year() <= 1 {
        return 0;
    }
    t.unix_timestamp_nanos() as i64
}

/// 64 hex digits from the kernel's random source.
pub(crate) fn random_id() -> String {
    use std::io::Read;
    let mut b = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn btree(m: &HashMap<String, String>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub(crate) fn hash(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A label selector: every pair must be present.
pub(crate) fn selects(sel: &HashMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}
