//! The filters of Docker's prune endpoints: `until` (a timestamp or a
//! duration back from now), `label` (the object must have every label) and
//! `label!` (it must not have them).

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::util::{labels_match, parse_rfc3339};
use crate::{EngineError, Result};

#[derive(Debug, Default)]
pub(crate) struct PruneFilter {
    until: Option<OffsetDateTime>,
    labels: Vec<String>,
    not_labels: Vec<String>,
}

impl PruneFilter {
    /// `extra` names the keys the endpoint reads itself (e.g. `dangling`).
    pub(crate) fn parse(filters: &HashMap<String, Vec<String>>, extra: &[&str]) -> Result<Self> {
        let known: Vec<&str> = ["until", "label", "label!"]
            .iter()
            .chain(extra)
            .copied()
            .collect();
        crate::util::check_filter_keys(filters, &known)?;
        let mut f = PruneFilter::default();
        for (k, vals) in filters {
            match k.as_str() {
                "until" => f.until = earliest_until(vals)?,
                "label" => f.labels.extend(vals.iter().cloned()),
                "label!" => f.not_labels.extend(vals.iter().cloned()),
                _ => {}
            }
        }
        Ok(f)
    }

    /// Whether an object made at `created` (RFC 3339) with `labels` may go.
    pub(crate) fn allows(&self, created: &str, labels: &HashMap<String, String>) -> bool {
        if let Some(until) = self.until {
            match parse_rfc3339(created) {
                Some(t) if t < until => {}
                _ => return false,
            }
        }
        labels_match(&self.labels, labels)
            && (self.not_labels.is_empty() || !labels_match(&self.not_labels, labels))
    }
}

/// The bound of an `until` filter: with several values the earliest, as all
/// must hold.
pub(crate) fn earliest_until(vals: &[String]) -> Result<Option<OffsetDateTime>> {
    let now = OffsetDateTime::now_utc();
    let mut until: Option<OffsetDateTime> = None;
    for v in vals {
        let t = parse_until(v, now)?;
        until = Some(until.map_or(t, |u| u.min(t)));
    }
    Ok(until)
}

/// Docker's `until`: RFC 3339, a unix timestamp (fractions allowed), or a Go
/// duration such as `24h` or `1h30m` back from `now`.
fn parse_until(v: &str, now: OffsetDateTime) -> Result<OffsetDateTime> {
    let bad = || EngineError::invalid_argument(format!("invalid until filter: {v:?}"));
    if let Some(t) = parse_rfc3339(v) {
        return Ok(t);
    }
    if let Ok(secs) = v.parse::<f64>() {
        let nanos = (secs * 1e9) as i128;
        return OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| bad());
    }
    let d = go_duration(v).ok_or_else(bad)?;
    now.checked_sub(d).ok_or_else(bad)
}

/// `1h30m`, `90s`, `1.5h`, `250ms`: what Go's time.ParseDuration takes.
fn go_duration(s: &str) -> Option<time::Duration> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += num * secs;
        rest = &rest[u..];
    }
    // A client's `1e300h` overflows: refused, not a panic.
    time::Duration::checked_seconds_f64(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn until_takes_docker_forms() {
        let now = parse_rfc3339("2026-11-29T12:00:00Z").unwrap();
        let at = |v| parse_until(v, now).unwrap();
        assert_eq!(at("24h"), parse_rfc3339("2026-11-28T12:00:00Z").unwrap());
        assert_eq!(at("1h30m"), parse_rfc3339("2026-11-29T10:30:00Z").unwrap());
        assert_eq!(
            at("1700000000"),
            OffsetDateTime::from_unix_timestamp(1700000000).unwrap()
        );
        assert_eq!(
            at("2026-01-02T03:04:05Z"),
            parse_rfc3339("2026-01-02T03:04:05Z").unwrap()
        );
        assert!(parse_until("yesterday", now).is_err());
        assert!(parse_until("5x", now).is_err());
        assert!(parse_until("1e300h", now).is_err());
        assert!(parse_until("99999999999999999999h", now).is_err());
    }

    #[test]
    fn labels_and_until_decide_together() {
        let filters: HashMap<String, Vec<String>> = [
            ("label".to_string(), vec!["keep=no".to_string()]),
            ("label!".to_string(), vec!["pinned".to_string()]),
            (
                "until".to_string(),
                vec!["2026-06-01T00:00:00Z".to_string()],
            ),
        ]
        .into();
        let f = PruneFilter::parse(&filters, &[]).unwrap();
        let old = "2026-01-01T00:00:00Z";
        assert!(f.allows(old, &map(&[("keep", "no")])));
        assert!(!f.allows(old, &map(&[("keep", "no"), ("pinned", "1")])));
        assert!(!f.allows(old, &map(&[("keep", "yes")])));
        assert!(!f.allows("2026-07-01T00:00:00Z", &map(&[("keep", "no")])));
        assert!(PruneFilter::default().allows("", &map(&[])));
        let bad: HashMap<String, Vec<String>> = [("colour".to_string(), vec![])].into();
        assert!(PruneFilter::parse(&bad, &[]).is_err());
    }
}
