//! Multi-document YAML in, JSON values out, and the key check that turns every
//! field Pier does not honour into a warning instead of dropping it silently.

use crate::error::{KubeError, Result};
use serde_json::Value;
use std::io::Read;

/// Reads `FILE`, or standard input for `-`.
pub fn read_input(file: &str) -> Result<String> {
    if file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| KubeError::io("standard input", e))?;
        return Ok(s);
    }
    std::fs::read_to_string(file).map_err(|e| KubeError::io(file, e))
}

/// Every document of a `---`-separated stream; empty documents are skipped.
/// Each document is parsed with the lines before it kept blank, so errors name
/// the line in the whole file.
pub fn parse_all(text: &str, file: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut skipped = 0usize;
    let mut flush = |current: &mut String, skipped: usize| -> Result<()> {
        if current.trim().is_empty() {
            current.clear();
            return Ok(());
        }
        let padded = "\n".repeat(skipped) + current;
        let node = pier_compose::yaml::parse(&padded, file)?;
        let v = node.to_json();
        // A document of comments only (a header) is no object.
        if v.as_object().is_some_and(|o| !o.is_empty()) {
            docs.push(v);
        }
        current.clear();
        Ok(())
    };
    let mut start = 0usize;
    for (n, line) in text.lines().enumerate() {
        let is_sep = line == "---" || line.starts_with("--- ") || line == "...";
        if is_sep {
            flush(&mut current, skipped)?;
            start = n + 1;
            skipped = start;
            continue;
        }
        if current.is_empty() {
            skipped = start;
        }
        current.push_str(line);
        current.push('\n');
    }
    flush(&mut current, skipped)?;
    Ok(docs)
}

/// The warnings of one play or generate, printed on stderr as Podman does.
#[derive(Default, Debug)]
pub struct Warnings(pub Vec<String>);

impl Warnings {
    pub fn add(&mut self, w: String) {
        if !self.0.contains(&w) {
            self.0.push(w);
        }
    }

    /// Warns about each key of `v` (an object at `path` of `what`) that is not
    /// in `known`.
    pub fn unknown_keys(&mut self, what: &str, path: &str, v: &Value, known: &[&str]) {
        let Some(o) = v.as_object() else { return };
        for k in o.keys() {
            if !known.contains(&k.as_str()) {
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                self.add(format!(
                    "{what}: {at}: not supported by pier kube play, ignored"
                ));
            }
        }
    }

    pub fn print(&self) {
        for w in &self.0 {
            eprintln!("WARN[0000] {w}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_and_lines_are_kept() {
        let text = "---\na: 1\n---\n\n---\nb: 2\nc: [\n";
        let e = parse_all(text, "k.yaml").unwrap_err().to_string();
        assert!(e.starts_with("k.yaml:"), "{e}");
        let docs = parse_all("# header\n---\na: 1\n---\nb: x\n", "k.yaml").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["b"], "x");
    }

    #[test]
    fn unknown_keys_warn_once_each() {
        let mut w = Warnings::default();
        let v = serde_json::json!({"name": "a", "tolerations": [], "x": 1});
        w.unknown_keys("pod/p", "spec", &v, &["name"]);
        w.unknown_keys("pod/p", "spec", &v, &["name"]);
        assert_eq!(
            w.0,
            vec![
                "pod/p: spec.tolerations: not supported by pier kube play, ignored",
                "pod/p: spec.x: not supported by pier kube play, ignored"
            ]
        );
    }
}
