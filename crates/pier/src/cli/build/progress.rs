//! How `pier build` shows the daemon's classic build stream: as it comes
//! (`plain`), or as a live list of steps with timings where only the running
//! step's last output lines show (`tty`).

use super::super::println;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, Instant};

/// Output lines of the running step shown under it.
const LIVE_LINES: usize = 6;
/// Output lines kept per step to show when it fails.
const KEPT_LINES: usize = 40;

/// What a line of the classic stream is.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// `Step 2/5 : RUN make` -> (2, 5, "RUN make").
    Step(usize, usize, &'a str),
    UsingCache,
    /// Builder chatter: ` ---> Running in …`, ` ---> 0123abcd`, removals.
    Meta,
    Built(&'a str),
    Tagged(&'a str),
    Output(&'a str),
}

pub fn classify(line: &str) -> Line<'_> {
    if let Some(rest) = line.strip_prefix("Step ")
        && let Some((nums, text)) = rest.split_once(" : ")
        && let Some((n, m)) = nums.split_once('/')
        && let (Ok(n), Ok(m)) = (n.parse(), m.parse())
    {
        return Line::Step(n, m, text);
    }
    if let Some(rest) = line.strip_prefix(" ---> ") {
        let rest = rest.trim_end();
        if rest == "Using cache" {
            return Line::UsingCache;
        }
        // An empty ID is FROM scratch.
        if rest.is_empty()
            || rest.starts_with("Running in ")
            || rest.starts_with("Removed intermediate container")
            || (!rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Line::Meta;
        }
        return Line::Output(line);
    }
    if line.starts_with("Removing intermediate container ") {
        return Line::Meta;
    }
    if let Some(id) = line.strip_prefix("Successfully built ") {
        return Line::Built(id.trim());
    }
    if let Some(t) = line.strip_prefix("Successfully tagged ") {
        return Line::Tagged(t.trim());
    }
    Line::Output(line)
}

/// BuildKit's duration style: `0.3s`, `12.0s`.
pub fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

pub enum View {
    /// The stream as it comes, on stdout (docker's classic builder output).
    Plain,
    /// `-q`: nothing until the end.
    Quiet,
    Tty(Box<TtyView>),
}

impl View {
    /// Called when the daemon's first answer arrives: the upload is done.
    pub fn context_sent(&mut self, bytes: u64) {
        match self {
            View::Plain => println(&format!(
                "Sending build context to Pier daemon  {}",
                crate::format::units::human_size(bytes as f64)
            )),
            View::Quiet => {}
            View::Tty(t) => t.context_sent(bytes),
        }
    }

    /// The daemon read the context directory itself: nothing was sent.
    pub fn context_in_place(&mut self, dir: &str) {
        match self {
            View::Plain => println(&format!(
                "Reading build context in place (nothing to send): {dir}"
            )),
            View::Quiet => {}
            View::Tty(t) => t.context_done("read in place"),
        }
    }

    pub fn stream(&mut self, s: &str) {
        match self {
            View::Plain => super::super::print(s),
            View::Quiet => {}
            View::Tty(t) => t.stream(s),
        }
    }

    /// A `status` message (pull progress while resolving `FROM`).
    pub fn status(&mut self, m: &Value) {
        let Some(status) = m["status"].as_str().filter(|s| !s.is_empty()) else {
            return;
        };
        if m.get("progressDetail")
            .is_some_and(|p| p.get("total").is_some())
        {
            return;
        }
        let line = match m["id"].as_str() {
            Some(id) if !id.is_empty() => format!("{id}: {status}"),
            _ => status.to_string(),
        };
        match self {
            View::Plain => println(&line),
            View::Quiet => {}
            View::Tty(t) => {
                let _ = t.mp.println(line);
            }
        }
    }

    pub fn tick(&mut self, uploaded: u64) {
        if let View::Tty(t) = self {
            t.tick(uploaded);
        }
    }

    pub fn finish_ok(&mut self, id: &str) {
        if let View::Tty(t) = self {
            t.finish_ok(id);
        }
    }

    /// Ends the display of a failed build; the caller prints the error.
    pub fn finish_err(&mut self) {
        if let View::Tty(t) = self {
            t.finish_err();
        }
    }
}

struct Step {
    title: String,
    bar: ProgressBar,
    start: Instant,
    took: Option<Duration>,
    cached: bool,
    tail: VecDeque<String>,
}

pub struct TtyView {
    mp: MultiProgress,
    header: ProgressBar,
    start: Instant,
    context: Option<(ProgressBar, Instant)>,
    steps: Vec<Step>,
    live: Vec<ProgressBar>,
    partial: String,
    total: usize,
    tags: Vec<String>,
    step_style: ProgressStyle,
    live_style: ProgressStyle,
}

fn style(t: &str) -> ProgressStyle {
    ProgressStyle::with_template(t).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl TtyView {
    pub fn new() -> TtyView {
        let mp = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let step_style = style("{wide_msg} {prefix:>6}");
        let header = mp.add(ProgressBar::new_spinner());
        header.set_style(style("{msg}"));
        let context = mp.add(ProgressBar::new_spinner());
        context.set_style(step_style.clone());
        let mut v = TtyView {
            mp,
            header,
            start: Instant::now(),
            context: Some((context, Instant::now())),
            steps: Vec::new(),
            live: Vec::new(),
            partial: String::new(),
            total: 0,
            tags: Vec::new(),
            step_style,
            live_style: style("{wide_msg:.dim}"),
        };
        v.tick(0);
        v
    }

    fn done(&self) -> usize {
        self.steps.iter().filter(|s| s.took.is_some()).count()
    }

    fn header_text(&self, end: &str) -> String {
        let total = self.total.max(self.steps.len());
        format!(
            "[+] Building {} ({}/{}){end}",
            seconds(self.start.elapsed()),
            self.done(),
            total
        )
    }

    fn tick(&mut self, uploaded: u64) {
        self.header.set_message(self.header_text(""));
        if let Some((bar, start)) = &self.context {
            bar.set_message(format!(
                " => [internal] transferring context: {}",
                crate::format::units::human_size(uploaded as f64)
            ));
            bar.set_prefix(seconds(start.elapsed()));
        }
        if let Some(s) = self.steps.last()
            && s.took.is_none()
        {
            s.bar.set_prefix(seconds(s.start.elapsed()));
        }
    }

    fn context_sent(&mut self, bytes: u64) {
        self.context_done(&crate::format::units::human_size(bytes as f64));
    }

    fn context_done(&mut self, what: &str) {
        if let Some((bar, start)) = self.context.take() {
            bar.set_message(format!(" => [internal] load build context: {what}"));
            bar.set_prefix(seconds(start.elapsed()));
            bar.finish();
        }
    }

    fn stream(&mut self, s: &str) {
        self.partial.push_str(s);
        while let Some(pos) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=pos).collect();
            self.line(line.trim_end_matches(['\n', '\r']));
        }
    }

    fn line(&mut self, raw: &str) {
        // Progress redraws (`\r`) keep only what is visible last.
        let line = raw.rsplit('\r').find(|s| !s.is_empty()).unwrap_or("");
        match classify(line) {
            Line::Step(n, m, text) => {
                self.end_step();
                self.total = m;
                let bar = self.mp.add(ProgressBar::new_spinner());
                bar.set_style(self.step_style.clone());
                let title = format!("[{n}/{m}] {text}");
                bar.set_message(format!(" => {title}"));
                bar.set_prefix(seconds(Duration::ZERO));
                self.steps.push(Step {
                    title,
                    bar,
                    start: Instant::now(),
                    took: None,
                    cached: false,
                    tail: VecDeque::new(),
                });
            }
            Line::UsingCache => {
                if let Some(s) = self.steps.last_mut() {
                    s.cached = true;
                    s.bar.set_message(format!(" => CACHED {}", s.title));
                }
            }
            Line::Meta => {}
            Line::Built(_) => self.end_step(),
            Line::Tagged(t) => self.tags.push(t.to_string()),
            Line::Output(text) => match self.steps.last_mut() {
                Some(s) if s.took.is_none() => {
                    if s.tail.len() == KEPT_LINES {
                        s.tail.pop_front();
                    }
                    s.tail.push_back(text.to_string());
                    let want = s.tail.len().min(LIVE_LINES);
                    while self.live.len() < want {
                        let b = self.mp.add(ProgressBar::new_spinner());
                        b.set_style(self.live_style.clone());
                        self.live.push(b);
                    }
                    let skip = s.tail.len() - want;
                    for (b, l) in self.live.iter().zip(s.tail.iter().skip(skip)) {
                        b.set_message(format!("    {l}"));
                    }
                }
                _ => {
                    if !text.trim().is_empty() {
                        let _ = self.mp.println(text);
                    }
                }
            },
        }
    }

    /// Marks the running step done and folds its output away.
    fn end_step(&mut self) {
        for b in self.live.drain(..) {
            b.finish_and_clear();
            self.mp.remove(&b);
        }
        if let Some(s) = self.steps.last_mut()
            && s.took.is_none()
        {
            let took = s.start.elapsed();
            s.took = Some(took);
            s.bar.set_prefix(seconds(took));
            s.bar.finish();
        }
    }

    fn add_done(&self, text: String) {
        let b = self.mp.add(ProgressBar::new_spinner());
        b.set_style(self.step_style.clone());
        b.set_message(text);
        b.set_prefix(seconds(Duration::ZERO));
        b.finish();
    }

    fn finish_ok(&mut self, id: &str) {
        self.context_sent(0);
        self.end_step();
        self.add_done(format!(" => writing image {id}"));
        for t in std::mem::take(&mut self.tags) {
            self.add_done(format!(" => naming to {t}"));
        }
        self.header
            .finish_with_message(self.header_text(" FINISHED"));
        // indicatif leaves the cursor at the end of its last line.
        eprintln!();
    }

    fn finish_err(&mut self) {
        self.context_sent(0);
        for b in self.live.drain(..) {
            b.finish_and_clear();
            self.mp.remove(&b);
        }
        let mut failed = None;
        if let Some(s) = self.steps.last_mut()
            && s.took.is_none()
        {
            let took = s.start.elapsed();
            s.took = Some(took);
            s.bar.set_prefix(seconds(took));
            s.bar.finish_with_message(format!(" => ERROR {}", s.title));
            failed = Some((s.title.clone(), s.tail.clone()));
        }
        self.header.finish_with_message(self.header_text(" ERROR"));
        // Every bar is finished, so what is drawn stays; the failed step's
        // output goes below it, then the caller prints the error.
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err);
        if let Some((title, tail)) = failed {
            let _ = writeln!(err, "------\n > {title}:");
            for l in tail {
                let _ = writeln!(err, "{l}");
            }
            let _ = writeln!(err, "------");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_lines_are_classified() {
        assert_eq!(
            classify("Step 2/5 : RUN echo a : b"),
            Line::Step(2, 5, "RUN echo a : b")
        );
        assert_eq!(classify(" ---> Using cache"), Line::UsingCache);
        assert_eq!(classify(" ---> Running in 0123456789ab"), Line::Meta);
        assert_eq!(classify(" ---> 0123456789ab"), Line::Meta);
        assert_eq!(
            classify("Removing intermediate container 0123456789ab"),
            Line::Meta
        );
        assert_eq!(
            classify(" ---> Removed intermediate container 0123"),
            Line::Meta
        );
        assert_eq!(
            classify("Successfully built 0123456789ab"),
            Line::Built("0123456789ab")
        );
        assert_eq!(classify("Successfully tagged a:b"), Line::Tagged("a:b"));
        assert_eq!(classify("hello"), Line::Output("hello"));
        assert_eq!(classify("Step x/y : z"), Line::Output("Step x/y : z"));
        assert_eq!(
            classify(" ---> [Warning] x"),
            Line::Output(" ---> [Warning] x")
        );
    }

    #[test]
    fn durations_like_buildkit() {
        assert_eq!(seconds(Duration::from_millis(340)), "0.3s");
        assert_eq!(seconds(Duration::from_secs(12)), "12.0s");
    }

    #[test]
    fn tty_view_tracks_steps_and_tails() {
        // Drawing goes to a hidden target in tests; only the bookkeeping is checked.
        let mut v = TtyView::new();
        v.mp.set_draw_target(ProgressDrawTarget::hidden());
        v.stream("Step 1/3 : FROM busybox\n ---> abc\nStep 2/3 : RUN x\n ---> Using cache\n");
        v.stream("Step 3/3 : RUN y\n ---> Running in 01\n");
        for i in 0..50 {
            v.stream(&format!("out {i}\n"));
        }
        v.stream("progress 1\rprogress 2");
        v.stream("\n");
        assert_eq!(v.live.len(), LIVE_LINES);
        assert_eq!(v.steps.len(), 3);
        assert!(v.steps[1].cached && !v.steps[0].cached);
        assert_eq!(v.steps[2].tail.len(), KEPT_LINES);
        assert_eq!(v.steps[2].tail.back().unwrap(), "progress 2");
        v.stream("Successfully built 0123\nSuccessfully tagged t:latest\n");
        assert!(v.live.is_empty());
        assert_eq!(v.done(), 3);
        assert_eq!(v.tags, vec!["t:latest"]);
        v.finish_ok("sha256:0123");
    }
}
