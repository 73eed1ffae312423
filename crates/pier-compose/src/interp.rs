//! `${VAR}` interpolation with Compose's forms: `$VAR`, `${VAR}`, `${VAR:-d}`,
//! `${VAR-d}`, `${VAR:?e}`, `${VAR?e}`, `${VAR:+a}`, `${VAR+a}`, `$$`, and
//! nesting inside the default/alternative/error words.

/// Looks a variable up; `None` is "unset" (different from empty).
pub trait Lookup {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// What went wrong, without position (the caller knows the file and key).
#[derive(Debug, PartialEq, Eq)]
pub enum InterpError {
    Invalid(String),
    Required { name: String, message: String },
}

impl std::fmt::Display for InterpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterpError::Invalid(t) => write!(f, "invalid template: {t:?}"),
            InterpError::Required { name, message } if message.is_empty() => {
                write!(f, "required variable {name} is missing a value")
            }
            InterpError::Required { name, message } => {
                write!(f, "required variable {name} is missing a value: {message}")
            }
        }
    }
}

/// Substitutes `s`; names of unset variables used without a default are
/// pushed to `unset` (Compose warns and uses "").
pub fn substitute(
    s: &str,
    env: &dyn Lookup,
    unset: &mut Vec<String>,
) -> Result<String, InterpError> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let end = closing_brace(&chars, i + 2)
                    .ok_or_else(|| InterpError::Invalid(s.to_string()))?;
                let inner: String = chars[i + 2..end].iter().collect();
                out.push_str(&braced(&inner, s, env, unset)?);
                i = end + 1;
            }
            Some(&c2) if c2 == '_' || c2.is_ascii_alphabetic() => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j] == '_' || chars[j].is_ascii_alphanumeric()) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                match env.get(&name) {
                    Some(v) => out.push_str(&v),
                    None => unset.push(name),
                }
                i = j;
            }
            _ => return Err(InterpError::Invalid(s.to_string())),
        }
    }
    Ok(out)
}

/// The `}` closing the `${` whose body starts at `from`, skipping nested `${…}`.
fn closing_brace(chars: &[char], from: usize) -> Option<usize> {
    let mut depth = 0;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '$' if chars.get(i + 1) == Some(&'$') => i += 1,
            '$' if chars.get(i + 1) == Some(&'{') => {
                depth += 1;
                i += 1;
            }
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn braced(
    inner: &str,
    whole: &str,
    env: &dyn Lookup,
    unset: &mut Vec<String>,
) -> Result<String, InterpError> {
    let name_end = inner
        .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
        .unwrap_or(inner.len());
    let name = &inner[..name_end];
    let valid_name = name
        .chars()
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
    if !valid_name {
        return Err(InterpError::Invalid(whole.to_string()));
    }
    let rest = &inner[name_end..];
    let value = env.get(name);
    if rest.is_empty() {
        return Ok(match value {
            Some(v) => v,
            None => {
                unset.push(name.to_string());
                String::new()
            }
        });
    }
    let (op, word) = if let Some(w) = rest.strip_prefix(":-") {
        (":-", w)
    } else if let Some(w) = rest.strip_prefix(":?") {
        (":?", w)
    } else if let Some(w) = rest.strip_prefix(":+") {
        (":+", w)
    } else if let Some(w) = rest.strip_prefix('-') {
        ("-", w)
    } else if let Some(w) = rest.strip_prefix('?') {
        ("?", w)
    } else if let Some(w) = rest.strip_prefix('+') {
        ("+", w)
    } else {
        return Err(InterpError::Invalid(whole.to_string()));
    };
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let present = if op.starts_with(':') {
        set_nonempty
    } else {
        value.is_some()
    };
    match op.trim_start_matches(':') {
        "-" if present => Ok(value.unwrap_or_default()),
        "-" => substitute(word, env, unset),
        "?" if present => Ok(value.unwrap_or_default()),
        "?" => Err(InterpError::Required {
            name: name.to_string(),
            message: substitute(word, env, unset)?,
        }),
        "+" if present => substitute(word, env, unset),
        _ => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("8080".into()),
            _ => None,
        }
    }

    fn sub(s: &str) -> Result<String, InterpError> {
        substitute(s, &env, &mut Vec::new())
    }

    #[test]
    fn every_form() {
        assert_eq!(sub("${SET}").unwrap(), "value");
        assert_eq!(sub("$SET/x").unwrap(), "value/x");
        assert_eq!(sub("a$${SET}").unwrap(), "a${SET}");
        assert_eq!(sub("$$SET").unwrap(), "$SET");
        assert_eq!(sub("${UNSET:-d}").unwrap(), "d");
        assert_eq!(sub("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(sub("${EMPTY-d}").unwrap(), "");
        assert_eq!(sub("${UNSET-d}").unwrap(), "d");
        assert_eq!(sub("${SET:+alt}").unwrap(), "alt");
        assert_eq!(sub("${EMPTY:+alt}").unwrap(), "");
        assert_eq!(sub("${EMPTY+alt}").unwrap(), "alt");
        assert_eq!(sub("${UNSET+alt}").unwrap(), "");
        assert_eq!(sub("${SET:?boom}").unwrap(), "value");
        assert_eq!(sub("${EMPTY?boom}").unwrap(), "");
    }

    #[test]
    fn nesting() {
        assert_eq!(sub("${UNSET:-${PORT}}").unwrap(), "8080");
        assert_eq!(sub("${UNSET:-${ALSO:-x${SET}y}}").unwrap(), "xvaluey");
        assert_eq!(sub("${SET:+${PORT}:80}").unwrap(), "8080:80");
    }

    #[test]
    fn errors_and_unset() {
        assert_eq!(
            sub("${UNSET:?need it}").unwrap_err().to_string(),
            "required variable UNSET is missing a value: need it"
        );
        assert_eq!(
            sub("${EMPTY:?}").unwrap_err().to_string(),
            "required variable EMPTY is missing a value"
        );
        assert!(matches!(sub("${SET"), Err(InterpError::Invalid(_))));
        assert!(matches!(sub("${1X}"), Err(InterpError::Invalid(_))));
        assert!(matches!(sub("${SET%x}"), Err(InterpError::Invalid(_))));
        let mut unset = Vec::new();
        assert_eq!(substitute("a${NOPE}b", &env, &mut unset).unwrap(), "ab");
        assert_eq!(unset, vec!["NOPE".to_string()]);
    }
}
