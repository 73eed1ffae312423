//! `POST /build/prune` as BuildKit prunes for dockerd: without `all` only the
//! records no image shares, with `keep-storage` the oldest first until the
//! cache fits, and dockerd's build-cache filters.

use std::collections::HashMap;

use pier_build::CacheRecord;
use time::OffsetDateTime;

use crate::util::parse_rfc3339;
use crate::{EngineError, Result};

/// What `POST /build/prune` asks for.
#[derive(Debug, Default, Clone)]
pub struct BuildPruneOptions {
    /// Also records whose layer an image holds.
    pub all: bool,
    /// Stop once the whole cache takes at most this many bytes (0: no limit).
    pub keep_bytes: i64,
    pub filters: HashMap<String, Vec<String>>,
}

/// What was removed.
#[derive(Debug, Default)]
pub struct BuildPruneReport {
    pub deleted: Vec<String>,
    pub reclaimed: i64,
}

/// dockerd's build-cache filter keys; `description` and `parent` name what
/// Pier's records do not keep and are refused by name.
const KEYS: &[&str] = &[
    "until",
    "unused-for",
    "id",
    "type",
    "inuse",
    "shared",
    "private",
    "description",
    "parent",
];

#[derive(Debug, Default)]
struct CacheFilter {
    until: Option<OffsetDateTime>,
    ids: Vec<String>,
    types: Vec<String>,
    inuse: bool,
    shared: bool,
    private: bool,
}

impl CacheFilter {
    fn parse(f: &HashMap<String, Vec<String>>) -> Result<Self> {
        crate::util::check_filter_keys(f, KEYS)?;
        let mut out = CacheFilter::default();
        for (k, v) in f {
            match k.as_str() {
                "until" | "unused-for" => {
                    let u = crate::prune_filter::earliest_until(v)?;
                    out.until = match (out.until, u) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                "id" => out.ids.extend(v.iter().cloned()),
                "type" => out.types.extend(v.iter().cloned()),
                "inuse" => out.inuse = true,
                "shared" => out.shared = true,
                "private" => out.private = true,
                other => {
                    return Err(EngineError::invalid_argument(format!(
                    "not supported by Pier: build cache filter {other:?} (records keep no {other})"
                )))
                }
            }
        }
        Ok(out)
    }

    fn allows(&self, id: &str, shared: bool, created: &str) -> bool {
        // Pier records when a step first ran, not when it was last used: that
        // is the age `until` compares.
        let old_enough = self
            .until
            .is_none_or(|u| parse_rfc3339(created).is_some_and(|t| t < u));
        old_enough
            && (self.ids.is_empty() || self.ids.iter().any(|p| id.starts_with(p.as_str())))
            // Every record is a `regular` one; none is in use between builds.
            && (self.types.is_empty() || self.types.iter().any(|t| t == "regular"))
            && !self.inuse
            && (!self.shared || shared)
            && (!self.private || !shared)
    }
}

/// One cache record as the pruner sees it.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub key: String,
    pub id: String,
    pub size: i64,
    pub shared: bool,
    pub created: String,
}

impl Candidate {
    pub(crate) fn of(key: String, r: &CacheRecord, shared: bool) -> Self {
        Candidate {
            id: key.rsplit(':').next().unwrap_or(&key).to_string(),
            size: r.layer.as_ref().map_or(0, |l| l.size as i64),
            shared,
            created: r.created.clone(),
            key,
        }
    }
}

/// The keys of the records to delete, in order.
pub(crate) fn choose(mut all: Vec<Candidate>, o: &BuildPruneOptions) -> Result<Vec<Candidate>> {
    let f = CacheFilter::parse(&o.filters)?;
    if o.keep_bytes < 0 {
        return Err(EngineError::invalid_argument(
            "keep-storage must not be negative",
        ));
    }
    let mut total: i64 = all.iter().map(|c| c.size).sum();
    // Oldest first, so that a size limit keeps the newest.
    all.sort_by(|a, b| a.created.cmp(&b.created));
    let mut out = Vec::new();
    for c in all {
        if o.keep_bytes > 0 && total <= o.keep_bytes {
            break;
        }
        if (o.all || !c.shared) && f.allows(&c.id, c.shared, &c.created) {
            total -= c.size;
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, size: i64, shared: bool, created: &str) -> Candidate {
        Candidate {
            key: format!("k:{id}"),
            id: id.into(),
            size,
            shared,
            created: created.into(),
        }
    }

    fn ids(v: Vec<Candidate>) -> Vec<String> {
        v.into_iter().map(|c| c.id).collect()
    }

    fn set() -> Vec<Candidate> {
        vec![
            c("new", 300, false, "2026-01-03T00:00:00Z"),
            c("old", 100, false, "2020-01-01T00:00:00Z"),
            c("img", 50, true, "2020-01-02T00:00:00Z"),
        ]
    }

    fn opts(all: bool, keep: i64, f: &[(&str, &[&str])]) -> BuildPruneOptions {
        BuildPruneOptions {
            all,
            keep_bytes: keep,
            filters: f
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
        }
    }

    #[test]
    fn prune_picks_as_buildkit_does() {
        assert_eq!(
            ids(choose(set(), &opts(false, 0, &[])).unwrap()),
            ["old", "new"]
        );
        assert_eq!(
            ids(choose(set(), &opts(true, 0, &[])).unwrap()),
            ["old", "img", "new"]
        );
        // Down to 360 bytes: the oldest unshared one goes, then it fits.
        assert_eq!(ids(choose(set(), &opts(false, 360, &[])).unwrap()), ["old"]);
        assert!(choose(set(), &opts(true, 1000, &[])).unwrap().is_empty());
        assert_eq!(
            ids(choose(
                set(),
                &opts(true, 0, &[("until", &["2021-01-01T00:00:00Z"])])
            )
            .unwrap()),
            ["old", "img"]
        );
        assert_eq!(
            ids(choose(set(), &opts(true, 0, &[("id", &["ne"])])).unwrap()),
            ["new"]
        );
        assert_eq!(
            ids(choose(set(), &opts(true, 0, &[("shared", &[])])).unwrap()),
            ["img"]
        );
        assert_eq!(
            ids(choose(set(), &opts(true, 0, &[("private", &[])])).unwrap()),
            ["old", "new"]
        );
        assert!(choose(set(), &opts(true, 0, &[("inuse", &[])]))
            .unwrap()
            .is_empty());
        assert!(choose(set(), &opts(true, 0, &[("type", &["frontend"])]))
            .unwrap()
            .is_empty());
        assert!(choose(set(), &opts(true, 0, &[("label", &["a=b"])])).is_err());
        let e = choose(set(), &opts(true, 0, &[("description", &["x"])])).unwrap_err();
        assert!(e.to_string().contains("not supported by Pier"), "{e}");
        assert!(choose(set(), &opts(true, -1, &[])).is_err());
    }
}
