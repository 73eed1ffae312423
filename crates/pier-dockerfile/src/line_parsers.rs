//! Per-instruction argument splitting (BuildKit's "line parsers"): each
//! instruction keyword picks a rule for turning the rest of the line into
//! node arguments.

use crate::error::ParseErrorKind;
use crate::node::Node;

/// Arguments produced by a line parser.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) args: Vec<String>,
    pub(crate) sub: Option<Box<Node>>,
    pub(crate) json: bool,
}

impl Parsed {
    fn args(args: Vec<String>) -> Parsed {
        Parsed {
            args,
            ..Parsed::default()
        }
    }
}

/// `[\t\v\f\r ]`, BuildKit's separator between instruction words.
fn is_sep(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Splits on runs of separators, at most `n` pieces (`None` = unlimited),
/// like Go's `Regexp.Split`.
pub(crate) fn split_ws(s: &str, n: Option<usize>) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        if n.is_some_and(|n| out.len() + 1 == n) {
            out.push(rest);
            return out;
        }
        match rest.find(is_sep) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = rest[i..].trim_start_matches(is_sep);
            }
            None => {
                out.push(rest);
                return out;
            }
        }
    }
}

/// Splits a logical line into keyword, flags and the remaining arguments.
pub(crate) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let parts = split_ws(line.trim(), Some(2));
    let cmd = parts[0].to_string();
    if parts.len() < 2 {
        return (cmd, Vec::new(), String::new());
    }
    let (rest, flags) = extract_builder_flags(parts[1], escape);
    (cmd, flags, rest.trim().to_string())
}

/// Takes leading `--flag[=value]` words off the line. Quotes and escapes
/// inside flags are removed; a bare `--` ends the flags.
fn extract_builder_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let (pos, ch) = chars[i];
        let at_last = i + 1 == chars.len();
        match phase {
            Phase::Spaces => {
                if ch.is_whitespace() {
                    i += 1;
                    continue;
                }
                if ch != '-' || chars.get(i + 1).map(|c| c.1) != Some('-') {
                    return (&line[pos..], words);
                }
                phase = Phase::Word;
                continue;
            }
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (&line[pos..], words);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                } else if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                } else if ch == escape {
                    if !at_last {
                        i += 1;
                        word.push(chars[i].1);
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                } else if ch == escape {
                    if at_last {
                        phase = Phase::Word;
                    } else {
                        i += 1;
                        word.push(chars[i].1);
                    }
                } else {
                    word.push(ch);
                }
            }
        }
        i += 1;
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    ("", words)
}

/// Splits into words on whitespace, keeping quotes and escapes in the words
/// (they are processed later, at expansion time).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        let at_last = i + 1 == chars.len();
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                } else if ch == escape {
                    // An escape at the very end of the line is dropped.
                    if !at_last {
                        word.push(ch);
                        i += 1;
                        word.push(chars[i]);
                    }
                } else {
                    if ch == '\'' || ch == '"' {
                        phase = Phase::Quote(ch);
                        blank_ok = true;
                    }
                    word.push(ch);
                }
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                }
                if ch == escape && q != '\'' {
                    if at_last {
                        phase = Phase::Word;
                    } else {
                        word.push(ch);
                        i += 1;
                        word.push(chars[i]);
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Spaces => unreachable!("handled above"),
        }
        i += 1;
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// ENV / LABEL: `KEY name value` (legacy) or `KEY a=b c=d`.
fn parse_name_val(rest: &str, key: &'static str, escape: char) -> Result<Parsed, ParseErrorKind> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(Parsed::default());
    }
    if !words[0].contains('=') {
        let parts = split_ws(rest, Some(2));
        if parts.len() < 2 {
            return Err(ParseErrorKind::MustHaveTwoArguments(key));
        }
        return Ok(Parsed::args(vec![
            parts[0].to_string(),
            parts[1].to_string(),
            String::new(),
        ]));
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ParseErrorKind::MissingEquals(w));
        };
        args.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(Parsed::args(args))
}

fn parse_strings_whitespace_delimited(rest: &str) -> Parsed {
    if rest.is_empty() {
        return Parsed::default();
    }
    Parsed::args(
        split_ws(rest, None)
            .into_iter()
            .map(str::to_string)
            .collect(),
    )
}

fn parse_string(rest: &str) -> Parsed {
    if rest.is_empty() {
        return Parsed::default();
    }
    Parsed::args(vec![rest.to_string()])
}

