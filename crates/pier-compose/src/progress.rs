//! Compose v2's live progress view on a terminal: a `[+] Running 2/3` header
//! and one line per resource (`✔ Container web-1  Started  0.3s`), redrawn
//! in place on each event. Anything else printed to stderr first calls
//! [`Live::pause`], so the next event starts a new block below it.

use std::io::Write;
use std::time::{Duration, Instant};

/// Statuses that end a resource's work (the line gets its ✔ and time).
const DONE: &[&str] = &[
    "Created",
    "Started",
    "Running",
    "Healthy",
    "Exited",
    "Recreated",
    "Stopped",
    "Removed",
    "Killed",
    "Paused",
    "Unpaused",
    "Pulled",
    "Built",
    "Pushed",
    "Skipped",
];

struct Entry {
    kind: String,
    name: String,
    status: String,
    started: Instant,
    took: Option<Duration>,
    error: bool,
}

pub struct Live {
    entries: Vec<Entry>,
    /// Lines of the block drawn last, to move back over.
    drawn: usize,
    color: bool,
    /// Spinner position.
    frame: usize,
}

impl Live {
    pub fn new(color: bool) -> Live {
        Live {
            entries: Vec::new(),
            drawn: 0,
            color,
            frame: 0,
        }
    }

    pub fn event(&mut self, kind: &str, name: &str, status: &str) {
        let now = Instant::now();
        let i = match self
            .entries
            .iter()
            .position(|e| e.kind == kind && e.name == name)
        {
            Some(i) => i,
            None => {
                self.entries.push(Entry {
                    kind: kind.to_string(),
                    name: name.to_string(),
                    status: String::new(),
                    started: now,
                    took: None,
                    error: false,
                });
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries[i];
        if e.took.is_some() {
            // A finished resource working again (Stopping after Started).
            e.started = now;
        }
        e.status = status.to_string();
        e.error = status == "Error";
        e.took = (DONE.contains(&status) || e.error).then(|| now - e.started);
        self.draw();
    }

    fn draw(&mut self) {
        let text = self.render();
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
        self.drawn = self.entries.len() + 1;
        self.frame = self.frame.wrapping_add(1);
    }

    /// Redraws a block that has work in progress, so its spinner turns and
    /// its times run (waiting for a health check can take a while).
    pub fn tick(&mut self) {
        if self.drawn > 0 && self.entries.iter().any(|e| e.took.is_none()) {
            self.draw();
        }
    }

    /// Leaves the block as drawn; the next event starts a new one.
    pub fn pause(&mut self) {
        self.entries.clear();
        self.drawn = 0;
    }

    /// The escape codes and lines that redraw the block.
    fn render(&self) -> String {
        let mut s = String::new();
        if self.drawn > 0 {
            s.push_str(&format!("\x1b[{}A", self.drawn));
        }
        let done = self.entries.iter().filter(|e| e.took.is_some()).count();
        let paint = |code: &str, t: &str| {
            if self.color {
                format!("\x1b[{code}m{t}\x1b[0m")
            } else {
                t.to_string()
            }
        };
        s.push_str(&format!(
            "\r\x1b[2K{} Running {done}/{}\n",
            paint("34", "[+]"),
            self.entries.len()
        ));
        let label = |e: &Entry| {
            if e.kind.is_empty() {
                e.name.clone()
            } else {
                format!("{} {}", e.kind, e.name)
            }
        };
        let w = self
            .entries
            .iter()
            .map(|e| label(e).chars().count())
            .max()
            .unwrap_or(0);
        let ws = self
            .entries
            .iter()
            .map(|e| e.status.chars().count())
            .max()
            .unwrap_or(0);
        for e in &self.entries {
            let icon = if e.error {
                paint("31", "✘")
            } else if e.took.is_some() {
                paint("32", "✔")
            } else {
                const SPIN: &[&str] = &["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
                paint("34", SPIN[self.frame % SPIN.len()])
            };
            let took = e.took.unwrap_or_else(|| e.started.elapsed());
            s.push_str(&format!(
                "\r\x1b[2K {icon} {:<w$}  {:<ws$}  {:.1}s\n",
                label(e),
                e.status,
                took.as_secs_f64()
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_redraws_over_itself() {
        let mut l = Live::new(false);
        l.entries.push(Entry {
            kind: "Container".into(),
            name: "p-web-1".into(),
            status: "Started".into(),
            started: Instant::now(),
            took: Some(Duration::from_millis(300)),
            error: false,
        });
        l.entries.push(Entry {
            kind: "Network".into(),
            name: "p_default".into(),
            status: "Creating".into(),
            started: Instant::now(),
            took: None,
            error: false,
        });
        l.drawn = 3;
        let r = l.render();
        assert!(r.starts_with("\x1b[3A\r\x1b[2K[+] Running 1/2\n"), "{r:?}");
        assert!(
            r.contains("\r\x1b[2K ✔ Container p-web-1  Started   0.3s\n"),
            "{r:?}"
        );
        assert!(
            r.contains(" ⠋ Network p_default  Creating  0.0s\n"),
            "{r:?}"
        );
    }
}
