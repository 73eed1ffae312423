//! Process helpers: fork in a single-threaded process, subreaper, run-in-child.

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// Which side of a fork we are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Parent(Pid),
    Child,
}

/// Number of threads of this process, from /proc/self/stat.
pub fn thread_count() -> io::Result<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(|e| io::Error::new(e.kind(), format!("read /proc/self/stat: {e}")))?;
    // Field 20 (num_threads); the command name in field 2 may contain spaces, so
    // count from the closing parenthesis.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("malformed /proc/self/stat"))?;
    rest.split_whitespace()
        .nth(17)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("malformed /proc/self/stat"))
}

/// fork(2), refused unless this process has exactly one thread.
///
/// With one thread the child is a full copy with no lock held by a vanished thread,
/// so it may allocate and run ordinary Rust code.
pub fn fork_single_threaded() -> io::Result<Forked> {
    let n = thread_count()?;
    if n != 1 {
        return Err(io::Error::other(format!(
            "refusing to fork: process has {n} threads"
        )));
    }
    // SAFETY: checked above that we are the only thread, so the child inherits no
    // lock held by another thread and may run arbitrary code.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Forked::Parent(child)),
        Ok(nix::unistd::ForkResult::Child) => Ok(Forked::Child),
        Err(e) => Err(io::Error::new(
            io::Error::from(e).kind(),
            format!("fork: {e}"),
        )),
    }
}

/// Ends the current process at once, without running destructors or atexit
/// handlers (for forked children, whose buffers belong to the parent).
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; it never returns.
    unsafe { libc::_exit(code) }
}

/// Most bytes a child may hand back: it must fit in the pipe buffer, so the child
/// never blocks writing it.
pub const CHILD_RESULT_MAX: usize = 60 * 1024;

/// Runs `f` in a forked child and returns the bytes it produced (at most
/// [`CHILD_RESULT_MAX`]) with how the child ended.
///
/// Used to keep heavy work (and the memory it touches) out of a long-lived small
/// process. The process must be single-threaded. The child sends its result as
/// one length-prefixed frame, and the parent returns as soon as the frame is
/// complete, with [`WaitStatus::StillAlive`]: the child's exit (unmapping what
/// it touched, and closing a private procfs mount of libcontainer, which waits
/// for an RCU grace period) takes milliseconds nobody needs to wait for. The
/// caller then reaps it with its other children (a SIGCHLD handler doing
/// `waitpid(-1)`). Processes the child starts may inherit the result pipe, so
/// EOF means nothing: a child that ends without a whole frame is waited for
/// (through a pidfd), and whatever it wrote is returned with its status.
pub fn run_in_child<F: FnOnce() -> Vec<u8>>(f: F) -> io::Result<(Vec<u8>, WaitStatus)> {
    run_in_child_then(|| (f(), ()), |()| {})
}

/// [`run_in_child`], where the child goes on with `then` after sending its
/// result: work whose outcome the caller need not wait for (cleanup), taking
/// what `f` handed over. The caller must not assume `then` has finished until
/// it reaps the child.
pub fn run_in_child_then<T, F, G>(f: F, then: G) -> io::Result<(Vec<u8>, WaitStatus)>
where
    F: FnOnce() -> (Vec<u8>, T),
    G: FnOnce(T),
{
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("pipe: {e}")))?;
    match fork_single_threaded()? {
        Forked::Child => {
            drop(r);
            let (mut out, rest) = f();
            out.truncate(CHILD_RESULT_MAX);
            let mut frame = (out.len() as u32).to_le_bytes().to_vec();
            frame.extend_from_slice(&out);
            let mut file = std::fs::File::from(w);
            let code = if file.write_all(&frame).is_ok() { 0 } else { 1 };
            drop(file);
            then(rest);
            exit_immediately(code)
        }
        Forked::Parent(pid) => {
            drop(w);
            let mut file = std::fs::File::from(r);
            let mut got = Vec::new();
            if let Some(pidfd) = pidfd_open(pid) {
                loop {
                    drain(&mut file, &mut got)?;
                    if let Some(out) = whole_frame(&got) {
                        return Ok((out, WaitStatus::StillAlive));
                    }
                    if wait_readable(&file, &pidfd)? {
                        break; // the child ended
                    }
                }
            }
            let status = loop {
                match waitpid(pid, None) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other,
                }
            }
            .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("waitpid: {e}")))?;
            drain(&mut file, &mut got)?;
            let out = whole_frame(&got).unwrap_or_else(|| got.get(4..).unwrap_or(&[]).to_vec());
            Ok((out, status))
        }
    }
}

