//! Container stdio over hijacked connections: the 8-byte frame format, raw
//! terminal mode (always restored), window sizes, detach keys, stdin.

use anyhow::Result;
use pier_client::{Client, Hijacked};
use rustix::termios::{self, OptionalActions, Termios};
use std::io::{Read, Write};
use std::sync::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The terminal settings to put back, set while stdin is in raw mode.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// Restores the terminal if we changed it; safe to call any number of times.
pub fn restore_terminal() {
    let saved = match SAVED.lock() {
        Ok(mut g) => g.take(),
        Err(p) => p.into_inner().take(),
    };
    if let Some(t) = saved {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &t);
    }
}

/// A panic must not leave the user's terminal in raw mode.
pub fn install_panic_hook() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        prev(info);
    }));
}

pub fn stdin_is_tty() -> bool {
    termios::isatty(std::io::stdin())
}

pub fn stdout_is_tty() -> bool {
    termios::isatty(std::io::stdout())
}

/// Puts stdin's terminal in raw mode (like `cfmakeraw`) until [`RawGuard`] drops.
pub struct RawGuard(());

impl RawGuard {
    pub fn new() -> Result<RawGuard> {
        let stdin = std::io::stdin();
        let orig = termios::tcgetattr(&stdin)?;
        let mut raw = orig.clone();
        raw.make_raw();
        if let Ok(mut g) = SAVED.lock()
            && g.is_none()
        {
            *g = Some(orig);
        }
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        // A signal that would kill us must not leave the terminal raw.
        if tokio::runtime::Handle::try_current().is_ok() {
            use tokio::signal::unix::{signal, SignalKind};
            for (kind, num) in [
                (SignalKind::terminate(), 15),
                (SignalKind::hangup(), 1),
                (SignalKind::quit(), 3),
            ] {
                if let Ok(mut s) = signal(kind) {
                    tokio::spawn(async move {
                        if s.recv().await.is_some() {
                            restore_terminal();
                            std::process::exit(128 + num);
                        }
                    });
                }
            }
        }
        Ok(RawGuard(()))
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// The terminal's (height, width), if stdout is a terminal.
pub fn window_size() -> Option<(u16, u16)> {
    let ws = termios::tcgetwinsize(std::io::stdout()).ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Sends the window size to `<prefix>/resize` (`/containers/ID` or `/exec/ID`).
pub async fn resize(client: &Client, prefix: &str) {
    if let Some((h, w)) = window_size() {
        let _ = client
            .post_unit(&format!("{prefix}/resize?h={h}&w={w}"))
            .await;
    }
}

/// Keeps the container's TTY size in step with ours (SIGWINCH) until dropped.
pub fn spawn_resize_watch(client: &Client, prefix: String) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut sig) = signal(SignalKind::window_change()) else {
            return;
        };
        while sig.recv().await.is_some() {
            resize(&client, &prefix).await;
        }
    })
}

/// Forwards the signals the CLI gets to the container (`--sig-proxy`, non-TTY only).
pub fn spawn_sig_proxy(client: &Client, id: String) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let kinds = [
            (SignalKind::interrupt(), "SIGINT"),
            (SignalKind::terminate(), "SIGTERM"),
            (SignalKind::hangup(), "SIGHUP"),
            (SignalKind::quit(), "SIGQUIT"),
            (SignalKind::user_defined1(), "SIGUSR1"),
            (SignalKind::user_defined2(), "SIGUSR2"),
        ];
        let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
        for (kind, name) in kinds {
            if let Ok(mut s) = signal(kind) {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        if tx.send(name).is_err() {
                            break;
                        }
                    }
                });
            }
        }
        drop(tx);
        while let Some(name) = rx.recv().await {
            let _ = client
                .post_unit(&format!("/containers/{id}/kill?signal={name}"))
                .await;
        }
    })
}

/// Docker's `--detach-keys` syntax: `ctrl-p,ctrl-q`, `a,ctrl-@`.
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>> {
    pier_api::detach::parse_detach_keys(spec).map_err(|e| anyhow::anyhow!(e))
}

pub use pier_api::detach::DetachFilter;

/// Reads our stdin on a thread (reads block) and hands chunks to async code.
/// An empty chunk means EOF.
pub fn spawn_stdin_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(Vec::new());
                    return;
                }
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Writes the container's output: raw for a TTY, else split from the
/// multiplexed frames (`[stream, 0, 0, 0, size BE u32]` + payload) into our
/// stdout and stderr.
pub async fn copy_output<R: AsyncRead + Unpin>(mut reader: R, tty: bool) -> std::io::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    if tty {
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            let mut out = std::io::stdout().lock();
            out.write_all(&buf[..n])?;
            out.flush()?;
        }
    }
    let mut header = [0u8; 8];
    loop {
        match reader.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        while size > 0 {
            let want = size.min(buf.len());
            reader.read_exact(&mut buf[..want]).await?;
            size -= want;
            if header[0] == 2 {
                let mut err = std::io::stderr().lock();
                err.write_all(&buf[..want])?;
                err.flush()?;
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(&buf[..want])?;
                out.flush()?;
            }
        }
    }
}

/// How a stream session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The container closed its output (it exited, or detached us).
    Eof,
    /// The user typed the detach keys.
    Detached,
}

/// Pumps a hijacked connection: output to our stdout/stderr, and our stdin to
/// the container when `stdin` is set (its EOF closes the write side). Detach
/// keys are honoured in TTY mode.
pub async fn pump(
    h: Hijacked,
    tty: bool,
    stdin: bool,
    detach_keys: Option<Vec<u8>>,
) -> Result<StreamEnd> {
    let Hijacked { reader, mut writer } = h;
    let output = copy_output(reader, tty);
    tokio::pin!(output);
    if !stdin {
        output.await?;
        return Ok(StreamEnd::Eof);
    }
    let mut rx = spawn_stdin_reader();
    let mut filter = DetachFilter::new(if tty {
        detach_keys.unwrap_or_else(|| vec![16, 17])
    } else {
        Vec::new()
    });
    let mut stdin_open = true;
    loop {
        tokio::select! {
            r = &mut output => {
                r?;
                return Ok(StreamEnd::Eof);
            }
            chunk = rx.recv(), if stdin_open => {
                match chunk {
                    Some(c) if !c.is_empty() => {
                        let (data, detach) = filter.feed(&c);
                        if !data.is_empty() && writer.write_all(&data).await.is_err() {
                            stdin_open = false;
                        }
                        if detach {
                            return Ok(StreamEnd::Detached);
                        }
                    }
                    _ => {
                        stdin_open = false;
                        let _ = writer.shutdown().await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_demultiplexed() {
        // Only checks that parsing consumes well-formed frames without error.
        let mut data = vec![1u8, 0, 0, 0, 0, 0, 0, 0];
        data.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
        copy_output(&data[..], false).await.unwrap();
        let bad = vec![1u8, 0, 0, 0, 0, 0, 0, 5, b'a'];
        assert!(copy_output(&bad[..], false).await.is_err());
    }
}
