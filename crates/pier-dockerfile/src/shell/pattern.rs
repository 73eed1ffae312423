//! Shell wildcard patterns for `${VAR#pat}`, `${VAR%pat}` and `${VAR/pat/repl}`.
//!
//! BuildKit turns the pattern into a Go regular expression (`*` -> `.*` or
//! `.*?`, `?` -> `.`) and relies on leftmost-first matching. A small
//! backtracking matcher that tries alternatives in the same preference order
//! gives the same answers without a regex engine. Like Go's `.`, wildcards do
//! not match a newline.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Star,
    Any,
    Lit(char),
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    toks: Vec<Tok>,
    greedy: bool,
}

impl Pattern {
    /// Compiles `pattern`; `\` escapes `*`, `?` and `\`, and is dropped
    /// before `}` and `/` (which had to be escaped inside `${...}`).
    pub(crate) fn compile(pattern: &str, greedy: bool) -> Result<Pattern, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' => {
                    if matches!(chars.get(i), Some('}') | Some('/')) {
                        continue;
                    }
                    let next = chars.get(i).copied();
                    i += 1;
                    match next {
                        Some(n @ ('*' | '?' | '\\')) => toks.push(Tok::Lit(n)),
                        Some(n) => return Err(format!("invalid escape '\\{n}'")),
                        None => return Err("invalid escape '\\\u{fffd}'".to_string()),
                    }
                }
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Pattern { toks, greedy })
    }

    /// End of the preferred match of the pattern starting exactly at `start`.
    fn match_at(&self, s: &[char], start: usize) -> Option<usize> {
        let width = s.len() + 1;
        // memo[ti * width + si]: None = not computed yet, Some(r) = result.
        let mut memo: Vec<Option<Option<usize>>> = vec![None; (self.toks.len() + 1) * width];
        self.step(s, 0, start, &mut memo, width)
    }

    fn step(
        &self,
        s: &[char],
        ti: usize,
        si: usize,
        memo: &mut Vec<Option<Option<usize>>>,
        width: usize,
    ) -> Option<usize> {
        if ti == self.toks.len() {
            return Some(si);
        }
        if let Some(r) = memo[ti * width + si] {
            return r;
        }
        let r = match self.toks[ti] {
            Tok::Lit(c) => {
                if s.get(si) == Some(&c) {
                    self.step(s, ti + 1, si + 1, memo, width)
                } else {
                    None
                }
            }
            Tok::Any => match s.get(si) {
                Some(&c) if c != '\n' => self.step(s, ti + 1, si + 1, memo, width),
                _ => None,
            },
            Tok::Star => {
                let max = s[si..].iter().take_while(|&&c| c != '\n').count();
                let mut found = None;
                if self.greedy {
                    for k in (0..=max).rev() {
                        if let Some(e) = self.step(s, ti + 1, si + k, memo, width) {
                            found = Some(e);
                            break;
                        }
                    }
                } else {
                    for k in 0..=max {
                        if let Some(e) = self.step(s, ti + 1, si + k, memo, width) {
                            found = Some(e);
                            break;
                        }
                    }
                }
                found
            }
        };
        memo[ti * width + si] = Some(r);
        r
    }

    /// Leftmost match at or after `from`: (start, end) in char indices.
    fn find_from(&self, s: &[char], from: usize) -> Option<(usize, usize)> {
        (from..=s.len()).find_map(|a| self.match_at(s, a).map(|b| (a, b)))
    }
}

/// `${VAR#pat}` / `${VAR##pat}`.
pub(crate) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let p = Pattern::compile(pattern, greedy)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    let chars: Vec<char> = value.chars().collect();
    Ok(match p.match_at(&chars, 0) {
        Some(end) => chars[end..].iter().collect(),
        None => value.to_string(),
    })
}

