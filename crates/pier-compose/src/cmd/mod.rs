//! The compose commands, one file per group.

pub mod config;
pub mod down;
pub mod exec;
pub mod images;
pub mod logs;
pub mod ps;
pub mod simple;
pub mod up;

use crate::error::{ComposeError, Result};
use crate::load::Project;

/// `names` and, transitively, what they depend on.
pub fn with_deps(p: &Project, names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut todo: Vec<String> = names.to_vec();
    while let Some(n) = todo.pop() {
        if out.contains(&n) {
            continue;
        }
        if let Some(s) = p.services.get(&n) {
            todo.extend(s.depends_on.keys().cloned());
        }
        out.push(n);
    }
    out
}

/// `names` ordered so every service comes after those it depends on
/// (file order otherwise). A cycle is an error, as in Compose.
pub fn dependency_order(p: &Project, names: &[String]) -> Result<Vec<String>> {
    let mut order: Vec<String> = Vec::new();
    fn visit(
        p: &Project,
        n: &str,
        names: &[String],
        stack: &mut Vec<String>,
        order: &mut Vec<String>,
    ) -> Result<()> {
        if order.iter().any(|o| o == n) || !names.iter().any(|x| x == n) {
            return Ok(());
        }
        if stack.iter().any(|s| s == n) {
            return Err(ComposeError::Project(format!(
                "dependency cycle detected: {} -> {n}",
                stack.join(" -> ")
            )));
        }
        stack.push(n.to_string());
        if let Some(s) = p.services.get(n) {
            for d in s.depends_on.keys() {
                visit(p, d, names, stack, order)?;
            }
        }
        stack.pop();
        order.push(n.to_string());
        Ok(())
    }
    let mut stack = Vec::new();
    for n in p.services.keys() {
        visit(p, n, names, &mut stack, &mut order)?;
    }
    Ok(order)
}

/// `proj-web-1` → `web-1`, the name Compose shows in log prefixes.
pub fn short_name(project: &str, name: &str) -> String {
    name.strip_prefix(&format!("{project}-"))
        .unwrap_or(name)
        .to_string()
}
