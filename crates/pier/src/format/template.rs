//! A small evaluator of Go's text/template language, covering what Docker's
//! `--format` and `inspect -f` users write: fields, `$` variables, pipelines,
//! `if`/`else if`/`range`/`with`, comparison and logic builtins, and Docker's
//! extra functions (`json`, `join`, `split`, `upper`, `lower`, `title`, `pad`,
//! `truncate`, `println`). Data are JSON values, as Docker's own templates see
//! them when they run over decoded JSON.

use serde_json::Value;
use std::fmt::Write as _;

#[path = "template_parse.rs"]
mod parse;
use parse::*;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("template: {0}")]
pub struct TemplateError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

/// Called for `.Name arg…` (a method with arguments, e.g. `.Label "x"`):
/// `(dot, name, args) -> value`. `None` falls back to a plain field lookup.
pub type MethodHook<'a> = &'a dyn Fn(&Value, &str, &[Value]) -> Option<Value>;

/// A parsed template, ready to run many times.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let items = split_items(src)?;
        let mut pos = 0;
        let (nodes, stop) = parse_nodes(&items, &mut pos)?;
        match stop {
            Stop::Eof => Ok(Template { nodes }),
            Stop::End => err("unexpected {{end}}"),
            Stop::Else(_) => err("unexpected {{else}}"),
        }
    }

    /// Runs the template over `data`.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        self.render_with(data, &|_, _, _| None)
    }

    pub fn render_with(&self, data: &Value, hook: MethodHook<'_>) -> Result<String, TemplateError> {
        self.run(data, hook, false)
    }

    /// Like [`Template::render_with`] over a list row, which Docker's CLI
    /// holds in a struct: a field the row does not have is an error, not
    /// `<no value>` as in a map.
    pub fn render_row(&self, data: &Value, hook: MethodHook<'_>) -> Result<String, TemplateError> {
        self.run(data, hook, true)
    }

    fn run(
        &self,
        data: &Value,
        hook: MethodHook<'_>,
        strict: bool,
    ) -> Result<String, TemplateError> {
        let mut st = State {
            vars: vec![("$".to_string(), data.clone())],
            hook,
            out: String::new(),
            strict,
        };
        st.walk(&self.nodes, data)?;
        Ok(st.out)
    }
}

struct State<'a> {
    vars: Vec<(String, Value)>,
    hook: MethodHook<'a>,
    out: String,
    strict: bool,
}

/// Go's truth: false, 0, nil and empty things are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// How Go's fmt prints a decoded JSON value with `%v`.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                crate::format::units::go_float_g(f, None)
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_print(&o[*k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn field(v: &Value, name: &str) -> Value {
    match v {
        Value::Object(o) => o.get(name).cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn cmp_values(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
        _ => None,
    }
}

fn as_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => go_print(other),
    }
}

fn as_int(v: &Value) -> Result<i64, TemplateError> {
    v.as_f64()
        .map(|f| f as i64)
        .ok_or_else(|| TemplateError(format!("expected an integer, got {}", go_print(v))))
}

fn title(s: &str) -> String {
    let mut out = String::new();
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

/// Minimal `printf`: %s %v %d %q %f and %%.
fn printf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut idx = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&n) = it.peek() {
            spec.push(n);
            it.next();
            if n.is_ascii_alphabetic() || n == '%' {
                break;
            }
        }
        let verb = spec.chars().last().unwrap_or('v');
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args.get(idx).cloned().unwrap_or(Value::Null);
        idx += 1;
        match verb {
            'q' => out.push_str(&serde_json::to_string(&as_str(&arg)).unwrap_or_default()),
            'd' => {
                let _ = write!(out, "{}", arg.as_f64().map(|f| f as i64).unwrap_or(0));
            }
            _ => out.push_str(&as_str(&arg)),
        }
    }
    out
}

