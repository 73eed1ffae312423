//! What every compose file goes through before it is merged: paths made
//! absolute, `~` expanded, env files read, `${VAR}` interpolated. Shared by
//! the loader (`load.rs`) and the include/extends tree (`tree.rs`).

use crate::dotenv;
use crate::error::{ComposeError, Result};
use crate::interp::{substitute, InterpError};
use crate::yaml::{Node, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub(crate) fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        normalize_path(&base.join(p))
    }
}

/// `a/./b/../c` → `a/c` without touching the filesystem.
fn normalize_path(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

pub(crate) fn read_env_files(
    files: &[PathBuf],
    os_env: &HashMap<String, String>,
) -> Result<HashMap<String, String>> {
    let mut vars: HashMap<String, String> = HashMap::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| ComposeError::io(f.display(), e))?;
        let lookup = |n: &str| vars.get(n).cloned().or_else(|| os_env.get(n).cloned());
        let parsed = dotenv::parse(&text, &f.display().to_string(), &lookup)
            .map_err(ComposeError::Project)?;
        for (k, v) in parsed {
            if let Some(v) = v {
                vars.insert(k, v);
            }
        }
    }
    // The process environment wins over `.env`.
    for (k, v) in os_env {
        vars.insert(k.clone(), v.clone());
    }
    Ok(vars)
}

/// Interpolates every scalar of the tree in place.
pub(crate) fn interpolate(
    node: &mut Node,
    path: &str,
    env: &HashMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    match &mut node.value {
        Value::Scalar { text, plain } => {
            if text.contains('$') {
                let lookup = |n: &str| env.get(n).cloned();
                let mut unset = Vec::new();
                let v = substitute(text, &lookup, &mut unset).map_err(|e| {
                    let msg = match e {
                        InterpError::Invalid(t) => format!("invalid interpolation format for {path}: {t:?}; you may need to escape any $ with another $"),
                        e => format!("error while interpolating {path}: {e}"),
                    };
                    ComposeError::Interpolation {
                        at: format!("{}: ", node.pos),
                        message: msg,
                    }
                })?;
                for u in unset {
                    let w = format!("The {u:?} variable is not set. Defaulting to a blank string.");
                    if !warnings.contains(&w) {
                        warnings.push(w);
                    }
                }
                *text = v;
                // A substituted value is a string; typed reads are lenient.
                *plain = false;
            }
        }
        Value::Seq(items) => {
            for (i, n) in items.iter_mut().enumerate() {
                interpolate(n, &format!("{path}[{i}]"), env, warnings)?;
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                interpolate(v, &p, env, warnings)?;
            }
        }
        Value::Null => {}
    }
    Ok(())
}

pub(crate) fn expand_home(p: &str, env: &HashMap<String, String>) -> String {
    match p.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            format!("{}{rest}", env.get("HOME").cloned().unwrap_or_default())
        }
        _ => p.to_string(),
    }
}
