//! Parse errors. Message texts follow BuildKit's so users see what Docker
//! would tell them; every error carries the Dockerfile lines it came from.

use std::fmt;

use crate::quote::go_quote;
use crate::shell::ExpandError;

/// A Dockerfile error with its location (1-based lines; 0 when the
/// problem is the file as a whole, e.g. an empty file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub line: usize,
    pub end_line: usize,
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "Dockerfile: {}", self.kind)
        } else {
            write!(f, "Dockerfile:{}: {}", self.line, self.kind)
        }
    }
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, line: usize, end_line: usize) -> ParseError {
        ParseError {
            line,
            end_line: end_line.max(line),
            kind,
        }
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("file with no instructions")]
    NoInstructions,
    #[error("dockerfile line greater than max allowed size of 65535")]
    LineTooLong,
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscapeToken(String),
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    #[error("invalid heredoc: {0}")]
    InvalidHeredoc(ExpandError),
    #[error("{0} cannot accept a heredoc as {1}")]
    BadHeredoc(String, &'static str),
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    #[error("{0} must have two arguments")]
    MustHaveTwoArguments(&'static str),
    #[error("Syntax error - can't find = in {}. Must be of the form: name=value", go_quote(.0))]
    MissingEquals(String),
    #[error("unknown instruction: {name}{}", suggestion_suffix(.suggestion))]
    UnknownInstruction {
        name: String,
        suggestion: Option<String>,
    },
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
    #[error("{0} requires at least one argument")]
    AtLeastOneArgument(&'static str),
    #[error("{0} requires exactly one argument")]
    ExactlyOneArgument(&'static str),
    #[error("{0} requires at least two arguments, but only one was provided. Destination could not be determined")]
    NoDestination(&'static str),
    #[error("{0} requires the arguments to be in JSON form")]
    NotJson(&'static str),
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    #[error("invalid name for build stage: {}, name can't start with a number or contain symbols", go_quote(.0))]
    InvalidStageName(String),
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger(String),
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("{instruction}: {message}")]
    Flag {
        instruction: String,
        message: String,
    },
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArgs,
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCommand,
    #[error("Unknown type {} in HEALTHCHECK (try CMD)", go_quote(.0))]
    HealthcheckType(String),
    #[error("HEALTHCHECK: {0}")]
    Healthcheck(String),
    #[error("RUN --mount: {0}")]
    Mount(String),
    #[error("invalid network mode {}", go_quote(.0))]
    InvalidNetwork(String),
    #[error("security {} is not valid", go_quote(.0))]
    InvalidSecurity(String),
    #[error("no build stage in current context")]
    NoStage,
    #[error("duplicate stage name {}", go_quote(.0))]
    DuplicateStageName(String),
}

fn suggestion_suffix(s: &Option<String>) -> String {
    match s {
        Some(m) => format!(" (did you mean {m}?)"),
        None => String::new(),
    }
}

/// BuildKit's `suggest.Search`: the closest option by Levenshtein distance
/// (below 3), or None when `val` already is an option.
pub(crate) fn suggest(val: &str, options: &[&str], case_sensitive: bool) -> Option<String> {
    let norm = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    };
    let v = norm(val);
    let mut best: Option<String> = None;
    let mut min = 3;
    for opt in options {
        let o = norm(opt);
        if o == v {
            return None;
        }
        let d = levenshtein(&v, &o);
        if d < min {
            min = d;
            best = Some(if case_sensitive {
                o
            } else {
                match_case(&o, val)
            });
        }
    }
    best
}

fn match_case(opt: &str, orig: &str) -> String {
    if orig == orig.to_lowercase() {
        opt.to_lowercase()
    } else if orig == orig.to_uppercase() {
        opt.to_uppercase()
    } else {
        opt.to_string()
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let opts = ["RUN", "COPY", "ADD"];
        assert_eq!(suggest("RUNN", &opts, false).as_deref(), Some("RUN"));
        assert_eq!(suggest("runn", &opts, false).as_deref(), Some("run"));
        assert_eq!(suggest("XYZZY", &opts, false), None);
        assert_eq!(suggest("run", &opts, false), None);
    }

    #[test]
    fn display_names_line() {
        let e = ParseError::new(
            ParseErrorKind::UnknownInstruction {
                name: "RUNN".into(),
                suggestion: Some("RUN".into()),
            },
            3,
            3,
        );
        assert_eq!(
            e.to_string(),
            "Dockerfile:3: unknown instruction: RUNN (did you mean RUN?)"
        );
        let e = ParseError::new(ParseErrorKind::NoInstructions, 0, 0);
        assert_eq!(e.to_string(), "Dockerfile: file with no instructions");
    }
}
