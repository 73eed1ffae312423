//! Merging the trees of several `-f` files with Compose's rules: mappings
//! merge by key, scalars are overridden, sequences are appended except where
//! Compose says otherwise (`command`, `entrypoint`, `healthcheck.test` are
//! replaced; `environment`, `labels`, … merge as maps; `volumes` by target;
//! `ports` without duplicates), and the tags `!reset` (drop the base value)
//! and `!override` (replace it whole).

use crate::yaml::{Node, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    Replace,
    AsMap,
    Unique,
    ByTarget,
    Default,
}

fn rule(path: &[String]) -> Rule {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["services", _, "command" | "entrypoint"] => Rule::Replace,
        ["services", _, "healthcheck", "test"] => Rule::Replace,
        ["services", _, "environment" | "labels" | "sysctls" | "annotations" | "depends_on" | "networks"
        | "extra_hosts"] => Rule::AsMap,
        ["services", _, "build", "args" | "labels" | "extra_hosts"] => Rule::AsMap,
        ["services", _, "deploy", "labels"] => Rule::AsMap,
        ["networks" | "volumes", _, "labels"] => Rule::AsMap,
        ["services", _, "volumes"] => Rule::ByTarget,
        ["services", _, "ports" | "expose" | "dns" | "dns_search" | "dns_opt" | "env_file" | "tmpfs"
        | "cap_add" | "cap_drop" | "security_opt" | "profiles" | "devices" | "secrets"
        | "configs"] => Rule::Unique,
        _ => Rule::Default,
    }
}

/// Merges `over` onto `base`; `None` when `!reset` removes the value.
pub fn merge(base: Option<Node>, over: Node, path: &mut Vec<String>) -> Option<Node> {
    if over.has_tag("!reset") {
        return None;
    }
    if over.has_tag("!override") {
        let mut o = over;
        o.tag = None;
        return Some(o);
    }
    let Some(base) = base else {
        return Some(strip_tags(over));
    };
    let r = rule(path);
    if r == Rule::Replace {
        return Some(strip_tags(over));
    }
    let (base, over) = if r == Rule::AsMap {
        (to_map(base, path), to_map(over, path))
    } else {
        (base, over)
    };
    let pos = over.pos.clone();
    match (base.value, over.value) {
        (Value::Map(mut b), Value::Map(o)) => {
            for (k, v) in o {
                path.push(k.clone());
                let idx = b.iter().position(|(bk, _)| *bk == k);
                let old = idx.map(|i| b[i].1.clone());
                match (merge(old, v, path), idx) {
                    (Some(n), Some(i)) => b[i].1 = n,
                    (Some(n), None) => b.push((k, n)),
                    (None, Some(i)) => {
                        b.remove(i);
                    }
                    (None, None) => {}
                }
                path.pop();
            }
            Some(Node::new(Value::Map(b), pos))
        }
        (Value::Seq(mut b), Value::Seq(o)) => {
            match r {
                Rule::Unique => {
                    for n in o {
                        let n = strip_tags(n);
                        if !b.iter().any(|x| x.to_json() == n.to_json()) {
                            b.push(n);
                        }
                    }
                }
                Rule::ByTarget => {
                    for n in o {
                        let n = strip_tags(n);
                        let t = volume_target(&n);
                        match b.iter().position(|x| t.is_some() && volume_target(x) == t) {
                            Some(i) => b[i] = n,
                            None => b.push(n),
                        }
                    }
                }
                _ => b.extend(o.into_iter().map(strip_tags)),
            }
            Some(Node::new(Value::Seq(b), pos))
        }
        (_, o) => Some(strip_tags(Node::new(o, pos))),
    }
}

fn strip_tags(mut n: Node) -> Node {
    if matches!(n.tag.as_deref(), Some("!reset" | "!override")) {
        n.tag = None;
    }
    match &mut n.value {
        Value::Seq(items) => {
            let v = std::mem::take(items);
            *items = v.into_iter().map(strip_tags).collect();
        }
        Value::Map(entries) => {
            let v = std::mem::take(entries);
            *entries = v
                .into_iter()
                .filter(|(_, v)| !v.has_tag("!reset"))
                .map(|(k, v)| (k, strip_tags(v)))
                .collect();
        }
        _ => {}
    }
    n
}

