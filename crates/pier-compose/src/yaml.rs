//! YAML into a tree that remembers where each node came from (file, line) and
//! its tag (`!reset`, `!override`), with anchors and `<<` merge keys resolved.
//!
//! serde-style YAML crates drop positions and custom tags, and Compose needs
//! both: errors name the line, and merges obey the tags.

use crate::error::{ComposeError, Result};
use std::collections::HashMap;
use std::sync::Arc;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Where a node was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// `plain` scalars are typed (bool, number, null) when turned into JSON;
    /// quoted ones are always strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub tag: Option<String>,
    pub pos: Pos,
}

impl Node {
    pub fn new(value: Value, pos: Pos) -> Node {
        Node {
            value,
            tag: None,
            pos,
        }
    }

    pub fn str(text: &str, pos: Pos) -> Node {
        Node::new(
            Value::Scalar {
                text: text.to_string(),
                plain: false,
            },
            pos,
        )
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Map(m) => m.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn has_tag(&self, t: &str) -> bool {
        self.tag.as_deref() == Some(t)
    }

    /// The node as JSON: plain scalars typed by YAML 1.2's core schema.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Scalar { text, plain: false } => J::String(text.clone()),
            Value::Scalar { text, plain: true } => plain_scalar(text),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Calls `f` with the JSON-ish path (`services.web.ports[0]`) of every node.
    pub fn walk(&self, path: &str, f: &mut dyn FnMut(&str, &Node)) {
        f(path, self);
        match &self.value {
            Value::Seq(items) => {
                for (i, n) in items.iter().enumerate() {
                    n.walk(&format!("{path}[{i}]"), f);
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    v.walk(&p, f);
                }
            }
            _ => {}
        }
    }
}

fn plain_scalar(text: &str) -> serde_json::Value {
    use serde_json::Value as J;
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return J::Null,
        "true" | "True" | "TRUE" => return J::Bool(true),
        "false" | "False" | "FALSE" => return J::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return J::from(i);
    }
    let looks_float = text
        .trim_start_matches(['-', '+'])
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '.');
    if looks_float
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return J::Number(n);
    }
    J::String(text.to_string())
}

/// Parses one YAML document (an empty file is an empty mapping).
pub fn parse(text: &str, file: &str) -> Result<Node> {
    let file: Arc<str> = Arc::from(file);
    let mut b = Builder {
        file: file.clone(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut b, false).map_err(|e| ComposeError::Yaml {
        file: file.to_string(),
        line: e.marker().line(),
        message: e.info().to_string(),
    })?;
    if let Some(e) = b.error {
        return Err(e);
    }
    let root = b.root.unwrap_or(Node::new(
        Value::Map(Vec::new()),
        Pos {
            file: file.clone(),
            line: 1,
        },
    ));
    if matches!(root.value, Value::Null) {
        return Ok(Node::new(Value::Map(Vec::new()), root.pos));
    }
    if !matches!(root.value, Value::Map(_)) {
        return Err(ComposeError::Yaml {
            file: file.to_string(),
            line: root.pos.line,
            message: "top-level object must be a mapping".into(),
        });
    }
    Ok(root)
}

enum Frame {
    Seq(Node, usize),
    /// The map, its anchor, a key waiting for its value, keys that came from `<<`.
    Map(Node, usize, Option<Node>, Vec<String>),
}

struct Builder {
    file: Arc<str>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    error: Option<ComposeError>,
}

fn tag_name(t: Option<Tag>) -> Option<String> {
    t.map(|t| format!("{}{}", t.handle, t.suffix))
}

impl Builder {
    fn pos(&self, m: &Marker) -> Pos {
        Pos {
            file: self.file.clone(),
            line: m.line(),
        }
    }

    fn fail(&mut self, line: usize, message: String) {
        if self.error.is_none() {
            self.error = Some(ComposeError::Yaml {
                file: self.file.to_string(),
                line,
                message,
            });
        }
    }

    /// Hands a finished node to its parent (or makes it the document).
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq(seq, _)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some(Frame::Map(_, _, key @ None, _)) => *key = Some(node),
            Some(Frame::Map(map, _, key @ Some(_), merged)) => {
                let k = key.take().expect("checked");
                // A block collection is placed where its key is written.
                let mut node = node;
                if matches!(node.value, Value::Map(_) | Value::Seq(_)) {
                    node.pos = k.pos.clone();
                }
                let Some(name) = key_text(&k) else {
                    let line = k.pos.line;
                    self.fail(line, "mapping keys must be scalars".into());
                    return;
                };
                if let Value::Map(entries) = &mut map.value {
                    if name == "<<" {
                        merged.extend(merge_key(entries, node));
                    } else if let Some(i) = merged.iter().position(|m| *m == name) {
                        // An explicit key overrides one brought in by `<<`.
                        merged.remove(i);
                        if let Some(e) = entries.iter_mut().find(|(e, _)| *e == name) {
                            e.1 = node;
                        }
                    } else if entries.iter().any(|(e, _)| *e == name) {
                        let line = k.pos.line;
                        self.fail(line, format!("mapping key {name:?} already defined"));
                    } else {
                        entries.push((name, node));
                    }
                }
            }
        }
    }
}

