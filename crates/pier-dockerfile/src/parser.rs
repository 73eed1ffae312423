//! The main parse loop: physical lines -> logical lines -> nodes, with
//! heredoc bodies read after the line that announces them.

use crate::directives::{is_comment, trim_continuation, trim_newline, DirectiveState};
use crate::error::{ParseError, ParseErrorKind};
use crate::heredoc::heredocs_from_line;
use crate::line_parsers::{dispatch, split_command};
use crate::node::{Dockerfile, Node, Warning};

/// Longest physical line BuildKit's line scanner accepts, newline included.
const MAX_LINE: usize = 64 * 1024;

/// Parses Dockerfile text into the raw node tree.
pub fn parse(src: &str) -> Result<Dockerfile, ParseError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let lines: Vec<&str> = src.split_inclusive('\n').collect();
    let mut d = DirectiveState::new();
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut current = 0usize;
    let mut idx = 0usize;

    let next_line = |idx: &mut usize, current: usize| -> Result<Option<&str>, ParseError> {
        let Some(l) = lines.get(*idx) else {
            return Ok(None);
        };
        *idx += 1;
        if l.len() > MAX_LINE {
            return Err(ParseError::new(
                ParseErrorKind::LineTooLong,
                current + 1,
                current + 1,
            ));
        }
        Ok(Some(*l))
    };

    while let Some(raw) = next_line(&mut idx, current)? {
        if is_comment(raw) {
            // BuildKit drops the first byte of the untrimmed line here.
            let text = raw.get(1..).unwrap_or("").trim();
            if text.is_empty() {
                comments.clear();
            } else {
                comments.push(text.to_string());
            }
        }
        let token = trim_newline(raw).trim_start();
        let is_directive = d
            .check_line(token)
            .map_err(|k| ParseError::new(k, current + 1, current + 1))?;
        if is_directive {
            comments.pop();
        }
        let token = if is_comment(token) { "" } else { token };
        current += 1;
        let start = current;

        let (first, mut eol) = trim_continuation(token, d.escape);
        if eol && first.is_empty() {
            continue;
        }
        let mut line = first.to_string();
        let mut empty_continuation = false;
        while !eol {
            let Some(raw) = next_line(&mut idx, current)? else {
                break;
            };
            let token = trim_newline(raw);
            d.check_line(token)
                .map_err(|k| ParseError::new(k, current + 1, current + 1))?;
            current += 1;
            if is_comment(raw) {
                continue;
            }
            if token.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, end) = trim_continuation(token, d.escape);
            eol = end;
            line.push_str(part);
        }
        if empty_continuation {
            warnings.push(Warning {
                message: format!("Empty continuation line found in: {line}"),
                line: current,
            });
        }

        let mut node = new_node_from_line(&line, d.escape, std::mem::take(&mut comments))
            .map_err(|k| ParseError::new(k, start, current))?;

        if can_contain_heredoc(&node) && line.contains("<<") {
            let heredocs = heredocs_from_line(&line)
                .map_err(|e| ParseError::new(ParseErrorKind::InvalidHeredoc(e), start, current))?;
            for mut h in heredocs {
                let mut terminated = false;
                while let Some(raw) = next_line(&mut idx, current)? {
                    current += 1;
                    let mut candidate = trim_newline(raw);
                    if h.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == h.name {
                        terminated = true;
                        break;
                    }
                    h.content.push_str(raw);
                }
                if !terminated {
                    return Err(ParseError::new(
                        ParseErrorKind::UnterminatedHeredoc,
                        start,
                        current,
                    ));
                }
                node.heredocs.push(h);
            }
        }
        node.start_line = start;
        node.end_line = current;
        if let Some(sub) = node.sub.as_mut() {
            sub.start_line = start;
            sub.end_line = current;
        }
        nodes.push(node);
    }

    if nodes.is_empty() {
        return Err(ParseError::new(
            ParseErrorKind::NoInstructions,
            current,
            current,
        ));
    }
    Ok(Dockerfile {
        nodes,
        escape: d.escape,
        directives: d.found,
        warnings,
    })
}

/// Parses raw bytes (invalid UTF-8 is replaced, as Go's JSON decoder would).
pub fn parse_bytes(src: &[u8]) -> Result<Dockerfile, ParseError> {
    parse(&String::from_utf8_lossy(src))
}

fn new_node_from_line(
    line: &str,
    escape: char,
    comments: Vec<String>,
) -> Result<Node, ParseErrorKind> {
    let (cmd, flags, rest) = split_command(line, escape);
    let lower = cmd.to_lowercase();
    let (args, sub, json) = if lower == "onbuild" {
        let sub = if rest.is_empty() {
            None
        } else {
            Some(Box::new(new_node_from_line(&rest, escape, Vec::new())?))
        };
        (Vec::new(), sub, false)
    } else {
        let p = dispatch(&lower, &rest, escape)?;
        (p.args, p.sub, p.json)
    };
    Ok(Node {
        value: cmd,
        flags,
        args,
        sub,
        json,
        heredocs: Vec::new(),
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
        comments,
    })
}

/// RUN, COPY and ADD in shell form (also as an ONBUILD trigger) may carry heredocs.
fn can_contain_heredoc(node: &Node) -> bool {
    let n = match (&node.sub, node.name().as_str()) {
        (Some(sub), "onbuild") => sub.as_ref(),
        _ => node,
    };
    matches!(n.name().as_str(), "add" | "copy" | "run") && !n.json
}

#[cfg(test)]
mod tests;
