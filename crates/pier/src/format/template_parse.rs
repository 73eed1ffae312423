//! The parsing half of the Go template engine: the lexer of `{{ … }}` actions,
//! pipelines and their arguments, and the tree of text, actions and
//! `if`/`range`/`with` blocks that the evaluator in `template.rs` walks.

use serde_json::Value;

use super::{err, TemplateError};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Field(Vec<String>), // .A.B (empty vec = dot)
    Chain(Vec<String>), // `.A` right after `)`
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Num(f64),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
pub(super) enum Arg {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Lit(Value),
    Sub(Pipeline, Vec<String>),
}

#[derive(Debug, Clone, Default)]
pub(super) struct Pipeline {
    pub(super) decl: Vec<String>,
    pub(super) assign: bool,
    pub(super) cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
pub(super) enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
}

pub(super) fn lex_action(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let path = |chars: &[char], i: &mut usize| -> Vec<String> {
        let mut parts = Vec::new();
        while *i < chars.len() && chars[*i] == '.' {
            *i += 1;
            let start = *i;
            while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
                *i += 1;
            }
            if *i > start {
                parts.push(chars[start..*i].iter().collect());
            }
        }
        parts
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '.' => out.push(Tok::Field(path(&chars, &mut i))),
            '$' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                out.push(Tok::Var(name, path(&chars, &mut i)));
            }
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                i += 1;
                out.push(Tok::RParen);
                // `(x).Field` chains a field onto a parenthesised value.
                if i < chars.len() && chars[i] == '.' {
                    out.push(Tok::Chain(path(&chars, &mut i)));
                }
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1;
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => return err("unterminated quoted string"),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            match chars.get(i) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some('r') => s.push('\r'),
                                Some('\\') => s.push('\\'),
                                Some('"') => s.push('"'),
                                Some(o) => {
                                    s.push('\\');
                                    s.push(*o)
                                }
                                None => return err("unterminated quoted string"),
                            }
                        }
                        Some(o) => s.push(*o),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(s));
            }
            '`' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                if i >= chars.len() {
                    return err("unterminated raw quoted string");
                }
                out.push(Tok::Str(chars[start..i].iter().collect()));
                i += 1;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                let n = s
                    .parse::<f64>()
                    .map_err(|_| TemplateError(format!("bad number syntax: {s:?}")))?;
                out.push(Tok::Num(n));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            o => return err(format!("unexpected {o:?} in command")),
        }
    }
    Ok(out)
}

pub(super) struct PipeParser {
    toks: Vec<Tok>,
    pos: usize,
}

impl PipeParser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn pipeline(&mut self, in_paren: bool) -> Result<Pipeline, TemplateError> {
        let mut p = Pipeline::default();
        // Declarations: `$x :=` or `$i, $e :=`
        let save = self.pos;
        let mut vars = Vec::new();
        while let Some(Tok::Var(name, fields)) = self.peek().cloned() {
            if !fields.is_empty() {
                break;
            }
            vars.push(name);
            self.pos += 1;
            match self.peek() {
                Some(Tok::Comma) => self.pos += 1,
                Some(Tok::Declare) => {
                    self.pos += 1;
                    p.decl = std::mem::take(&mut vars);
                    break;
                }
                Some(Tok::Assign) => {
                    self.pos += 1;
                    p.decl = std::mem::take(&mut vars);
                    p.assign = true;
                    break;
                }
                _ => break,
            }
        }
        if p.decl.is_empty() {
            self.pos = save;
        }
        let mut cmd = Vec::new();
        loop {
            match self.peek().cloned() {
                None => break,
                Some(Tok::RParen) if in_paren => break,
                Some(Tok::Pipe) => {
                    self.pos += 1;
                    if cmd.is_empty() {
                        return err("missing command before |");
                    }
                    p.cmds.push(std::mem::take(&mut cmd));
                }
                Some(_) => cmd.push(self.operand()?),
            }
        }
        if !cmd.is_empty() {
            p.cmds.push(cmd);
        }
        if p.cmds.is_empty() {
            return err("missing value for command");
        }
        Ok(p)
    }

    fn operand(&mut self) -> Result<Arg, TemplateError> {
        let tok = self.toks[self.pos].clone();
        self.pos += 1;
        Ok(match tok {
            Tok::Field(f) => Arg::Field(f),
            Tok::Var(n, f) => Arg::Var(n, f),
            Tok::Str(s) => Arg::Lit(Value::String(s)),
            Tok::Num(n) => Arg::Lit(num(n)),
            Tok::Ident(i) => match i.as_str() {
                "true" => Arg::Lit(Value::Bool(true)),
                "false" => Arg::Lit(Value::Bool(false)),
                "nil" => Arg::Lit(Value::Null),
                _ => Arg::Ident(i),
            },
            Tok::LParen => {
                let p = self.pipeline(true)?;
                if self.peek() != Some(&Tok::RParen) {
                    return err("unclosed left paren");
                }
                self.pos += 1;
                match self.peek().cloned() {
                    Some(Tok::Chain(f)) => {
                        self.pos += 1;
                        Arg::Sub(p, f)
                    }
                    _ => Arg::Sub(p, Vec::new()),
                }
            }
            other => return err(format!("unexpected {other:?} in operand")),
        })
    }
}

