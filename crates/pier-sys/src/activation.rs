//! Sockets handed over by a service manager (systemd socket activation):
//! `LISTEN_PID` names this process, `LISTEN_FDS` counts the descriptors from
//! fd 3 on. Read as go-systemd's `activation.Listeners` reads them for dockerd.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{
    getsockname, getsockopt, sockopt, AddressFamily, SockaddrLike, SockaddrStorage,
};

/// The first descriptor a service manager passes (SD_LISTEN_FDS_START).
pub const FIRST_ACTIVATION_FD: RawFd = 3;

/// One descriptor passed by the service manager.
#[derive(Debug)]
pub enum Activated {
    Unix(UnixListener),
    Tcp(TcpListener),
    /// Not a listening unix or TCP socket (kept open no longer).
    Other(RawFd),
}

static TAKEN: AtomicBool = AtomicBool::new(false);

/// Takes the descriptors passed to this process, in order from fd 3. Empty
/// when none were passed to *this* process (`LISTEN_PID` is another's, as in
/// a child that inherited the environment). Only the first call gets them:
/// each descriptor is owned once.
pub fn take_activation_listeners() -> io::Result<Vec<Activated>> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.trim().parse::<RawFd>().ok())
        .unwrap_or(0);
    if !for_us || count <= 0 || TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for fd in FIRST_ACTIVATION_FD..FIRST_ACTIVATION_FD + count {
        // SAFETY: the service manager passed fds 3..3+LISTEN_FDS to this
        // process (LISTEN_PID says so) for it to own, nothing in Pier opens
        // them before this, and TAKEN makes this the only owner.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
            .map_err(|e| io::Error::other(format!("activated fd {fd}: {e}")))?;
        out.push(classify(owned, fd));
    }
    Ok(out)
}

fn classify(owned: OwnedFd, fd: RawFd) -> Activated {
    let listening = getsockopt(&owned.as_fd(), sockopt::AcceptConn).unwrap_or(false);
    let family = getsockname::<SockaddrStorage>(fd)
        .ok()
        .and_then(|a| a.family());
    match (listening, family) {
        (true, Some(AddressFamily::Unix)) => Activated::Unix(UnixListener::from(owned)),
        (true, Some(AddressFamily::Inet | AddressFamily::Inet6)) => {
            Activated::Tcp(TcpListener::from(owned))
        }
        _ => Activated::Other(fd),
    }
}
