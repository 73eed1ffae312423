//! Line-level lexing: parser directives, comments and line continuations.

use std::collections::HashSet;

use crate::error::ParseErrorKind;
use crate::node::Directive;

const KNOWN: [&str; 3] = ["syntax", "escape", "check"];

/// Tracks parser directives, which are only honoured in the leading run of
/// `# key=value` comment lines.
#[derive(Debug)]
pub(crate) struct DirectiveState {
    line: usize,
    done: bool,
    seen: HashSet<String>,
    pub(crate) escape: char,
    pub(crate) found: Vec<Directive>,
}

impl DirectiveState {
    pub(crate) fn new() -> DirectiveState {
        DirectiveState {
            line: 0,
            done: false,
            seen: HashSet::new(),
            escape: '\\',
            found: Vec::new(),
        }
    }

    /// Looks at one (newline-trimmed) line; true when it was a directive.
    pub(crate) fn check_line(&mut self, line: &str) -> Result<bool, ParseErrorKind> {
        self.line += 1;
        if self.done {
            return Ok(false);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(false);
        };
        let Some((key, value)) = split_directive(rest.trim_start()) else {
            self.done = true;
            return Ok(false);
        };
        let key = key.to_lowercase();
        if !KNOWN.contains(&key.as_str()) {
            self.done = true;
            return Ok(false);
        }
        if !self.seen.insert(key.clone()) {
            return Err(ParseErrorKind::DuplicateDirective(key));
        }
        if key == "escape" {
            self.escape = match value {
                "\\" => '\\',
                "`" => '`',
                _ => return Err(ParseErrorKind::InvalidEscapeToken(value.to_string())),
            };
        }
        self.found.push(Directive {
            name: key,
            value: value.to_string(),
            line: self.line,
        });
        Ok(true)
    }
}

/// Matches `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn split_directive(s: &str) -> Option<(&str, &str)> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() => {}
        _ => return None,
    }
    let key_end = s
        .char_indices()
        .find(|(_, c)| !c.is_ascii_alphanumeric())
        .map_or(s.len(), |(i, _)| i);
    let rest = s[key_end..].trim_start_matches(is_re_space);
    let value = rest.strip_prefix('=')?.trim_matches(is_re_space);
    if value.is_empty() {
        return None;
    }
    Some((&s[..key_end], value))
}

/// `\s` in Go's regexp syntax.
fn is_re_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

/// Strips trailing `\r` and `\n`.
pub(crate) fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

pub(crate) fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// If `line` ends with the escape character (optionally followed by blanks)
/// and that escape is not itself escaped, returns the line without it.
/// Returns (text, end_of_logical_line).
pub(crate) fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape)
        && (before.is_empty() || !before.ends_with(escape))
    {
        return (before, false);
    }
    (line, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_only_at_top() {
        let mut d = DirectiveState::new();
        assert!(d.check_line("# syntax = docker/dockerfile:1").unwrap());
        assert!(d.check_line("#escape=`").unwrap());
        assert_eq!(d.escape, '`');
        assert!(d.check_line("# check=skip=all").unwrap());
        assert!(!d.check_line("FROM x").unwrap());
        assert!(!d.check_line("# escape=\\").unwrap());
        assert_eq!(d.found.len(), 3);
        assert_eq!(d.found[2].value, "skip=all");
    }

    #[test]
    fn duplicate_and_invalid() {
        let mut d = DirectiveState::new();
        d.check_line("# escape=\\").unwrap();
        assert!(d.check_line("# ESCAPE=\\").is_err());
        let mut d = DirectiveState::new();
        assert!(d.check_line("# escape=x").is_err());
        let mut d = DirectiveState::new();
        assert!(!d.check_line("# foo=bar").unwrap());
        assert!(!d.check_line("# escape=`").unwrap());
    }

    #[test]
    fn continuation() {
        assert_eq!(trim_continuation("a \\  ", '\\'), ("a ", false));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\", true));
        assert_eq!(trim_continuation("a `", '`'), ("a ", false));
        assert_eq!(trim_continuation("a \\", '`'), ("a \\", true));
    }
}
