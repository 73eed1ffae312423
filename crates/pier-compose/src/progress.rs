//! Compose v2's live progress view on a terminal, drawn with indicatif (the
//! workspace's progress crate): a `[+] Running 2/3` header and one line per
//! resource (`✔ Container web-1  Started  0.3s`), a spinner and a running
//! time while it works. Anything else printed to stderr first calls
//! [`Live::pause`]: the block stays as drawn and the next event starts a new
//! one below it.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::Write;
use std::time::Duration;

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

const SPIN: &[&str] = &["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// stderr as indicatif's terminal when it is not one (`--progress tty` or
/// `--ansi always` into a pipe): Compose draws the view there too.
#[derive(Debug)]
struct Stderr;

impl Stderr {
    fn put(&self, s: &str) -> std::io::Result<()> {
        std::io::stderr().lock().write_all(s.as_bytes())
    }
}

impl indicatif::TermLike for Stderr {
    fn width(&self) -> u16 {
        120
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.put(&format!("\x1b[{n}A"))
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.put(&format!("\x1b[{n}B"))
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.put(&format!("\x1b[{n}C"))
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.put(&format!("\x1b[{n}D"))
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.put(&format!("{s}\n"))
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.put(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.put("\r\x1b[2K")
    }
    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().lock().flush()
    }
}

fn paint(color: bool, code: &str, t: &str) -> String {
    if color {
        format!("\x1b[{code}m{t}\x1b[0m")
    } else {
        t.to_string()
    }
}

/// The line style: spinner, text, running time with one decimal; `end` is
/// what the spinner becomes when the line is finished.
fn style(color: bool, end: &str) -> ProgressStyle {
    let mut ticks: Vec<String> = SPIN.iter().map(|s| paint(color, "34", s)).collect();
    ticks.push(end.to_string());
    let ticks: Vec<&str> = ticks.iter().map(String::as_str).collect();
    ProgressStyle::with_template(" {spinner} {msg}  {secs}")
        .expect("a fixed template")
        .with_key("secs", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.1}s", s.elapsed().as_secs_f64());
        })
        .tick_strings(&ticks)
}

fn stderr_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

fn target() -> ProgressDrawTarget {
    if stderr_is_terminal() {
        ProgressDrawTarget::stderr_with_hz(10)
    } else {
        ProgressDrawTarget::term_like_with_hz(Box::new(Stderr), 10)
    }
}

struct Entry {
    kind: String,
    name: String,
    bar: ProgressBar,
    done: bool,
}

/// One block: its header and its lines.
struct Block {
    mp: MultiProgress,
    header: ProgressBar,
    entries: Vec<Entry>,
}

pub struct Live {
    block: Option<Block>,
    color: bool,
}

impl Live {
    pub fn new(color: bool) -> Live {
        Live { block: None, color }
    }

    fn paint(&self, code: &str, t: &str) -> String {
        paint(self.color, code, t)
    }

    fn header_text(&self, b: &Block) -> String {
        let done = b.entries.iter().filter(|e| e.done).count();
        format!(
            "{} Running {done}/{}",
            self.paint("34", "[+]"),
            b.entries.len()
        )
    }

    pub fn event(&mut self, kind: &str, name: &str, status: &str) {
        let color = self.color;
        let block = self.block.get_or_insert_with(|| {
            let mp = MultiProgress::with_draw_target(target());
            let header = mp.add(ProgressBar::new_spinner());
            header.set_style(ProgressStyle::with_template("{msg}").expect("a fixed template"));
            header.set_message(format!("{} Running 0/0", paint(color, "34", "[+]")));
            Block {
                mp,
                header,
                entries: Vec::new(),
            }
        });
        let error = status == "Error";
        let done = error || DONE.contains(&status);
        let end = if error {
            paint(color, "31", "✘")
        } else {
            paint(color, "32", "✔")
        };
        let i = block
            .entries
            .iter()
            .position(|e| e.kind == kind && e.name == name);
        let i = match i {
            // Working again after it was done (Stopping after Started): a new
            // line in its place, with its own time.
            Some(i) if block.entries[i].done => {
                let old = block.entries[i].bar.clone();
                let bar = block.mp.insert_after(&old, ProgressBar::new_spinner());
                block.mp.remove(&old);
                block.entries[i].bar = bar;
                block.entries[i].done = false;
                i
            }
            Some(i) => i,
            None => {
                let bar = block.mp.add(ProgressBar::new_spinner());
                block.entries.push(Entry {
                    kind: kind.to_string(),
                    name: name.to_string(),
                    bar,
                    done: false,
                });
                block.entries.len() - 1
            }
        };
        let label = |e: &Entry| {
            if e.kind.is_empty() {
                e.name.clone()
            } else {
                format!("{} {}", e.kind, e.name)
            }
        };
        let w = block
            .entries
            .iter()
            .map(|e| label(e).chars().count())
            .max()
            .unwrap_or(0);
        let style = style(color, &end);
        let e = &mut block.entries[i];
        e.bar.set_style(style);
        let msg = format!("{:<w$}  {status}", label(e));
        if done {
            e.done = true;
            e.bar.finish_with_message(msg);
        } else {
            e.bar.set_message(msg);
            e.bar.enable_steady_tick(Duration::from_millis(100));
        }
        let text = self.header_text(self.block.as_ref().expect("made above"));
        let b = self.block.as_ref().expect("made above");
        b.header.set_message(text);
        b.header.tick();
    }

    /// Leaves the block as drawn; the next event starts a new one.
    pub fn pause(&mut self) {
        let Some(b) = self.block.take() else {
            return;
        };
        let text = self.header_text(&b);
        b.header.finish_with_message(text);
        for e in &b.entries {
            if !e.done {
                e.bar.abandon();
            }
        }
        // indicatif leaves the cursor at the end of the last line, counting on
        // a terminal's wrap; into a pipe the next line needs its newline.
        if !stderr_is_terminal() {
            let _ = std::io::stderr().lock().write_all(b"\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_header_follow_the_events() {
        let mut l = Live::new(false);
        l.event("Network", "p_default", "Creating");
        l.event("Network", "p_default", "Created");
        l.event("Container", "p-web-1", "Starting");
        let b = l.block.as_ref().unwrap();
        assert_eq!(l.header_text(b), "[+] Running 1/2");
        assert!(b.entries[0].done && !b.entries[1].done);
        assert_eq!(b.entries[1].bar.message(), "Container p-web-1  Starting");
        assert_eq!(b.entries[0].bar.message(), "Network p_default  Created");
        l.event("Container", "p-web-1", "Started");
        l.event("Container", "p-web-1", "Stopping");
        let b = l.block.as_ref().unwrap();
        assert_eq!(b.entries.len(), 2);
        assert_eq!(l.header_text(b), "[+] Running 1/2");
        l.pause();
        assert!(l.block.is_none());
    }
}