/// Outcome of trying the JSON (exec) form.
enum Json {
    Array(Vec<String>),
    NotJson,
}

fn parse_json(rest: &str) -> Result<Json, ParseErrorKind> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(Json::NotJson);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        // BuildKit falls back to the shell form on invalid JSON.
        return Ok(Json::NotJson);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ParseErrorKind::NotStringArray),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Json::Array)
}

fn json_parsed(args: Vec<String>) -> Parsed {
    Parsed {
        args,
        json: true,
        sub: None,
    }
}

/// CMD / ENTRYPOINT / RUN / SHELL: JSON array or one shell string.
fn parse_maybe_json(rest: &str) -> Result<Parsed, ParseErrorKind> {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    Ok(match parse_json(rest)? {
        Json::Array(a) => json_parsed(a),
        Json::NotJson => Parsed::args(vec![rest.to_string()]),
    })
}

/// ADD / COPY / VOLUME: JSON array or whitespace-separated words.
fn parse_maybe_json_to_list(rest: &str) -> Result<Parsed, ParseErrorKind> {
    Ok(match parse_json(rest)? {
        Json::Array(a) => json_parsed(a),
        Json::NotJson => parse_strings_whitespace_delimited(rest),
    })
}

/// HEALTHCHECK: a type word (`CMD`, `NONE`) then a maybe-JSON command.
fn parse_health_config(rest: &str) -> Result<Parsed, ParseErrorKind> {
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Ok(Parsed::default());
    }
    let typ = &rest[..sep];
    let cmd = parse_maybe_json(rest[sep..].trim_start())?;
    let mut args = vec![typ.to_string()];
    args.extend(cmd.args);
    Ok(Parsed {
        args,
        json: cmd.json,
        sub: None,
    })
}

/// Splits `rest` according to the rules of instruction `cmd` (lowercase).
/// ONBUILD is handled by the caller, which needs to recurse.
pub(crate) fn dispatch(cmd: &str, rest: &str, escape: char) -> Result<Parsed, ParseErrorKind> {
    match cmd {
        "add" | "copy" | "volume" => parse_maybe_json_to_list(rest),
        "arg" => Ok(Parsed::args(parse_words(rest, escape))),
        "cmd" | "entrypoint" | "run" | "shell" => parse_maybe_json(rest),
        "env" => parse_name_val(rest, "ENV", escape),
        "label" => parse_name_val(rest, "LABEL", escape),
        "expose" | "from" => Ok(parse_strings_whitespace_delimited(rest)),
        "healthcheck" => parse_health_config(rest),
        "maintainer" | "stopsignal" | "user" | "workdir" => Ok(parse_string(rest)),
        // Unknown instructions keep an empty argument, as BuildKit's tree
        // does; typing them reports the error.
        _ => Ok(Parsed::args(vec![String::new()])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quotes() {
        let w = |s: &str| parse_words(s, '\\');
        assert_eq!(w("foo bar"), ["foo", "bar"]);
        assert_eq!(w("foo\\ bar"), ["foo\\ bar"]);
        assert_eq!(w("foo bar 'abc xyz'"), ["foo", "bar", "'abc xyz'"]);
        assert_eq!(w(r#"föo bàr "âbc xÿz""#), ["föo", "bàr", r#""âbc xÿz""#]);
        assert_eq!(w("a=''"), ["a=''"]);
    }

    #[test]
    fn flags() {
        fn f(s: &str) -> (&str, Vec<String>) {
            extract_builder_flags(s, '\\')
        }
        assert_eq!(
            f("--from=x --chown=a b c"),
            ("b c", vec!["--from=x".to_string(), "--chown=a".to_string()])
        );
        assert_eq!(
            f("--doit=true -- foo"),
            (" foo", vec!["--doit=true".to_string()])
        );
        assert_eq!(f("--a=\"x y\" z"), ("z", vec!["--a=x y".to_string()]));
        assert_eq!(f("-- foo"), (" foo", vec![]));
        assert_eq!(f("--x"), ("", vec!["--x".to_string()]));
    }

    #[test]
    fn split() {
        assert_eq!(split_ws("a  b\tc", None), ["a", "b", "c"]);
        assert_eq!(split_ws("a  b\tc", Some(2)), ["a", "b\tc"]);
        assert_eq!(split_ws("a", Some(2)), ["a"]);
    }
}
