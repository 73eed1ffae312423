//! What every compose command is handed: the daemon connection, how to print,
//! and which services it acts on.

use crate::api::Api;
use crate::error::{ComposeError, Result};
use crate::load::Project;

/// What every command gets: the loaded project (for those that need one),
/// the daemon, and how to print.
pub struct Ctx {
    /// The global connection flags `pier` was given (`-H`, `--context`, TLS).
    pub conn: pier_client::ConnectOptions,
    pub quiet_progress: bool,
    pub color: bool,
    /// The live view, when progress goes to a terminal (`--progress tty`/`auto`).
    pub live: Option<std::sync::Mutex<crate::progress::Live>>,
}

impl Ctx {
    pub async fn api(&self) -> Result<Api> {
        Ok(Api::new(pier_client::connect(&self.conn).await?))
    }

    /// One resource's progress: the live view's line, or a plain line as
    /// Compose v2 prints them when not on a terminal.
    pub fn event(&self, kind: &str, name: &str, status: &str) {
        if self.quiet_progress {
            return;
        }
        if let Some(l) = &self.live {
            if let Ok(mut l) = l.lock() {
                l.event(kind, name, status);
            }
            return;
        }
        if kind.is_empty() {
            eprintln!(" {name} {status}");
        } else {
            eprintln!(" {kind} {name}  {status}");
        }
    }
}

impl Ctx {
    /// Call before printing anything else to stderr: the live view's block
    /// stays as drawn and the next event starts a new one below.
    pub fn pause_progress(&self) {
        if let Some(l) = &self.live
            && let Ok(mut l) = l.lock()
        {
            l.pause();
        }
    }
}

/// The services named on the command line, checked against the project
/// (a service of an inactive profile is enabled by naming it).
pub fn select(p: &mut Project, names: &[String]) -> Result<Vec<String>> {
    if names.is_empty() {
        return Ok(p.services.keys().cloned().collect());
    }
    for n in names {
        if !p.services.contains_key(n) {
            match p.disabled.shift_remove(n) {
                Some(s) => {
                    p.services.insert(n.clone(), s);
                }
                None => return Err(ComposeError::Project(format!("no such service: {n}"))),
            }
        }
    }
    Ok(names.to_vec())
}