/// `${VAR%pat}` / `${VAR%%pat}`: a prefix trim of the reversed value with
/// the reversed pattern, since leftmost matching can't find a shortest
/// rightmost match directly.
pub(crate) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let rev_pattern = reverse_pattern(pattern);
    let rev_value: String = value.chars().rev().collect();
    let p = Pattern::compile(&rev_pattern, greedy)
        .map_err(|e| format!("invalid pattern ({rev_pattern}) in substitution: {e}"))?;
    let chars: Vec<char> = rev_value.chars().collect();
    let trimmed: String = match p.match_at(&chars, 0) {
        Some(end) => chars[end..].iter().collect(),
        None => rev_value,
    };
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern but keeps each `\x` escape pair in order.
fn reverse_pattern(pattern: &str) -> String {
    let p: Vec<char> = pattern.chars().collect();
    if p.is_empty() {
        return String::new();
    }
    let last = p.len() - 1;
    let mut out = vec!['\0'; p.len()];
    let mut i = 0;
    while i <= last {
        let out_idx = last - i;
        if p[i] == '\\' && i != last {
            out[out_idx - 1] = '\\';
            out[out_idx] = p[i + 1];
            i += 2;
        } else {
            out[out_idx] = p[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// `${VAR/pat/repl}` and `${VAR//pat/repl}`.
pub(crate) fn replace(
    pattern: &str,
    value: &str,
    replacement: &str,
    all: bool,
) -> Result<String, String> {
    let p = Pattern::compile(pattern, true)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    let s: Vec<char> = value.chars().collect();
    if !all {
        return Ok(match p.find_from(&s, 0) {
            Some((a, b)) => {
                let mut out: String = s[..a].iter().collect();
                out.push_str(replacement);
                out.extend(&s[b..]);
                out
            }
            None => value.to_string(),
        });
    }
    // Go's Regexp.ReplaceAllString: non-overlapping matches, an empty match
    // right after the previous match is not replaced, `$` in the
    // replacement refers to capture groups (only `$0` exists here).
    let mut out = String::new();
    let mut last_end = 0;
    let mut search = 0;
    while search <= s.len() {
        let Some((a, b)) = p.find_from(&s, search) else {
            break;
        };
        out.extend(&s[last_end..a]);
        if b > last_end || a == 0 {
            expand_template(&mut out, replacement, &s[a..b]);
        }
        last_end = b;
        search = if search + 1 > b { search + 1 } else { b };
    }
    if last_end <= s.len() {
        out.extend(&s[last_end..]);
    }
    Ok(out)
}

/// Go's `Regexp.Expand` for a regex without capture groups.
fn expand_template(out: &mut String, template: &str, whole: &[char]) {
    let t: Vec<char> = template.chars().collect();
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut i = 0;
    while i < t.len() {
        if t[i] != '$' {
            out.push(t[i]);
            i += 1;
            continue;
        }
        if t.get(i + 1) == Some(&'$') {
            out.push('$');
            i += 2;
            continue;
        }
        let (name, next): (String, usize) = if t.get(i + 1) == Some(&'{') {
            match t[i + 2..].iter().position(|&c| c == '}') {
                Some(len) if len > 0 && t[i + 2..i + 2 + len].iter().all(|&c| is_name(c)) => {
                    (t[i + 2..i + 2 + len].iter().collect(), i + 3 + len)
                }
                _ => (String::new(), i),
            }
        } else {
            let len = t[i + 1..].iter().take_while(|&&c| is_name(c)).count();
            (t[i + 1..i + 1 + len].iter().collect(), i + 1 + len)
        };
        if name.is_empty() {
            out.push('$');
            i += 1;
            continue;
        }
        if let Ok(0) = name.parse::<u64>() {
            out.extend(whole);
        }
        i = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_errors() {
        for p in ["\\", "\\x", "\\\\\\"] {
            assert!(Pattern::compile(p, true).is_err(), "{p}");
        }
    }

    #[test]
    fn reverse() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
    }

    #[test]
    fn prefix_suffix() {
        assert_eq!(trim_prefix("*x*y", "xxyy", false).unwrap(), "y");
        assert_eq!(trim_prefix("*", "xxyy", false).unwrap(), "xxyy");
        assert_eq!(trim_prefix("*x", "xxyy", true).unwrap(), "yy");
        assert_eq!(trim_prefix("?\\?", "???y", false).unwrap(), "?y");
        assert_eq!(trim_suffix("\\**", "xx**", true).unwrap(), "xx");
        assert_eq!(trim_suffix("\\**\\*", "a***yy*", true).unwrap(), "a");
        assert_eq!(trim_suffix("x", "xxyy", false).unwrap(), "xxyy");
    }

    #[test]
    fn replacing() {
        assert_eq!(
            replace("\\*/", "/foo*/*/*.txt", ".", false).unwrap(),
            "/foo.*/*.txt"
        );
        assert_eq!(
            replace("\\*/", "/foo*/*/*.txt", ".", true).unwrap(),
            "/foo..*.txt"
        );
        assert_eq!(
            replace("/?/", "/a/foo/b/c.txt", "/", true).unwrap(),
            "/foo/c.txt"
        );
        assert_eq!(replace("", "xxyy", "ww", false).unwrap(), "wwxxyy");
        assert_eq!(replace("", "xxyy", "", true).unwrap(), "xxyy");
        assert_eq!(
            replace("\\/", "/tmp/foo.txt", "\\/", true).unwrap(),
            "\\/tmp\\/foo.txt"
        );
    }
}
