//! `.env` and `env_file` files as Compose reads them: `KEY=value`, `export KEY=…`,
//! comments, single quotes (literal), double quotes (escapes, may span
//! lines), interpolation of unquoted and double-quoted values from the
//! variables above and the lookup, and a bare `KEY` (taken from the lookup).

use crate::interp::{substitute, Lookup};

/// Parses `text` (from `file`, for errors) in order. A bare `KEY` whose
/// lookup is unset yields `(KEY, None)`.
pub fn parse(
    text: &str,
    file: &str,
    env: &dyn Lookup,
) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i + 1;
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, rest) = match line.find(['=', ':']) {
            Some(p) => (line[..p].trim(), Some(&line[p + 1..])),
            None => (line.trim(), None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!(
                "{file}:{lineno}: unexpected character in variable name {key:?}"
            ));
        }
        let lookup = |name: &str| -> Option<String> {
            out.iter()
                .rev()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.clone())
                .or_else(|| env.get(name))
        };
        let Some(rest) = rest else {
            let v = env.get(key);
            out.push((key.to_string(), v));
            continue;
        };
        let rest = rest.trim_start();
        let value = if let Some(body) = rest.strip_prefix('\'') {
            let mut acc = body.to_string();
            while !acc.contains('\'') && i < lines.len() {
                acc.push('\n');
                acc.push_str(lines[i]);
                i += 1;
            }
            let end = acc
                .find('\'')
                .ok_or_else(|| format!("{file}:{lineno}: unterminated quoted value"))?;
            acc[..end].to_string()
        } else if let Some(body) = rest.strip_prefix('"') {
            let mut acc = body.to_string();
            while closing_quote(&acc).is_none() && i < lines.len() {
                acc.push('\n');
                acc.push_str(lines[i]);
                i += 1;
            }
            let end = closing_quote(&acc)
                .ok_or_else(|| format!("{file}:{lineno}: unterminated quoted value"))?;
            let unescaped = unescape(&acc[..end]);
            substitute(&unescaped, &lookup, &mut Vec::new())
                .map_err(|e| format!("{file}:{lineno}: {e}"))?
        } else {
            let v = match rest.find(" #") {
                Some(p) => &rest[..p],
                None => rest,
            };
            substitute(v.trim(), &lookup, &mut Vec::new())
                .map_err(|e| format!("{file}:{lineno}: {e}"))?
        };
        out.push((key.to_string(), Some(value)));
    }
    Ok(out)
}

fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let env = |n: &str| (n == "HOME").then(|| "/root".to_string());
        let text = "# comment\nA=1\nexport B = two words # note\nC='${A} literal'\nD=\"x\\ny ${A}\"\nE=${B}-${HOME}\nHOME\nNOPE\nM=\"line1\nline2\"\n";
        let got = parse(text, ".env", &env).unwrap();
        let m: std::collections::HashMap<_, _> = got.into_iter().collect();
        assert_eq!(m["A"].as_deref(), Some("1"));
        assert_eq!(m["B"].as_deref(), Some("two words"));
        assert_eq!(m["C"].as_deref(), Some("${A} literal"));
        assert_eq!(m["D"].as_deref(), Some("x\ny 1"));
        assert_eq!(m["E"].as_deref(), Some("two words-/root"));
        assert_eq!(m["HOME"].as_deref(), Some("/root"));
        assert_eq!(m["NOPE"], None);
        assert_eq!(m["M"].as_deref(), Some("line1\nline2"));
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let env = |_: &str| None;
        let e = parse("A=1\nB C=2\n", "x.env", &env).unwrap_err();
        assert_eq!(e, "x.env:2: unexpected character in variable name \"B C\"");
    }
}
