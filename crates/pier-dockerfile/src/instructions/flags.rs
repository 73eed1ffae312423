//! Instruction flags (`--from=x`, `--link`, repeated `--mount=...`), with
//! BuildKit's rules and messages.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{suggest, ParseErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Str,
    /// May be repeated; every value is kept.
    List,
}

/// Values of the flags given on one instruction.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    bools: BTreeMap<&'static str, bool>,
    strings: BTreeMap<&'static str, String>,
    lists: BTreeMap<&'static str, Vec<String>>,
    pub(crate) used: BTreeSet<String>,
}

impl Flags {
    /// Value of a bool flag if it was given.
    pub(crate) fn bool(&self, name: &str) -> Option<bool> {
        self.bools.get(name).copied()
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.strings.get(name).cloned()
    }

    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.lists.get(name).cloned().unwrap_or_default()
    }
}

/// Parses `raw` flags of `instruction` against the allowed `spec`.
pub(crate) fn parse(
    instruction: &str,
    raw: &[String],
    spec: &[(&'static str, Kind)],
) -> Result<Flags, ParseErrorKind> {
    let err = |message: String| ParseErrorKind::Flag {
        instruction: instruction.to_uppercase(),
        message,
    };
    let mut out = Flags::default();
    for a in raw {
        if a == "--" {
            break;
        }
        let Some(body) = a.strip_prefix("--") else {
            return Err(err(format!("arg should start with -- : {a}")));
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let flag_name = format!("--{name}");
        let Some(&(key, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
            let hint = suggest(name, &names, true)
                .map(|m| format!(" (did you mean {m}?)"))
                .unwrap_or_default();
            return Err(err(format!("unknown flag: {flag_name}{hint}")));
        };
        if kind != Kind::List && out.used.contains(name) {
            return Err(err(format!("duplicate flag specified: {flag_name}")));
        }
        out.used.insert(name.to_string());
        match kind {
            Kind::Bool => {
                let v = match value {
                    Some("") => return Err(err(format!("missing a value on flag: {flag_name}"))),
                    None => true,
                    Some(v) if v.eq_ignore_ascii_case("true") => true,
                    Some(v) if v.eq_ignore_ascii_case("false") => false,
                    Some(v) => {
                        return Err(err(format!(
                            "expecting boolean value for flag {flag_name}, not: {v}"
                        )))
                    }
                };
                out.bools.insert(key, v);
            }
            Kind::Str => {
                let Some(v) = value else {
                    return Err(err(format!("missing a value on flag: {flag_name}")));
                };
                out.strings.insert(key, v.to_string());
            }
            Kind::List => {
                let Some(v) = value else {
                    return Err(err(format!("missing a value on flag: {flag_name}")));
                };
                out.lists.entry(key).or_default().push(v.to_string());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_and_rejects() {
        let spec = [
            ("from", Kind::Str),
            ("link", Kind::Bool),
            ("exclude", Kind::List),
        ];
        let f = parse(
            "COPY",
            &s(&["--from=a", "--link", "--exclude=x", "--exclude=y"]),
            &spec,
        )
        .unwrap();
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.list("exclude"), ["x", "y"]);
        let e = parse("COPY", &s(&["--frm=a"]), &spec).unwrap_err();
        assert_eq!(
            e.to_string(),
            "COPY: unknown flag: --frm (did you mean from?)"
        );
        assert!(parse("COPY", &s(&["--from=a", "--from=b"]), &spec).is_err());
        assert!(parse("COPY", &s(&["--from"]), &spec).is_err());
        assert!(parse("COPY", &s(&["--link="]), &spec).is_err());
        assert!(parse("COPY", &s(&["--link=maybe"]), &spec).is_err());
        assert_eq!(
            parse("COPY", &s(&["--link=FALSE"]), &spec)
                .unwrap()
                .bool("link"),
            Some(false)
        );
    }
}
