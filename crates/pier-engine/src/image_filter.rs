//! `docker images --filter`: dangling, label, reference and the
//! creation-time keys (before, since, until).

use std::collections::HashMap;

use crate::records::ImageRecord;
use crate::{Engine, Result};

/// The creation-time filters of `docker images`: `before` and `since` name
/// images, `until` is a time (as for prune).
pub(crate) struct ImageBounds {
    before: Option<time::OffsetDateTime>,
    since: Option<time::OffsetDateTime>,
    until: Option<time::OffsetDateTime>,
}

impl ImageBounds {
    pub(crate) fn new(
        engine: &Engine,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<ImageBounds> {
        let known = ["dangling", "label", "reference", "before", "since", "until"];
        crate::util::check_filter_keys(filters, &known)?;
        let created = |key: &str| -> Result<Option<time::OffsetDateTime>> {
            let Some(name) = filters.get(key).and_then(|v| v.first()) else {
                return Ok(None);
            };
            let img = engine.find_image(name)?;
            Ok(img
                .config
                .created
                .as_deref()
                .and_then(crate::util::parse_rfc3339))
        };
        let until = filters.get("until").map(Vec::as_slice).unwrap_or_default();
        Ok(ImageBounds {
            before: created("before")?,
            since: created("since")?,
            until: crate::prune_filter::earliest_until(until)?,
        })
    }

    pub(crate) fn admit(&self, img: &ImageRecord) -> bool {
        let t = img
            .config
            .created
            .as_deref()
            .and_then(crate::util::parse_rfc3339);
        self.before.is_none_or(|b| t.is_some_and(|t| t < b))
            && self.since.is_none_or(|s| t.is_some_and(|t| t > s))
            && self.until.is_none_or(|u| t.is_some_and(|t| t < u))
    }
}

pub(crate) fn image_matches(
    filters: &HashMap<String, Vec<String>>,
    tags: &[String],
    labels: &HashMap<String, String>,
) -> bool {
    filters.iter().all(|(k, vals)| {
        if k == "label" {
            return crate::util::labels_match(vals, labels);
        }
        vals.iter().any(|v| match k.as_str() {
            "dangling" => (v == "true") == tags.is_empty(),
            "reference" => tags.iter().any(|t| reference_matches(v, t)),
            // The creation-time keys are ImageBounds'.
            _ => true,
        })
    })
}

/// The tags a `reference` filter names, as Docker lists them: an image
/// tagged `a:1` and `b:1` shows only `a:1` under `reference=a`.
pub(crate) fn shown_tags(filters: &HashMap<String, Vec<String>>, tags: Vec<String>) -> Vec<String> {
    match filters.get("reference").filter(|v| !v.is_empty()) {
        Some(patterns) => tags
            .into_iter()
            .filter(|t| patterns.iter().any(|p| reference_matches(p, t)))
            .collect(),
        None => tags,
    }
}

/// `reference=busybox` or `reference=busy*:lat*` against a familiar tag.
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    match pattern.rsplit_once(':') {
        Some((pr, pt)) if !pt.contains('/') => glob(pr, repo) && glob(pt, t),
        _ => glob(pattern, repo),
    }
}

fn glob(p: &str, s: &str) -> bool {
    match p.find('*') {
        None => p == s,
        Some(i) => {
            let (pre, rest) = (&p[..i], &p[i + 1..]);
            if !s.starts_with(pre) {
                return false;
            }
            let s = &s[pre.len()..];
            (0..=s.len()).any(|j| s.is_char_boundary(j) && glob(rest, &s[j..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_filters_keep_only_the_named_tags() {
        let tags = vec!["busybox:latest".to_string(), "other/tool:1".to_string()];
        let f = HashMap::from([("reference".to_string(), vec!["busybox".to_string()])]);
        assert_eq!(shown_tags(&f, tags.clone()), ["busybox:latest"]);
        assert_eq!(shown_tags(&HashMap::new(), tags.clone()), tags);
    }

    #[test]
    fn reference_filters_glob() {
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:1"));
        assert!(reference_matches("busybox:l*", "busybox:latest"));
        assert!(!reference_matches("busybox:1", "busybox:latest"));
        assert!(!reference_matches("alpine", "busybox:latest"));
    }
}
