//! Running a command with a deadline, capturing both streams without pipe deadlocks.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// What a command reads on its standard input.
pub enum Input<'a> {
    Null,
    Bytes(&'a [u8]),
    File(std::fs::File),
}

/// Runs `cmd` to completion, killing it after `timeout` (then panics: a hung command is
/// a test failure, and the panic message carries what it had printed so far).
pub fn run(mut cmd: Command, input: Input<'_>, timeout: Duration) -> Output {
    let desc = format!("{cmd:?}");
    let mut bytes: Option<Vec<u8>> = None;
    match input {
        Input::Null => {
            cmd.stdin(Stdio::null());
        }
        Input::Bytes(b) => {
            cmd.stdin(Stdio::piped());
            bytes = Some(b.to_vec());
        }
        Input::File(f) => {
            cmd.stdin(Stdio::from(f));
        }
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {desc}: {e}"));
    let writer = child.stdin.take().map(|mut stdin| {
        let data = bytes.take().unwrap_or_default();
        // A command that exits without reading all of its input is not our failure.
        thread::spawn(move || {
            let _ = stdin.write_all(&data);
        })
    });
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                // Grandchildren may hold the pipes open; do not wait on the readers.
                panic!("timed out after {timeout:?}: {desc}");
            }
            Err(e) => panic!("waiting for {desc}: {e}"),
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Convenience accessors for [`Output`].
pub trait OutputExt {
    fn out(&self) -> String;
    fn err(&self) -> String;
    /// Exit code; a death by signal N reads as 128+N, as a shell would report it.
    fn code(&self) -> i32;
    fn describe(&self) -> String;
}

impl OutputExt for Output {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        self.status
            .code()
            .or_else(|| self.status.signal().map(|s| 128 + s))
            .unwrap_or(-1)
    }
    fn describe(&self) -> String {
        format!(
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code(),
            self.out(),
            self.err()
        )
    }
}
