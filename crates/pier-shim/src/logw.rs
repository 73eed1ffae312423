//! Docker's json-file log: one JSON object per line per chunk of output,
//! rotated by size like Docker's json-file and local drivers.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use pier_runtime::proto::{rfc3339_nano, LogLine, LogRotation};

/// Docker emits a partial line once this much is buffered without a newline.
const MAX_PARTIAL: usize = 16 * 1024;

/// Log files hold container output, often secrets: owner and group only.
const LOG_MODE: u32 = 0o640;

pub struct LogWriter {
    file: Option<File>,
    path: PathBuf,
    /// Bytes in the live file, to know when it is due for rotation.
    size: u64,
    rot: LogRotation,
    /// Pending partial lines for stdout and stderr.
    partial: [Vec<u8>; 2],
}

/// Opens (creating) the live log file for appending.
pub fn open_log(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(LOG_MODE)
        .open(path)
}

/// `<path>.<n>` plus `.gz` for compressed files.
fn rotated(path: &Path, n: u32, gz: bool) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}{}", if gz { ".gz" } else { "" }));
    PathBuf::from(s)
}

impl LogWriter {
    /// A writer with no file: output is dropped (the `none` driver).
    pub fn none() -> Self {
        LogWriter {
            file: None,
            path: PathBuf::new(),
            size: 0,
            rot: LogRotation::default(),
            partial: [Vec::new(), Vec::new()],
        }
    }

    pub fn new(file: File, path: PathBuf, rot: LogRotation) -> Self {
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        LogWriter {
            file: Some(file),
            path,
            size,
            rot,
            partial: [Vec::new(), Vec::new()],
        }
    }

    /// Moves the live file aside as Docker does: `.1` -> `.2` ... and the
    /// live file to `.1` (gzip'd when asked), then starts a new live file.
    /// The shim is single-threaded (its runtime calls fork), so compression
    /// runs here; a container writing meanwhile waits on its pipe.
    fn rotate(&mut self) {
        if self.rot.max_file < 2 {
            // Nothing is kept: start the file over (appends land at the new end).
            if let Some(f) = &self.file
                && f.set_len(0).is_ok()
            {
                self.size = 0;
            }
            return;
        }
        let gz = self.rot.compress;
        for i in (2..self.rot.max_file).rev() {
            let _ = std::fs::rename(rotated(&self.path, i - 1, gz), rotated(&self.path, i, gz));
        }
        let first = rotated(&self.path, 1, false);
        if let Err(e) = std::fs::rename(&self.path, &first) {
            eprintln!("log rotation: rename {}: {e}", self.path.display());
            return;
        }
        match open_log(&self.path) {
            Ok(f) => self.file = Some(f),
            Err(e) => {
                eprintln!("log rotation: open {}: {e}", self.path.display());
                self.file = None;
            }
        }
        self.size = 0;
        if gz && let Err(e) = compress(&first, &rotated(&self.path, 1, true)) {
            eprintln!("log rotation: compress {}: {e}", first.display());
        }
    }

    fn emit(&mut self, stream: usize, bytes: &[u8]) {
        if self.file.is_none() {
            return;
        }
        let name = if stream == 0 { "stdout" } else { "stderr" };
        let s = if self.rot.cri_format {
            cri_line(name, bytes)
        } else {
            let line = LogLine {
                log: String::from_utf8_lossy(bytes).into_owned(),
                stream: name.to_string(),
                time: rfc3339_nano(SystemTime::now()),
            };
            let Ok(mut s) = serde_json::to_vec(&line) else {
                return;
            };
            s.push(b'\n');
            s
        };
        // Like Docker: a file that has reached its size rotates before the next
        // line, so it exceeds max-size by less than one line.
        if self.rot.max_size > 0 && self.size >= self.rot.max_size {
            self.rotate();
        }
        let Some(f) = self.file.as_mut() else { return };
        // A full disk must not stop the container; the line is lost like in Docker.
        if f.write_all(&s).is_ok() {
            self.size += s.len() as u64;
        }
    }

