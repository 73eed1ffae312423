//! Docker's json-file log: one JSON object per line per chunk of output.

use std::fs::File;
use std::io::Write;
use std::time::SystemTime;

use pier_runtime::proto::{rfc3339_nano, LogLine};

/// Docker emits a partial line once this much is buffered without a newline.
const MAX_PARTIAL: usize = 16 * 1024;

pub struct LogWriter {
    file: Option<File>,
    /// Pending partial lines for stdout and stderr.
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn new(file: Option<File>) -> Self {
        LogWriter {
            file,
            partial: [Vec::new(), Vec::new()],
        }
    }

    fn emit(&mut self, stream: usize, bytes: &[u8]) {
        let Some(f) = self.file.as_mut() else { return };
        let line = LogLine {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream: if stream == 0 { "stdout" } else { "stderr" }.to_string(),
            time: rfc3339_nano(SystemTime::now()),
        };
        if let Ok(mut s) = serde_json::to_vec(&line) {
            s.push(b'\n');
            // A full disk must not stop the container; the line is lost like in Docker.
            let _ = f.write_all(&s);
        }
    }

    /// Adds output of `stream` (0 = stdout, 1 = stderr), emitting complete lines.
    pub fn write(&mut self, stream: usize, mut data: &[u8]) {
        if self.file.is_none() {
            return;
        }
        while let Some(i) = data.iter().position(|b| *b == b'\n') {
            let (line, rest) = data.split_at(i + 1);
            if self.partial[stream].is_empty() {
                self.emit(stream, line);
            } else {
                let mut buf = std::mem::take(&mut self.partial[stream]);
                buf.extend_from_slice(line);
                self.emit(stream, &buf);
            }
            data = rest;
        }
        self.partial[stream].extend_from_slice(data);
        if self.partial[stream].len() >= MAX_PARTIAL {
            let buf = std::mem::take(&mut self.partial[stream]);
            self.emit(stream, &buf);
        }
        if self.partial[stream].is_empty() {
            // Give back the memory of long lines.
            self.partial[stream] = Vec::new();
        }
    }

    /// Emits what is left of a stream at its end.
    pub fn flush(&mut self, stream: usize) {
        if !self.partial[stream].is_empty() {
            let buf = std::mem::take(&mut self.partial[stream]);
            self.emit(stream, &buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_like_docker() {
        let dir = std::env::temp_dir().join(format!("pier-logw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("log.json");
        let mut w = LogWriter::new(Some(File::create(&p).unwrap()));
        w.write(0, b"hi\nthere");
        w.write(0, b" you\n");
        w.write(1, b"err");
        w.flush(1);
        let s = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<LogLine> = s
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].log, "hi\n");
        assert_eq!(lines[1].log, "there you\n");
        assert_eq!(lines[2].log, "err");
        assert_eq!(lines[2].stream, "stderr");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
