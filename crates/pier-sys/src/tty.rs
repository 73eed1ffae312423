//! Terminal helpers.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Sets the window size of the terminal behind `fd` (a pty master or slave).
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` through the pointer, which points at a
    // live local; the fd is borrowed so it stays open for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("set window size: {e}")));
    }
    Ok(())
}

/// Reads the window size of the terminal behind `fd` as (rows, cols).
pub fn get_winsize(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points at
    // a live, writable local; the fd is borrowed so it stays open.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("get window size: {e}")));
    }
    Ok((ws.ws_row, ws.ws_col))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn winsize_roundtrip_on_pty() {
        let pty = nix::pty::openpty(None, None).unwrap();
        set_winsize(pty.master.as_fd(), 33, 101).unwrap();
        assert_eq!(get_winsize(pty.slave.as_fd()).unwrap(), (33, 101));
    }
}