    /// Opens the log at its path again (a new file when the old one was
    /// renamed away); a writer without a file stays without one.
    pub fn reopen(&mut self) -> std::io::Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let f = open_log(&self.path)?;
        self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
        self.file = Some(f);
        Ok(())
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

/// One line of the kubelet's CRI log format: `F` ends a line, `P` is a part
/// of a longer one (the text is kept as bytes, without its newline).
fn cri_line(stream: &str, bytes: &[u8]) -> Vec<u8> {
    let (text, tag) = match bytes.strip_suffix(b"\n") {
        Some(t) => (t, "F"),
        None => (bytes, "P"),
    };
    let mut s = format!("{} {stream} {tag} ", rfc3339_nano(SystemTime::now())).into_bytes();
    s.extend_from_slice(text);
    s.push(b'\n');
    s
}

/// gzips `from` into `to` (through a temporary name, so a reader never sees
/// half a `.gz`), then removes `from`.
fn compress(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut tmp = to.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut src = File::open(from)?;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(LOG_MODE)
        .open(&tmp)?;
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let done = std::io::copy(&mut src, &mut enc).and_then(|_| enc.finish());
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, to)?;
    std::fs::remove_file(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(p: &Path) -> Vec<LogLine> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn cri_lines_mark_partial_and_full() {
        let full = String::from_utf8(cri_line("stdout", b"hello\n")).unwrap();
        let parts: Vec<&str> = full.splitn(4, ' ').collect();
        assert!(parts[0].ends_with('Z'), "{full}");
        assert_eq!(&parts[1..], ["stdout", "F", "hello\n"]);
        let part = String::from_utf8(cri_line("stderr", b"abc")).unwrap();
        assert!(part.ends_with(" stderr P abc\n"), "{part}");
    }

    #[test]
    fn splits_lines_like_docker() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.json");
        let mut w = LogWriter::new(open_log(&p).unwrap(), p.clone(), LogRotation::default());
        w.write(0, b"hi\nthere");
        w.write(0, b" you\n");
        w.write(1, b"err");
        w.flush(1);
        let lines = lines_of(&p);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].log, "hi\n");
        assert_eq!(lines[1].log, "there you\n");
        assert_eq!(lines[2].log, "err");
        assert_eq!(lines[2].stream, "stderr");
    }

    /// 200 short lines through a writer rotating at 1000 bytes into 3 files;
    /// the directory (kept alive), the live path and the files' names, sorted.
    fn write_200_lines(compress: bool) -> (tempfile::TempDir, std::path::PathBuf, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let rot = LogRotation {
            max_size: 1000,
            max_file: 3,
            compress,
            ..Default::default()
        };
        let mut w = LogWriter::new(open_log(&p).unwrap(), p.clone(), rot);
        for i in 0..200 {
            w.write(0, format!("line {i:04}\n").as_bytes());
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        (dir, p, names)
    }

    #[test]
    fn rotates_and_drops_the_oldest() {
        let (dir, p, names) = write_200_lines(false);
        assert_eq!(names, ["c-json.log", "c-json.log.1", "c-json.log.2"]);
        for n in &names {
            let len = std::fs::metadata(dir.path().join(n)).unwrap().len();
            assert!(len < 1000 + 100, "{n} has {len} bytes");
        }
        let last = lines_of(&p);
        assert_eq!(last.last().unwrap().log, "line 0199\n");
        // The files follow each other without a gap.
        let older = lines_of(&rotated(&p, 1, false));
        let n: u32 = older.last().unwrap().log[5..9].parse().unwrap();
        assert_eq!(last[0].log, format!("line {:04}\n", n + 1));
    }

    #[test]
    fn compresses_rotated_files() {
        let (_dir, p, names) = write_200_lines(true);
        assert_eq!(names, ["c-json.log", "c-json.log.1.gz", "c-json.log.2.gz"]);
        let mut text = String::new();
        let f = File::open(rotated(&p, 1, true)).unwrap();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(f), &mut text).unwrap();
        assert!(text.contains("\"log\":\"line "));
    }

    #[test]
    fn one_file_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let rot = LogRotation {
            max_size: 500,
            max_file: 1,
            compress: false,
            ..Default::default()
        };
        let mut w = LogWriter::new(open_log(&p).unwrap(), p.clone(), rot);
        for i in 0..200 {
            w.write(0, format!("line {i:04}\n").as_bytes());
        }
        assert!(std::fs::metadata(&p).unwrap().len() < 600);
        assert_eq!(lines_of(&p).last().unwrap().log, "line 0199\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
