//! Build output: Docker's classic JSON message stream (what the legacy
//! `docker build` client reads from `POST /build`) or plain text.

use std::io::Write;

/// One thing to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Text for the terminal (`Step 1/5 : FROM busybox\n`, RUN output...).
    Stream(String),
    /// The built image's ID (`{"aux":{"ID":"sha256:..."}}`).
    ImageId(String),
    /// The build failed; the last event of a failed build.
    Error(String),
    /// A RUN step exited non-zero: an error that also carries the code
    /// (`errorDetail.code`, which docker-py checks).
    RunFailed { message: String, code: i32 },
}

/// Where build events go.
pub trait Progress {
    fn event(&mut self, event: Event);

    fn stream(&mut self, text: &str) {
        self.event(Event::Stream(text.to_string()));
    }

    /// Whether the client went away; the builder stops before the next step.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Collects events (tests, and callers that format them later).
impl Progress for Vec<Event> {
    fn event(&mut self, event: Event) {
        self.push(event);
    }
}

/// The JSON object of one event, as Docker writes it.
pub fn event_json(event: &Event) -> serde_json::Value {
    match event {
        Event::Stream(s) => serde_json::json!({ "stream": s }),
        Event::ImageId(id) => serde_json::json!({ "aux": { "ID": id } }),
        Event::Error(msg) => serde_json::json!({
            "errorDetail": { "message": msg },
            "error": msg,
        }),
        Event::RunFailed { message, code } => serde_json::json!({
            "errorDetail": { "code": code, "message": message },
            "error": message,
        }),
    }
}

/// Writes one JSON object per line (`\r\n` separated like Docker). Write
/// errors (a client that went away) are remembered, not raised: the build
/// still finishes and caches its steps.
pub struct JsonProgress<W: Write> {
    out: W,
    pub failed: bool,
}

impl<W: Write> JsonProgress<W> {
    pub fn new(out: W) -> Self {
        JsonProgress { out, failed: false }
    }
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Progress for JsonProgress<W> {
    fn cancelled(&self) -> bool {
        self.failed
    }

    fn event(&mut self, event: Event) {
        if self.failed {
            return;
        }
        let mut line = event_json(&event).to_string();
        line.push_str("\r\n");
        if self
            .out
            .write_all(line.as_bytes())
            .and_then(|_| self.out.flush())
            .is_err()
        {
            self.failed = true;
        }
    }
}

/// Plain text (`--progress=plain`): streams as they are, the image ID as
/// `writing image sha256:...`, errors as `ERROR: ...`.
pub struct PlainProgress<W: Write> {
    out: W,
}

impl<W: Write> PlainProgress<W> {
    pub fn new(out: W) -> Self {
        PlainProgress { out }
    }
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Progress for PlainProgress<W> {
    fn event(&mut self, event: Event) {
        let text = match event {
            Event::Stream(s) => s,
            Event::ImageId(id) => format!("writing image {id}\n"),
            Event::Error(msg) | Event::RunFailed { message: msg, .. } => {
                format!("ERROR: {msg}\n")
            }
        };
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_match_docker() {
        let mut p = JsonProgress::new(Vec::new());
        p.stream("Step 1/2 : FROM busybox\n");
        p.event(Event::ImageId("sha256:ab".into()));
        p.event(Event::Error("boom".into()));
        let out = String::from_utf8(p.into_inner()).unwrap();
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(lines[0], r#"{"stream":"Step 1/2 : FROM busybox\n"}"#);
        assert_eq!(lines[1], r#"{"aux":{"ID":"sha256:ab"}}"#);
        let err: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(err["error"], "boom");
        assert_eq!(err["errorDetail"]["message"], "boom");
    }

    #[test]
    fn plain_text() {
        let mut p = PlainProgress::new(Vec::new());
        p.stream("hi\n");
        p.event(Event::Error("bad".into()));
        assert_eq!(p.into_inner(), b"hi\nERROR: bad\n");
    }
}