/// The payload of a complete `len (u32 LE) + bytes` frame, or None.
fn whole_frame(b: &[u8]) -> Option<Vec<u8>> {
    let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
    b.get(4..4 + len).map(<[u8]>::to_vec)
}

/// Reads what the (non-blocking) pipe holds now.
fn drain(file: &mut std::fs::File, out: &mut Vec<u8>) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("read child result: {e}"))),
        }
    }
}

/// Waits until the pipe has data or the child ended; true when it ended.
fn wait_readable(pipe: &std::fs::File, pidfd: &OwnedFd) -> io::Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    loop {
        let mut fds = [
            PollFd::new(pipe.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {
                let ev = |i: usize| fds[i].revents().unwrap_or(PollFlags::empty());
                if !ev(1).is_empty() {
                    return Ok(true);
                }
                if ev(0).contains(PollFlags::POLLIN) {
                    return Ok(false);
                }
                if !ev(0).is_empty() {
                    // Every writer closed with no data: only the child's end
                    // can tell more.
                    return wait_ended(pidfd);
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                return Err(io::Error::new(
                    io::Error::from(e).kind(),
                    format!("poll child result: {e}"),
                ))
            }
        }
    }
}

/// Blocks until the child behind `pidfd` ended.
fn wait_ended(pidfd: &OwnedFd) -> io::Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                return Err(io::Error::new(
                    io::Error::from(e).kind(),
                    format!("poll child: {e}"),
                ))
            }
        }
    }
}

/// A pidfd for our child `pid`, or None where the kernel has none (< 5.3).
fn pidfd_open(pid: Pid) -> Option<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: pidfd_open just returned this fd; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Makes this process the reaper of orphaned descendants (PR_SET_CHILD_SUBREAPER).
pub fn set_child_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("set child subreaper: {e}"),
        )
    })
}

/// Points stdio fd `target` (0, 1 or 2) at `fd`, keeping `fd` open too.
pub fn redirect_fd(fd: &OwnedFd, target: i32) -> io::Result<()> {
    // nix only dup2s onto fds it can prove are owned; the stdio ones have their own calls.
    let r = match target {
        0 => nix::unistd::dup2_stdin(fd),
        1 => nix::unistd::dup2_stdout(fd),
        2 => nix::unistd::dup2_stderr(fd),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("dup2 to {target}: not a stdio fd"),
            ))
        }
    };
    r.map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("dup2 to {target}: {e}")))
}

/// Restores what a fresh process expects before exec'ing a workload: SIGPIPE back
/// to its default action (Rust ignores it) and no blocked signals.
pub fn reset_signals_for_exec() -> io::Result<()> {
    use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("sigprocmask: {e}")))?;
    // SAFETY: installing SIG_DFL runs no handler code, so no async-signal-safety
    // concern exists; the previous disposition is not needed.
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    }
    .map(|_| ())
    .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("reset SIGPIPE: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_count_is_positive() {
        assert!(thread_count().unwrap() >= 1);
    }

    #[test]
    fn child_results_are_whole_frames() {
        let mut b = 3u32.to_le_bytes().to_vec();
        assert_eq!(whole_frame(&b), None);
        b.extend_from_slice(b"ok");
        assert_eq!(whole_frame(&b), None, "one byte short");
        b.push(b'!');
        assert_eq!(whole_frame(&b).as_deref(), Some(&b"ok!"[..]));
        assert_eq!(whole_frame(&[1, 0]), None);
        assert_eq!(whole_frame(&0u32.to_le_bytes()).as_deref(), Some(&b""[..]));
    }

    #[test]
    fn run_in_child_refused_when_threaded() {
        // The test harness runs tests on threads, so we are never single-threaded here.
        if thread_count().unwrap() > 1 {
            assert!(run_in_child(Vec::new).is_err());
        }
    }
}
