//! Client connections: accepting them, reading request lines, and attach
//! streams in both directions.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::poll::PollFlags;
use pier_runtime::proto::Reply;

use super::{Conn, ConnState, Sup};

impl Sup {
    pub(super) fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(true).ok();
                    self.last_activity = Instant::now();
                    let c = Conn {
                        stream: s,
                        state: ConnState::Reading(Vec::new()),
                    };
                    match self.conns.iter().position(Option::is_none) {
                        Some(i) => self.conns[i] = Some(c),
                        None => self.conns.push(Some(c)),
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    eprintln!("pier-shim: accept: {e}");
                    break;
                }
            }
        }
    }

    pub(super) fn conn_event(&mut self, i: usize, ev: PollFlags) {
        let Some(mut c) = self.conns[i].take() else {
            return;
        };
        let keep = match &mut c.state {
            ConnState::Reading(buf) => {
                let mut tmp = [0u8; 4096];
                match c.stream.read(&mut tmp) {
                    Ok(0) => false,
                    Ok(n) => {
                        buf.extend_from_slice(&tmp[..n]);
                        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = buf.drain(..=pos).collect();
                            let rest = std::mem::take(buf);
                            return self.handle_request(i, c, &line, rest);
                        }
                        buf.len() < 1 << 20
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => true,
                    Err(_) => false,
                }
            }
            ConnState::Waiting(_) => {
                // Anything readable on a waiter means it hung up (or misbehaves).
                let mut tmp = [0u8; 64];
                match c.stream.read(&mut tmp) {
                    Ok(0) => false,
                    Err(e) => e.kind() == ErrorKind::WouldBlock,
                    Ok(_) => true,
                }
            }
            ConnState::Attached {
                key,
                stdin,
                out,
                read_closed,
                closing,
                ..
            } => {
                let mut alive = true;
                if ev.intersects(PollFlags::POLLOUT | PollFlags::POLLERR | PollFlags::POLLHUP)
                    && !out.is_empty()
                {
                    alive = flush_out(&mut c.stream, out);
                }
                if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) && *stdin && !*read_closed
                {
                    let mut tmp = [0u8; 16 * 1024];
                    match c.stream.read(&mut tmp) {
                        Ok(0) | Err(_) => {
                            *read_closed = true;
                            // Docker closes the container's stdin only with
                            // StdinOnce; an exec's stdin always closes.
                            let close = key.is_some() || self.cfg.stdin_once;
                            if let Some(p) = self.procs.get_mut(key).filter(|_| close) {
                                if p.stdin_buf.is_empty() {
                                    if !p.tty {
                                        p.stdin = None;
                                    }
                                } else {
                                    p.close_stdin_after_buf = true;
                                }
                            }
                        }
                        Ok(n) => {
                            if let Some(p) = self.procs.get_mut(key) {
                                p.stdin_buf.extend_from_slice(&tmp[..n]);
                                let pi = self.procs.keys().position(|k| k == key);
                                if let Some(pi) = pi {
                                    self.flush_stdin(pi);
                                }
                            }
                        }
                    }
                }
                alive && !(*closing && out.is_empty())
            }
        };
        if keep {
            self.conns[i] = Some(c);
        }
    }
}

pub(super) fn flush_out(s: &mut UnixStream, out: &mut Vec<u8>) -> bool {
    while !out.is_empty() {
        match s.write(out) {
            Ok(0) => return false,
            Ok(n) => {
                out.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                out.clear();
                return false;
            }
        }
    }
    // Release the memory of a burst.
    *out = Vec::new();
    true
}

pub(super) fn write_line(s: &mut UnixStream, line: &[u8]) -> std::io::Result<()> {
    // Replies are tiny and the socket is fresh, but it is non-blocking: retry briefly.
    let mut buf = line.to_vec();
    buf.push(b'\n');
    let deadline = Instant::now() + Duration::from_secs(2);
    while !buf.is_empty() {
        match s.write(&buf) {
            Ok(n) => {
                buf.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub(super) fn reply(s: &mut UnixStream, r: &Reply) {
    let line = serde_json::to_vec(r).unwrap_or_default();
    let _ = write_line(s, &line);
}