pub(super) fn num(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

pub(super) fn parse_pipeline(src: &str) -> Result<Pipeline, TemplateError> {
    let toks = lex_action(src)?;
    let mut p = PipeParser { toks, pos: 0 };
    let pipe = p.pipeline(false)?;
    if p.pos != p.toks.len() {
        return err("unexpected tokens after pipeline");
    }
    Ok(pipe)
}

pub(super) enum Item {
    Text(String),
    Action(String),
}

/// Splits the source into text and `{{ … }}` actions, applying `{{-`/`-}}` trims.
pub(super) fn split_items(src: &str) -> Result<Vec<Item>, TemplateError> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let trim_prev =
            after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_prev {
            text = text.trim_end();
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let Some(end) = after.find("}}") else {
            return err("unclosed action");
        };
        let mut inner = &after[..end];
        if trim_prev {
            inner = &inner[1..];
        }
        trim_next = inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-");
        if trim_next {
            inner = &inner[..inner.len() - 1];
        }
        let inner = inner.trim();
        if !(inner.starts_with("/*") && inner.ends_with("*/")) {
            items.push(Item::Action(inner.to_string()));
        }
        rest = &after[end + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        items.push(Item::Text(text.to_string()));
    }
    Ok(items)
}

pub(super) enum Stop {
    End,
    Else(Option<String>),
    Eof,
}

pub(super) fn parse_nodes(
    items: &[Item],
    pos: &mut usize,
) -> Result<(Vec<Node>, Stop), TemplateError> {
    let mut nodes = Vec::new();
    while *pos < items.len() {
        let item = &items[*pos];
        *pos += 1;
        match item {
            Item::Text(t) => nodes.push(Node::Text(t.clone())),
            Item::Action(a) => {
                let (kw, rest) = match a.split_once(char::is_whitespace) {
                    Some((k, r)) => (k, r.trim()),
                    None => (a.as_str(), ""),
                };
                match kw {
                    "end" => return Ok((nodes, Stop::End)),
                    "else" => {
                        let cond = if rest.is_empty() {
                            None
                        } else {
                            Some(rest.to_string())
                        };
                        return Ok((nodes, Stop::Else(cond)));
                    }
                    "if" | "range" | "with" => {
                        let pipe = parse_pipeline(rest)?;
                        let (body, stop) = parse_nodes(items, pos)?;
                        let alt = parse_else(items, pos, stop, kw)?;
                        nodes.push(match kw {
                            "if" => Node::If(pipe, body, alt),
                            "range" => Node::Range(pipe, body, alt),
                            _ => Node::With(pipe, body, alt),
                        });
                    }
                    _ => nodes.push(Node::Action(parse_pipeline(a)?)),
                }
            }
        }
    }
    Ok((nodes, Stop::Eof))
}

pub(super) fn parse_else(
    items: &[Item],
    pos: &mut usize,
    stop: Stop,
    kw: &str,
) -> Result<Vec<Node>, TemplateError> {
    match stop {
        Stop::End => Ok(Vec::new()),
        Stop::Eof => err(format!("unexpected EOF: {kw} without end")),
        Stop::Else(None) => {
            let (alt, stop) = parse_nodes(items, pos)?;
            match stop {
                Stop::End => Ok(alt),
                _ => err("expected end after else"),
            }
        }
        Stop::Else(Some(cond)) => {
            // `else if X` (or `else with X`) is a nested block sharing our `end`.
            let (kw2, rest) = cond
                .split_once(char::is_whitespace)
                .unwrap_or((cond.as_str(), ""));
            let pipe = parse_pipeline(rest.trim())?;
            let (body, stop) = parse_nodes(items, pos)?;
            let alt = parse_else(items, pos, stop, kw2)?;
            Ok(vec![match kw2 {
                "if" => Node::If(pipe, body, alt),
                "with" => Node::With(pipe, body, alt),
                _ => return err(format!("unexpected else {kw2}")),
            }])
        }
    }
}