fn key_text(k: &Node) -> Option<String> {
    match &k.value {
        Value::Scalar { text, .. } => Some(text.clone()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// `<<: *base` or `<<: [*a, *b]`: keys of the merged maps that the map does
/// not set itself (earlier maps in the list win, as YAML 1.1 says).
fn merge_key(entries: &mut Vec<(String, Node)>, node: Node) -> Vec<String> {
    let mut added = Vec::new();
    let sources = match node.value {
        Value::Seq(items) => items,
        _ => vec![node],
    };
    for src in sources {
        if let Value::Map(src_entries) = src.value {
            for (k, v) in src_entries {
                if !entries.iter().any(|(e, _)| *e == k) {
                    added.push(k.clone());
                    entries.push((k, v));
                }
            }
        }
    }
    added
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag_name(tag);
                let plain = style == TScalarStyle::Plain && tag.is_none();
                let value = if plain && matches!(text.as_str(), "" | "~" | "null") {
                    Value::Null
                } else {
                    Value::Scalar { text, plain }
                };
                let mut n = Node::new(value, self.pos(&mark));
                n.tag = tag;
                self.push(n, anchor);
            }
            Event::SequenceStart(anchor, tag) => {
                let mut n = Node::new(Value::Seq(Vec::new()), self.pos(&mark));
                n.tag = tag_name(tag);
                self.stack.push(Frame::Seq(n, anchor));
            }
            Event::MappingStart(anchor, tag) => {
                let mut n = Node::new(Value::Map(Vec::new()), self.pos(&mark));
                n.tag = tag_name(tag);
                self.stack.push(Frame::Map(n, anchor, None, Vec::new()));
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(n, a)) | Some(Frame::Map(n, a, _, _)) => self.push(n, a),
                None => {}
            },
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut n) => {
                    n.tag = None;
                    self.push(n, 0)
                }
                None => self.fail(mark.line(), "unknown anchor".into()),
            },
            _ => {}
        }
    }
}

/// Turns JSON into YAML text (block style), for `config`.
pub fn emit(v: &serde_json::Value) -> String {
    let y = json_to_yaml(v);
    let mut out = String::new();
    let mut em = yaml_rust2::YamlEmitter::new(&mut out);
    em.multiline_strings(true);
    let _ = em.dump(&y);
    let body = out.strip_prefix("---\n").unwrap_or(&out).to_string();
    body + "\n"
}

fn json_to_yaml(v: &serde_json::Value) -> yaml_rust2::Yaml {
    use serde_json::Value as J;
    use yaml_rust2::Yaml as Y;
    match v {
        J::Null => Y::Null,
        J::Bool(b) => Y::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Y::Integer(i),
            None => Y::Real(n.to_string()),
        },
        J::String(s) => Y::String(s.clone()),
        J::Array(a) => Y::Array(a.iter().map(json_to_yaml).collect()),
        J::Object(o) => {
            let mut h = yaml_rust2::yaml::Hash::new();
            for (k, v) in o {
                h.insert(Y::String(k.clone()), json_to_yaml(v));
            }
            Y::Hash(h)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_merge_keys_and_tags_survive() {
        let text = "x-base: &base\n  image: busybox\n  restart: always\nservices:\n  web:\n    <<: *base\n    restart: \"no\"\n    ports: !reset []\n";
        let n = parse(text, "compose.yaml").unwrap();
        let web = n.get("services").unwrap().get("web").unwrap();
        assert_eq!(web.get("image").unwrap().as_str(), Some("busybox"));
        assert_eq!(web.get("restart").unwrap().as_str(), Some("no"));
        assert!(web.get("ports").unwrap().has_tag("!reset"));
        assert_eq!(web.get("ports").unwrap().pos.line, 8);
    }

    #[test]
    fn plain_scalars_are_typed_quoted_ones_are_not() {
        let n = parse("a: 1\nb: \"1\"\nc: true\nd: 1.5\ne: 0x1g\nf:\n", "f").unwrap();
        let j = n.to_json();
        assert_eq!(j["a"], serde_json::json!(1));
        assert_eq!(j["b"], serde_json::json!("1"));
        assert_eq!(j["c"], serde_json::json!(true));
        assert_eq!(j["d"], serde_json::json!(1.5));
        assert_eq!(j["e"], serde_json::json!("0x1g"));
        assert_eq!(j["f"], serde_json::Value::Null);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("services:\n  web:\n    image: [\n", "c.yaml").unwrap_err();
        assert!(e.to_string().starts_with("c.yaml:"), "{e}");
        let e = parse("a: 1\na: 2\n", "c.yaml").unwrap_err();
        assert_eq!(e.to_string(), "c.yaml:2: mapping key \"a\" already defined");
    }
}
