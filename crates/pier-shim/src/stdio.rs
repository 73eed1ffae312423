//! Setting up a process's stdio: pipes, or a pty whose master libcontainer sends
//! over a console socket.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;

use crate::lc::ChildIo;

/// The shim's side of a process's stdio, before the process exists.
pub enum ParentSide {
    Tty {
        listener: UnixListener,
        path: PathBuf,
    },
    Pipes {
        stdin: Option<OwnedFd>,
        out: [Option<OwnedFd>; 2],
    },
}

/// The shim's side once the process runs.
pub struct Fds {
    pub master: Option<OwnedFd>,
    pub stdin: Option<OwnedFd>,
    pub out: [Option<OwnedFd>; 2],
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| io::Error::other(format!("pipe: {e}")))
}

/// `sock_name` is relative to the shim's cwd (the state dir), which keeps it short.
pub fn prepare(tty: bool, want_stdin: bool, sock_name: &Path) -> io::Result<(ChildIo, ParentSide)> {
    if tty {
        let _ = std::fs::remove_file(sock_name);
        let listener = UnixListener::bind(sock_name)
            .map_err(|e| io::Error::new(e.kind(), format!("bind {}: {e}", sock_name.display())))?;
        // libcontainer links to it from its own directory: it needs an absolute path.
        let abs = std::env::current_dir()?.join(sock_name);
        return Ok((
            ChildIo::Tty(abs),
            ParentSide::Tty {
                listener,
                path: sock_name.to_path_buf(),
            },
        ));
    }
    let (stdin_child, stdin_parent) = if want_stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        let null = std::fs::File::open("/dev/null")
            .map_err(|e| io::Error::new(e.kind(), format!("open /dev/null: {e}")))?;
        (OwnedFd::from(null), None)
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    Ok((
        ChildIo::Pipes {
            stdin: stdin_child,
            stdout: out_w,
            stderr: err_w,
        },
        ParentSide::Pipes {
            stdin: stdin_parent,
            out: [Some(out_r), Some(err_r)],
        },
    ))
}

/// Collects the pty master (tty mode) once the process was created.
pub fn finish(parent: ParentSide) -> io::Result<Fds> {
    match parent {
        ParentSide::Pipes { stdin, out } => Ok(Fds {
            master: None,
            stdin,
            out,
        }),
        ParentSide::Tty { listener, path } => {
            let r = accept_master(&listener);
            let _ = std::fs::remove_file(&path);
            let master = r?;
            Ok(Fds {
                master: Some(master),
                stdin: None,
                out: [None, None],
            })
        }
    }
}

fn accept_master(listener: &UnixListener) -> io::Result<OwnedFd> {
    // The runtime has already connected and sent by the time create returns;
    // the deadline only guards against a runtime that never did.
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("console socket: {e}"))),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    pier_sys::recv_fd(&stream)
}