impl State<'_> {
    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<(), TemplateError> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.decl.is_empty() {
                        // A nil interface (missing key or JSON null) prints like this in Go.
                        match v {
                            Value::Null => self.out.push_str("<no value>"),
                            other => self.out.push_str(&as_str(&other)),
                        }
                    }
                }
                Node::If(p, body, alt) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    if truthy(&v) {
                        self.walk(body, dot)?;
                    } else {
                        self.walk(alt, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::With(p, body, alt) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    if truthy(&v) {
                        self.walk(body, &v)?;
                    } else {
                        self.walk(alt, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range(p, body, alt) => {
                    let mark = self.vars.len();
                    let mut decl_free = p.clone();
                    decl_free.decl.clear();
                    let v = self.pipeline(&decl_free, dot)?;
                    let pairs: Vec<(Value, Value)> = match &v {
                        Value::Array(a) => a
                            .iter()
                            .enumerate()
                            .map(|(i, e)| (Value::from(i), e.clone()))
                            .collect(),
                        Value::Object(o) => {
                            let mut keys: Vec<&String> = o.keys().collect();
                            keys.sort();
                            keys.into_iter()
                                .map(|k| (Value::String(k.clone()), o[k].clone()))
                                .collect()
                        }
                        Value::Null => Vec::new(),
                        Value::Number(n) => (0..n.as_i64().unwrap_or(0))
                            .map(|i| (Value::from(i), Value::from(i)))
                            .collect(),
                        other => {
                            return err(format!("range can't iterate over {}", go_print(other)))
                        }
                    };
                    if pairs.is_empty() {
                        self.walk(alt, dot)?;
                    }
                    for (k, e) in pairs {
                        let inner = self.vars.len();
                        match p.decl.len() {
                            0 => {}
                            1 => self.vars.push((p.decl[0].clone(), e.clone())),
                            _ => {
                                self.vars.push((p.decl[0].clone(), k));
                                self.vars.push((p.decl[1].clone(), e.clone()));
                            }
                        }
                        self.walk(body, &e)?;
                        self.vars.truncate(inner);
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn var(&self, name: &str) -> Result<Value, TemplateError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| TemplateError(format!("undefined variable: {name}")))
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, TemplateError> {
        let mut val: Option<Value> = None;
        for cmd in &p.cmds {
            val = Some(self.command(cmd, dot, val)?);
        }
        let v = val.unwrap_or(Value::Null);
        if let Some(name) = p.decl.first() {
            if p.assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = v.clone();
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn walk_fields(&self, mut v: Value, fields: &[String]) -> Value {
        for f in fields {
            v = field(&v, f);
        }
        v
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, TemplateError> {
        Ok(match a {
            Arg::Lit(v) => v.clone(),
            Arg::Field(f) => self.field_chain(dot, f, &[])?,
            Arg::Var(n, f) => {
                let base = self.var(n)?;
                self.walk_fields(base, f)
            }
            Arg::Sub(p, f) => {
                let v = self.pipeline(p, dot)?;
                self.walk_fields(v, f)
            }
            Arg::Ident(name) => self.call(name, &[], dot)?,
        })
    }

    /// `.A.B.C args…`: the last element may be a method taking `args`.
    fn field_chain(
        &mut self,
        dot: &Value,
        fields: &[String],
        args: &[Value],
    ) -> Result<Value, TemplateError> {
        let Some((last, init)) = fields.split_last() else {
            return Ok(dot.clone());
        };
        let base = self.walk_fields(dot.clone(), init);
        if let Some(v) = (self.hook)(&base, last, args) {
            return Ok(v);
        }
        if self.strict
            && let Value::Object(o) = &base
            && !o.contains_key(last.as_str())
        {
            let path: String = fields.iter().map(|f| format!(".{f}")).collect();
            return err(format!(
                "executing \"\" at <{path}>: can't evaluate field {last}"
            ));
        }
        Ok(field(&base, last))
    }

    fn command(
        &mut self,
        cmd: &[Arg],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, TemplateError> {
        let (head, rest) = cmd.split_first().expect("commands are never empty");
        let mut args = Vec::with_capacity(rest.len() + 1);
        for a in rest {
            args.push(self.arg(a, dot)?);
        }
        if let Some(p) = piped {
            args.push(p);
        }
        match head {
            Arg::Ident(name) => self.call(name, &args, dot),
            Arg::Field(f) => self.field_chain(dot, f, &args),
            other => {
                if !args.is_empty() {
                    return err("can't give argument to non-function");
                }
                self.arg(other, dot)
            }
        }
    }

    fn call(&mut self, name: &str, a: &[Value], _dot: &Value) -> Result<Value, TemplateError> {
        let arg = |i: usize| a.get(i).cloned().unwrap_or(Value::Null);
        let need = |n: usize| -> Result<(), TemplateError> {
            if a.len() < n {
                err(format!(
                    "wrong number of args for {name}: want {n} got {}",
                    a.len()
                ))
            } else {
                Ok(())
            }
        };
        Ok(match name {
            "json" => {
                need(1)?;
                Value::String(serde_json::to_string(&arg(0)).unwrap_or_default())
            }
            "join" => {
                need(2)?;
                let items: Vec<String> = match arg(0) {
                    Value::Array(v) => v.iter().map(as_str).collect(),
                    Value::Null => Vec::new(),
                    other => vec![as_str(&other)],
                };
                Value::String(items.join(&as_str(&arg(1))))
            }
            "split" => {
                need(2)?;
                let s = as_str(&arg(0));
                let sep = as_str(&arg(1));
                Value::Array(
                    s.split(sep.as_str())
                        .map(|p| Value::String(p.into()))
                        .collect(),
                )
            }
            "upper" => Value::String(as_str(&arg(0)).to_uppercase()),
            "lower" => Value::String(as_str(&arg(0)).to_lowercase()),
            "title" => Value::String(title(&as_str(&arg(0)))),
            "pad" => {
                need(3)?;
                let s = as_str(&arg(0));
                let before = " ".repeat(as_int(&arg(1))?.max(0) as usize);
                let after = " ".repeat(as_int(&arg(2))?.max(0) as usize);
                Value::String(format!("{before}{s}{after}"))
            }
            "truncate" => {
                need(2)?;
                let s = as_str(&arg(0));
                let n = as_int(&arg(1))?.max(0) as usize;
                Value::String(s.chars().take(n).collect())
            }
            "println" => Value::String(format!(
                "{}\n",
                a.iter().map(as_str).collect::<Vec<_>>().join(" ")
            )),
            "print" => Value::String(a.iter().map(as_str).collect::<Vec<_>>().join(" ")),
            "printf" => {
                need(1)?;
                Value::String(printf(&as_str(&arg(0)), &a[1..]))
            }
            "len" => {
                need(1)?;
                Value::from(match arg(0) {
                    Value::Array(v) => v.len(),
                    Value::Object(o) => o.len(),
                    Value::String(s) => s.len(),
                    Value::Null => 0,
                    other => return err(format!("len of {}", go_print(&other))),
                })
            }
            "index" => {
                need(1)?;
                let mut v = arg(0);
                for k in &a[1..] {
                    v = match (&v, k) {
                        (Value::Object(o), _) => o.get(&as_str(k)).cloned().unwrap_or(Value::Null),
                        (Value::Array(arr), Value::Number(n)) => {
                            let i = n.as_u64().unwrap_or(u64::MAX) as usize;
                            match arr.get(i) {
                                Some(e) => e.clone(),
                                None => return err(format!("index out of range: {i}")),
                            }
                        }
                        (Value::Null, _) => Value::Null,
                        _ => return err(format!("can't index item of type {}", go_print(&v))),
                    };
                }
                v
            }
            "not" => Value::Bool(!truthy(&arg(0))),
            "and" => {
                need(1)?;
                a.iter()
                    .find(|v| !truthy(v))
                    .unwrap_or(&a[a.len() - 1])
                    .clone()
            }
            "or" => {
                need(1)?;
                a.iter()
                    .find(|v| truthy(v))
                    .unwrap_or(&a[a.len() - 1])
                    .clone()
            }
            "eq" => {
                need(2)?;
                Value::Bool(
                    a[1..]
                        .iter()
                        .any(|b| cmp_values(&a[0], b) == Some(std::cmp::Ordering::Equal)),
                )
            }
            "ne" => {
                need(2)?;
                Value::Bool(cmp_values(&a[0], &a[1]) != Some(std::cmp::Ordering::Equal))
            }
            "lt" | "le" | "gt" | "ge" => {
                need(2)?;
                let Some(o) = cmp_values(&a[0], &a[1]) else {
                    return err(format!("incompatible types for comparison in {name}"));
                };
                use std::cmp::Ordering::*;
                Value::Bool(match name {
                    "lt" => o == Less,
                    "le" => o != Greater,
                    "gt" => o == Greater,
                    _ => o != Less,
                })
            }
            _ => return err(format!("function {name:?} not defined")),
        })
    }
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
