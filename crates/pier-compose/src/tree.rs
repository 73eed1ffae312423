//! `include` and `extends`, applied to each file's tree before the `-f`
//! files merge (as compose-go does): an included file is loaded as its own
//! project (its directory, its env file) and its resources added (one the
//! including file also defines is merged under that file's keys); a service that `extends` another (in the same file or
//! another) is the other merged with its own keys by Compose's merge rules.
//! Relative paths from another directory are made absolute first, so they
//! keep pointing where their file meant.

use crate::error::{ComposeError, Result};
use crate::merge;
use crate::prep::{absolute, expand_home, interpolate, read_env_files};
use crate::yaml::{self, Node, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The sections whose entries `include` adds.
const RESOURCES: &[&str] = &["services", "networks", "volumes", "secrets", "configs"];

/// What loading one file needs besides its path.
pub struct Ctx<'a> {
    pub env: &'a HashMap<String, String>,
    pub os_env: &'a HashMap<String, String>,
    pub warnings: &'a mut Vec<String>,
    /// Files being included or extended, to refuse cycles.
    pub stack: Vec<PathBuf>,
}

/// Reads, interpolates and resolves `include` and `extends` in `file`.
pub fn load_file(file: &Path, c: &mut Ctx<'_>) -> Result<Node> {
    let text = std::fs::read_to_string(file).map_err(|e| ComposeError::io(file.display(), e))?;
    let mut node = yaml::parse(&text, &file.display().to_string())?;
    interpolate(&mut node, "", c.env, c.warnings)?;
    let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    apply_include(&mut node, &dir, c)?;
    apply_extends(&mut node, file, c)?;
    Ok(node)
}

fn invalid(n: &Node, path: &str, message: impl Into<String>) -> ComposeError {
    ComposeError::Invalid {
        at: format!("{}: ", n.pos),
        path: path.to_string(),
        message: message.into(),
    }
}

fn map_entries(n: &mut Node) -> Option<&mut Vec<(String, Node)>> {
    match &mut n.value {
        Value::Map(m) => Some(m),
        _ => None,
    }
}

fn remove_key(n: &mut Node, key: &str) -> Option<Node> {
    let m = map_entries(n)?;
    let i = m.iter().position(|(k, _)| k == key)?;
    Some(m.remove(i).1)
}

/// Scalars or a list of them.
fn strings(n: &Node, path: &str) -> Result<Vec<String>> {
    match &n.value {
        Value::Scalar { text, .. } => Ok(vec![text.clone()]),
        Value::Seq(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(i, path, "must be a string"))
            })
            .collect(),
        _ => Err(invalid(n, path, "must be a string or a list of strings")),
    }
}

fn set_text(n: &mut Node, text: String) {
    n.value = Value::Scalar { text, plain: false };
}

/// A relative path in a scalar node made absolute against `dir`.
fn rebase_scalar(n: &mut Node, dir: &Path, env: &HashMap<String, String>) {
    if let Some(t) = n.as_str() {
        if t.contains("://") || t.is_empty() {
            return;
        }
        let abs = absolute(dir, Path::new(&expand_home(t, env)));
        set_text(n, abs.display().to_string());
    }
}

