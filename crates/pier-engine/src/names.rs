//! Finding containers and images by what users type: names, IDs, ID prefixes.

use pier_reference::{id_prefix, ImageRef, Reference};

use crate::{ContainerRecord, Engine, EngineError, ErrorKind, ImageRecord, Result};

const LEFT: &[&str] = &[
    "admiring",
    "brave",
    "clever",
    "dreamy",
    "eager",
    "focused",
    "gallant",
    "happy",
    "jolly",
    "keen",
    "lucid",
    "modest",
    "nifty",
    "optimistic",
    "pensive",
    "quirky",
    "relaxed",
    "serene",
    "tender",
    "upbeat",
    "vibrant",
    "wizardly",
    "xenial",
    "youthful",
    "zealous",
    "bold",
    "calm",
    "cool",
    "epic",
    "fervent",
    "gifted",
    "hopeful",
];
const RIGHT: &[&str] = &[
    "albattani",
    "babbage",
    "curie",
    "darwin",
    "einstein",
    "feynman",
    "galileo",
    "hopper",
    "hypatia",
    "jennings",
    "kepler",
    "lovelace",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "ritchie",
    "shannon",
    "tesla",
    "turing",
    "volhard",
    "wozniak",
    "yalow",
    "zhukovsky",
    "bardeen",
    "cerf",
    "dijkstra",
    "euler",
    "fermi",
    "goldberg",
    "hamilton",
    "knuth",
];

pub(crate) fn random_name() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    format!(
        "{}_{}",
        LEFT[rng.random_range(0..LEFT.len())],
        RIGHT[rng.random_range(0..RIGHT.len())]
    )
}

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = name.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(EngineError::invalid_argument(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

impl Engine {
    /// Finds a container by full ID, name (with or without `/`) or unique ID prefix.
    pub fn find_container(&self, key: &str) -> Result<ContainerRecord> {
        let id = self.resolve_container_id(key)?;
        self.meta
            .container(&id)?
            .ok_or_else(|| EngineError::no_such_container(key))
    }

    pub(crate) fn resolve_container_id(&self, key: &str) -> Result<String> {
        if key.is_empty() {
            return Err(EngineError::no_such_container(key));
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(id) = self.meta.container_id_by_name(name)? {
            return Ok(id);
        }
        let ids = self.meta.container_ids_with_prefix(key)?;
        match ids.len() {
            1 => Ok(ids.into_iter().next().unwrap_or_default()),
            0 => Err(EngineError::no_such_container(key)),
            _ => Err(EngineError::invalid_argument(format!(
                "Multiple IDs found with provided prefix: {key}"
            ))),
        }
    }

    /// Finds an image by reference, full ID or unique ID prefix.
    pub fn find_image(&self, key: &str) -> Result<ImageRecord> {
        let id = self.resolve_image_id(key)?;
        self.meta
            .image(&id)?
            .ok_or_else(|| EngineError::no_such_image(key))
    }

    pub(crate) fn resolve_image_id(&self, key: &str) -> Result<String> {
        let by_prefix = |hex: &str| -> Result<Option<String>> {
            let ids = self.meta.image_ids_with_prefix(&format!("sha256:{hex}"))?;
            match ids.len() {
                0 => Ok(None),
                1 => Ok(ids.into_iter().next()),
                _ => Err(EngineError::invalid_argument(format!(
                    "ambiguous image ID prefix: {key}"
                ))),
            }
        };
        match ImageRef::parse(key) {
            Ok(ImageRef::Id(hex)) => {
                by_prefix(&hex)?.ok_or_else(|| EngineError::no_such_image(key))
            }
            Ok(ImageRef::Name(r)) => {
                if let Some(d) = r.digest() {
                    let repo = r.name();
                    for (id, img) in self.meta.images::<ImageRecord>()? {
                        if img
                            .repo_digests
                            .iter()
                            .any(|rd| rd == &format!("{repo}@{d}"))
                        {
                            return Ok(id);
                        }
                    }
                } else if let Some(id) = self.meta.tag(&r.full())? {
                    return Ok(id);
                }
                // A short hex string is also a valid name; Docker tries the ID after the name.
                if let Some(hex) = id_prefix(key)
                    && let Some(id) = by_prefix(hex)?
                {
                    return Ok(id);
                }
                Err(EngineError::no_such_image(&r.familiar()))
            }
            Err(e) => Err(EngineError::wrap(ErrorKind::InvalidArgument, e)),
        }
    }
}

/// Parses a reference for tagging, with Docker's error wording.
pub(crate) fn parse_ref(s: &str) -> Result<Reference> {
    Reference::parse(s).map_err(|e| EngineError::wrap(ErrorKind::InvalidArgument, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        assert!(validate_name("web-1").is_ok());
        assert!(validate_name("a.b_c").is_ok());
        assert!(validate_name("-x").is_err());
        assert!(validate_name("x").is_err());
        assert!(validate_name("a/b").is_err());
        let n = random_name();
        assert!(validate_name(&n).is_ok(), "{n}");
    }
}
