//! `-H fd://` and `-H fd://N`: the sockets systemd (or any service manager
//! speaking its protocol) bound for us, with dockerd's messages.

use pier_sys::Activated;
use tokio::net::{TcpListener, UnixListener};

use crate::{DaemonError, ListenAddr};

/// An activated socket ready for the accept loop.
pub(crate) enum Taken {
    Unix(UnixListener),
    Tcp(TcpListener),
}

/// For each of `hosts`, the activated sockets it names (none for the
/// others). Called before the engine opens, so a unit whose sockets did not
/// come stops the daemon before it touches anything.
pub(crate) fn take_for(hosts: &[ListenAddr]) -> Result<Vec<Vec<Taken>>, DaemonError> {
    let mut passed = Passed::default();
    hosts
        .iter()
        .map(|h| match h {
            ListenAddr::Fd(which) => passed.take(*which),
            _ => Ok(Vec::new()),
        })
        .collect()
}

/// The passed descriptors, read from the environment on first use.
#[derive(Default)]
struct Passed {
    fds: Option<Vec<Option<Activated>>>,
}

fn err(msg: String) -> DaemonError {
    DaemonError::Io {
        context: "socket activation".into(),
        source: std::io::Error::other(msg),
    }
}

impl Passed {
    /// Every passed socket (`which` None), or the one at fd `which`.
    fn take(&mut self, which: Option<i32>) -> Result<Vec<Taken>, DaemonError> {
        let fds = match &mut self.fds {
            Some(f) => f,
            None => {
                let got =
                    pier_sys::take_activation_listeners().map_err(|source| DaemonError::Io {
                        context: "socket activation".into(),
                        source,
                    })?;
                self.fds.insert(got.into_iter().map(Some).collect())
            }
        };
        if fds.is_empty() {
            return Err(err(
                "no sockets found via socket activation: make sure the service was started by systemd"
                    .into(),
            ));
        }
        let picked: Vec<(i32, Activated)> = match which {
            None => fds
                .iter_mut()
                .enumerate()
                .filter_map(|(i, a)| Some((i as i32 + pier_sys::FIRST_ACTIVATION_FD, a.take()?)))
                .collect(),
            Some(n) => {
                let i = n - pier_sys::FIRST_ACTIVATION_FD;
                let slot = usize::try_from(i)
                    .ok()
                    .and_then(|i| fds.get_mut(i))
                    .ok_or_else(|| {
                        err("too few socket activated files passed in by systemd".into())
                    })?;
                let a = slot.take().ok_or_else(|| {
                    err(format!(
                        "failed to listen on systemd activated file: fd {n}"
                    ))
                })?;
                vec![(n, a)]
            }
        };
        picked
            .into_iter()
            .map(|(n, a)| {
                let bad = |e: std::io::Error| {
                    err(format!(
                        "failed to listen on systemd activated file: fd {n}: {e}"
                    ))
                };
                match a {
                    Activated::Unix(l) => {
                        l.set_nonblocking(true).map_err(bad)?;
                        UnixListener::from_std(l).map(Taken::Unix).map_err(bad)
                    }
                    Activated::Tcp(l) => {
                        l.set_nonblocking(true).map_err(bad)?;
                        TcpListener::from_std(l).map(Taken::Tcp).map_err(bad)
                    }
                    Activated::Other(_) => Err(err(format!(
                        "failed to listen on systemd activated file: fd {n}"
                    ))),
                }
            })
            .collect()
    }
}