/// The list forms of map-like keys as a map: `["A=1", "B"]` → `{A: "1", B: null}`,
/// `depends_on: [db]` → `{db: {condition: service_started}}`, `networks: [n]` → `{n: null}`.
pub fn to_map(n: Node, path: &[String]) -> Node {
    let Value::Seq(items) = n.value else {
        return n;
    };
    let last = path.last().map(String::as_str).unwrap_or("");
    let mut entries: Vec<(String, Node)> = Vec::new();
    for it in items {
        let text = it.as_str().unwrap_or_default().to_string();
        let (k, v) = match last {
            "depends_on" => {
                let cond = Node::str("service_started", it.pos.clone());
                (
                    text,
                    Node::new(Value::Map(vec![("condition".into(), cond)]), it.pos.clone()),
                )
            }
            "networks" => (text, Node::new(Value::Null, it.pos.clone())),
            "extra_hosts" => match text.split_once(['=', ':']) {
                Some((k, v)) => (k.to_string(), Node::str(v, it.pos.clone())),
                None => (text, Node::new(Value::Null, it.pos.clone())),
            },
            _ => match text.split_once('=') {
                Some((k, v)) => (k.to_string(), Node::str(v, it.pos.clone())),
                None => (text, Node::new(Value::Null, it.pos.clone())),
            },
        };
        match entries.iter_mut().find(|(e, _)| *e == k) {
            Some(e) => e.1 = v,
            None => entries.push((k, v)),
        }
    }
    Node {
        value: Value::Map(entries),
        tag: n.tag,
        pos: n.pos,
    }
}

/// The container path a service volume mounts on, short or long syntax.
fn volume_target(n: &Node) -> Option<String> {
    match &n.value {
        Value::Scalar { text, .. } => {
            let parts: Vec<&str> = text.split(':').collect();
            match parts.len() {
                1 => Some(parts[0].to_string()),
                _ => Some(parts[1].to_string()),
            }
        }
        Value::Map(_) => n.get("target").and_then(|t| t.as_str()).map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    fn merged(a: &str, b: &str) -> serde_json::Value {
        let a = parse(a, "a.yaml").unwrap();
        let b = parse(b, "b.yaml").unwrap();
        merge(Some(a), b, &mut Vec::new()).unwrap().to_json()
    }

    #[test]
    fn compose_rules() {
        let a = "services:\n  web:\n    image: a\n    command: [x, y]\n    environment: [A=1, B=2]\n    ports: ['80:80']\n    volumes: ['d:/data', '/c:/conf']\n    cap_add: [NET_ADMIN]\n";
        let b = "services:\n  web:\n    image: b\n    command: [z]\n    environment:\n      B: '3'\n      C: '4'\n    ports: ['80:80', '443:443']\n    volumes: ['e:/data']\n    cap_add: [SYS_TIME]\n";
        let j = merged(a, b);
        let web = &j["services"]["web"];
        assert_eq!(web["image"], "b");
        assert_eq!(web["command"], serde_json::json!(["z"]));
        assert_eq!(
            web["environment"],
            serde_json::json!({"A": "1", "B": "3", "C": "4"})
        );
        assert_eq!(web["ports"], serde_json::json!(["80:80", "443:443"]));
        assert_eq!(web["volumes"], serde_json::json!(["e:/data", "/c:/conf"]));
        assert_eq!(web["cap_add"], serde_json::json!(["NET_ADMIN", "SYS_TIME"]));
    }

    #[test]
    fn reset_and_override_tags() {
        let a = "services:\n  web:\n    image: a\n    ports: ['80:80']\n    environment: {A: '1', B: '2'}\n    build: .\n";
        let b = "services:\n  web:\n    ports: !reset []\n    environment: !override\n      C: '3'\n    build: !reset null\n";
        let web = merged(a, b)["services"]["web"].clone();
        assert_eq!(web.get("ports"), None);
        assert_eq!(web.get("build"), None);
        assert_eq!(web["environment"], serde_json::json!({"C": "3"}));
    }

    #[test]
    fn depends_on_list_and_map_merge() {
        let a = "services:\n  web:\n    depends_on: [db]\n";
        let b = "services:\n  web:\n    depends_on:\n      cache:\n        condition: service_healthy\n";
        let web = merged(a, b)["services"]["web"].clone();
        assert_eq!(
            web["depends_on"],
            serde_json::json!({"db": {"condition": "service_started"}, "cache": {"condition": "service_healthy"}})
        );
    }
}