/// The host paths of one service (build context, env files, bind sources,
/// `extends.file`) made absolute against `dir`.
fn rebase_service(svc: &mut Node, dir: &Path, env: &HashMap<String, String>) {
    if let Some(b) = svc.get_mut("build") {
        if b.as_str().is_some() {
            rebase_scalar(b, dir, env);
        } else if let Some(m) = map_entries(b) {
            match m.iter_mut().find(|(k, _)| k == "context") {
                Some((_, c)) => rebase_scalar(c, dir, env),
                None => {
                    let pos = b.pos.clone();
                    if let Some(m) = map_entries(b) {
                        m.push(("context".into(), Node::str(&dir.display().to_string(), pos)));
                    }
                }
            }
        }
    }
    if let Some(ef) = svc.get_mut("env_file") {
        match &mut ef.value {
            Value::Scalar { .. } => rebase_scalar(ef, dir, env),
            Value::Seq(items) => {
                for it in items {
                    if it.as_str().is_some() {
                        rebase_scalar(it, dir, env);
                    } else if let Some(p) = it.get_mut("path") {
                        rebase_scalar(p, dir, env);
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(Value::Seq(items)) = svc.get_mut("volumes").map(|v| &mut v.value) {
        for it in items {
            if let Some(t) = it.as_str() {
                let mut parts: Vec<String> = t.split(':').map(str::to_string).collect();
                if parts.len() >= 2 && (parts[0].starts_with('.') || parts[0].starts_with('~')) {
                    parts[0] = absolute(dir, Path::new(&expand_home(&parts[0], env)))
                        .display()
                        .to_string();
                    set_text(it, parts.join(":"));
                }
            } else if it.get("type").and_then(Node::as_str) == Some("bind")
                && let Some(s) = it.get_mut("source")
            {
                rebase_scalar(s, dir, env);
            }
        }
    }
    if let Some(f) = svc.get_mut("extends").and_then(|e| e.get_mut("file")) {
        rebase_scalar(f, dir, env);
    }
}

/// Every host path of a whole file made absolute against `dir`.
fn rebase_file(root: &mut Node, dir: &Path, env: &HashMap<String, String>) {
    if let Some(Value::Map(services)) = root.get_mut("services").map(|n| &mut n.value) {
        for (_, svc) in services.iter_mut() {
            rebase_service(svc, dir, env);
        }
    }
    for key in ["secrets", "configs"] {
        if let Some(Value::Map(defs)) = root.get_mut(key).map(|n| &mut n.value) {
            for (_, d) in defs.iter_mut() {
                if let Some(f) = d.get_mut("file") {
                    rebase_scalar(f, dir, env);
                }
            }
        }
    }
}

struct IncludeEntry {
    paths: Vec<PathBuf>,
    project_directory: Option<PathBuf>,
    env_files: Vec<PathBuf>,
}

fn include_entry(n: &Node, i: usize, dir: &Path) -> Result<IncludeEntry> {
    let path = format!("include[{i}]");
    let abs = |s: &String| absolute(dir, Path::new(s));
    if n.as_str().is_some() {
        return Ok(IncludeEntry {
            paths: strings(n, &path)?.iter().map(abs).collect(),
            project_directory: None,
            env_files: Vec::new(),
        });
    }
    let Value::Map(m) = &n.value else {
        return Err(invalid(n, &path, "must be a path or a mapping"));
    };
    let mut e = IncludeEntry {
        paths: Vec::new(),
        project_directory: None,
        env_files: Vec::new(),
    };
    for (k, v) in m {
        let kp = format!("{path}.{k}");
        match k.as_str() {
            "path" => e.paths = strings(v, &kp)?.iter().map(abs).collect(),
            "project_directory" => {
                e.project_directory = v.as_str().map(|s| abs(&s.to_string()));
            }
            "env_file" => e.env_files = strings(v, &kp)?.iter().map(abs).collect(),
            _ => return Err(invalid(v, &kp, "unknown key")),
        }
    }
    if e.paths.is_empty() {
        return Err(invalid(n, &format!("{path}.path"), "is required"));
    }
    Ok(e)
}

/// Loads each `include` entry as its own project and adds its resources.
fn apply_include(root: &mut Node, dir: &Path, c: &mut Ctx<'_>) -> Result<()> {
    let Some(inc) = remove_key(root, "include") else {
        return Ok(());
    };
    let Value::Seq(entries) = &inc.value else {
        return Err(invalid(&inc, "include", "must be a list"));
    };
    for (i, n) in entries.iter().enumerate() {
        let e = include_entry(n, i, dir)?;
        let pdir = e.project_directory.clone().unwrap_or_else(|| {
            e.paths[0]
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        });
        let env_files = if e.env_files.is_empty() {
            let dot = pdir.join(".env");
            if dot.is_file() {
                vec![dot]
            } else {
                Vec::new()
            }
        } else {
            e.env_files.clone()
        };
        // The included project's `.env`, under the variables already set.
        let mut env = read_env_files(&env_files, c.os_env)?;
        for (k, v) in c.env {
            env.insert(k.clone(), v.clone());
        }
        let mut merged: Option<Node> = None;
        for p in &e.paths {
            if c.stack.contains(p) {
                return Err(invalid(
                    n,
                    &format!("include[{i}]"),
                    format!("include cycle through {}", p.display()),
                ));
            }
            c.stack.push(p.clone());
            let mut sub = Ctx {
                env: &env,
                os_env: c.os_env,
                warnings: c.warnings,
                stack: c.stack.clone(),
            };
            let node = load_file(p, &mut sub)?;
            c.stack.pop();
            merged = merge::merge(merged, node, &mut Vec::new());
        }
        let Some(mut inc_root) = merged else { continue };
        rebase_file(&mut inc_root, &pdir, &env);
        add_resources(root, inc_root)?;
    }
    Ok(())
}

/// Adds the included file's resources; one the including file defines too
/// is merged, the including file's keys over the imported ones (as
/// compose-go's `importResources` does).
fn add_resources(root: &mut Node, inc: Node) -> Result<()> {
    let Value::Map(sections) = inc.value else {
        return Ok(());
    };
    for (section, body) in sections {
        if !RESOURCES.contains(&section.as_str()) {
            continue;
        }
        let Value::Map(items) = body.value else {
            continue;
        };
        let pos = body.pos.clone();
        let Some(top) = map_entries(root) else {
            return Ok(());
        };
        if !top.iter().any(|(k, _)| *k == section) {
            top.push((section.clone(), Node::new(Value::Map(Vec::new()), pos)));
        }
        let target = top
            .iter_mut()
            .find(|(k, _)| *k == section)
            .map(|(_, v)| v)
            .expect("inserted above");
        let Value::Map(existing) = &mut target.value else {
            return Err(invalid(target, &section, "must be a mapping"));
        };
        for (k, v) in items {
            match existing.iter_mut().find(|(ek, _)| *ek == k) {
                // The including file's definition merges over the imported one.
                Some((_, own)) => {
                    let mut path = vec![section.clone(), k.clone()];
                    if let Some(m) = merge::merge(Some(v), own.clone(), &mut path) {
                        *own = m;
                    }
                }
                None => existing.push((k, v)),
            }
        }
    }
    Ok(())
}

/// `extends: name` or `extends: {service: name, file: path}`.
fn extends_target(n: &Node, path: &str, file: &Path) -> Result<(String, PathBuf)> {
    if let Some(s) = n.as_str() {
        return Ok((s.to_string(), file.to_path_buf()));
    }
    let service = n
        .get("service")
        .and_then(Node::as_str)
        .ok_or_else(|| invalid(n, &format!("{path}.service"), "is required"))?;
    let f = match n.get("file").and_then(Node::as_str) {
        Some(f) => absolute(file.parent().unwrap_or(Path::new("/")), Path::new(f)),
        None => file.to_path_buf(),
    };
    if let Value::Map(m) = &n.value
        && let Some((k, v)) = m.iter().find(|(k, _)| k != "service" && k != "file")
    {
        return Err(invalid(v, &format!("{path}.{k}"), "unknown key"));
    }
    Ok((service.to_string(), f))
}

/// The service `name` of `services` (from `file`) with its `extends` resolved.
fn resolve(
    services: &Node,
    name: &str,
    file: &Path,
    c: &mut Ctx<'_>,
    chain: &mut Vec<(PathBuf, String)>,
) -> Result<Node> {
    let key = (file.to_path_buf(), name.to_string());
    if chain.contains(&key) {
        let names: Vec<&str> = chain.iter().map(|(_, n)| n.as_str()).collect();
        return Err(ComposeError::Project(format!(
            "circular reference with extends: {} -> {name}",
            names.join(" -> ")
        )));
    }
    let Some(svc) = services.get(name) else {
        return Err(ComposeError::Project(format!(
            "service {name:?} not found in {}",
            file.display()
        )));
    };
    let mut own = svc.clone();
    let Some(ext) = remove_key(&mut own, "extends") else {
        return Ok(own);
    };
    let (base_name, base_file) = extends_target(&ext, &format!("services.{name}.extends"), file)?;
    let missing = |services: &Node| {
        services.get(&base_name).is_none().then(|| {
            ComposeError::Project(format!(
                "cannot extend service {name:?} in {}: service {base_name:?} not found",
                base_file.display()
            ))
        })
    };
    chain.push(key);
    let base = if base_file == file {
        if let Some(e) = missing(services) {
            return Err(e);
        }
        resolve(services, &base_name, file, c, chain)?
    } else {
        let text = std::fs::read_to_string(&base_file)
            .map_err(|e| ComposeError::io(base_file.display(), e))?;
        let mut other = yaml::parse(&text, &base_file.display().to_string())?;
        interpolate(&mut other, "", c.env, c.warnings)?;
        let empty = Node::new(Value::Map(Vec::new()), other.pos.clone());
        let other_services = other.get("services").cloned().unwrap_or(empty);
        if let Some(e) = missing(&other_services) {
            return Err(e);
        }
        let mut b = resolve(&other_services, &base_name, &base_file, c, chain)?;
        let dir = base_file.parent().unwrap_or(Path::new("/"));
        rebase_service(&mut b, dir, c.env);
        b
    };
    chain.pop();
    let mut path = vec!["services".to_string(), name.to_string()];
    merge::merge(Some(base), own, &mut path).ok_or_else(|| {
        ComposeError::Project(format!("services.{name}: nothing left after extends"))
    })
}

fn apply_extends(root: &mut Node, file: &Path, c: &mut Ctx<'_>) -> Result<()> {
    let Some(services) = root.get("services").cloned() else {
        return Ok(());
    };
    let Value::Map(entries) = &services.value else {
        return Ok(());
    };
    let mut resolved = Vec::new();
    for (name, svc) in entries {
        if svc.get("extends").is_some() {
            let n = resolve(&services, name, file, c, &mut Vec::new())?;
            resolved.push((name.clone(), n));
        }
    }
    if let Some(Value::Map(out)) = root.get_mut("services").map(|n| &mut n.value) {
        for (name, n) in resolved {
            if let Some(slot) = out.iter_mut().find(|(k, _)| *k == name) {
                slot.1 = n;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::load::{load, Options};

    fn project(files: &[(&str, &str)]) -> crate::Result<crate::Project> {
        let dir = tempfile::tempdir().unwrap();
        for (f, t) in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        }
        let r = load(&Options {
            cwd: dir.path().to_path_buf(),
            ..Default::default()
        });
        drop(dir);
        r
    }

    #[test]
    fn extends_in_the_same_file_and_another() {
        let p = project(&[
            (
                "compose.yaml",
                "services:\n  base:\n    image: busybox\n    environment: [A=1, B=1]\n    command: [a]\n  web:\n    extends: base\n    environment: [B=2]\n    command: [b]\n  ext:\n    extends:\n      file: common/base.yaml\n      service: common\n",
            ),
            (
                "common/base.yaml",
                "services:\n  common:\n    image: alpine\n    env_file: ./common.env\n    volumes: ['./data:/data']\n  unused:\n    image: x\n",
            ),
            ("common/common.env", "C=3\n"),
        ])
        .unwrap();
        let web = &p.services["web"];
        assert_eq!(web.image.as_deref(), Some("busybox"));
        assert_eq!(web.environment["A"].as_deref(), Some("1"));
        assert_eq!(web.environment["B"].as_deref(), Some("2"));
        assert_eq!(web.command, Some(vec!["b".to_string()]));
        let ext = &p.services["ext"];
        assert_eq!(ext.image.as_deref(), Some("alpine"));
        assert_eq!(ext.environment["C"].as_deref(), Some("3"));
        let src = ext.volumes[0].source.clone().unwrap();
        assert!(src.ends_with("/common/data"), "{src}");
        assert!(!p.services.contains_key("unused"));
    }

    #[test]
    fn extends_errors() {
        let e = project(&[(
            "compose.yaml",
            "services:\n  a:\n    image: x\n    extends: b\n  b:\n    image: x\n    extends: a\n",
        )])
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("circular reference with extends: a -> b -> a"),
            "{e}"
        );
        let e = project(&[(
            "compose.yaml",
            "services:\n  a:\n    image: x\n    extends: nope\n",
        )])
        .unwrap_err();
        assert!(
            e.to_string().starts_with("cannot extend service \"a\" in ")
                && e.to_string()
                    .ends_with("compose.yaml: service \"nope\" not found"),
            "{e}"
        );
    }

    #[test]
    fn include_adds_resources_from_their_own_directory() {
        let p = project(&[
            (
                "compose.yaml",
                "include:\n  - sub/compose.yaml\nservices:\n  web:\n    image: busybox\n    depends_on: [db]\n",
            ),
            (
                "sub/compose.yaml",
                "services:\n  db:\n    image: ${DB_IMAGE}\n    build: ./db\nvolumes:\n  data:\n",
            ),
            ("sub/.env", "DB_IMAGE=postgres\n"),
        ])
        .unwrap();
        let db = &p.services["db"];
        assert_eq!(db.image.as_deref(), Some("postgres"));
        let ctx = db.build.as_ref().unwrap().long().context.unwrap();
        assert!(ctx.ends_with("/sub/db"), "{ctx}");
        assert!(p.volumes.contains_key("data"));
        let p = project(&[
            (
                "compose.yaml",
                "include: [sub.yaml]\nservices:\n  db:\n    image: other\n",
            ),
            (
                "sub.yaml",
                "services:\n  db:\n    image: x\n    command: [run]\n",
            ),
        ])
        .unwrap();
        let db = &p.services["db"];
        assert_eq!(db.image.as_deref(), Some("other"));
        assert_eq!(db.command, Some(vec!["run".to_string()]));
    }
}
