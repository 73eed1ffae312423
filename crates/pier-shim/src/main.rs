//! pier-shim: one small supervisor per container.
//!
//! `pier-shim pause ...` holds a CRI pod's namespaces instead (`pause.rs`).
//!
//! `pier-shim --id ID --bundle DIR --state-dir DIR --runtime-root DIR --log PATH
//!  [--log-max-size BYTES --log-max-file N [--log-compress]] [--log-format-cri] [--tty] [--stdin] [--stdin-once] [--wait-go]`
//!
//! Forks into the background at once (the first process exits), creates the
//! container, then prints one line on its original stdout: `ok <shim pid>` or
//! `error <message>`, and serves `<state-dir>/shim.sock`. With `--wait-go` it
//! first waits for the line `go` on stdin (the caller prepares the bundle while
//! the shim loads) and exits quietly on anything else.

// The shim is synchronous, one poll loop per container: no async worker
// to stall.
#![allow(clippy::disallowed_methods)]

mod cleanup;
mod filter;
mod lc;
mod logw;
mod pause;
mod stdio;
mod sup;

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

struct Args {
    id: String,
    bundle: PathBuf,
    state_dir: PathBuf,
    runtime_root: PathBuf,
    log: Option<PathBuf>,
    log_rotation: pier_runtime::proto::LogRotation,
    tty: bool,
    stdin: bool,
    stdin_once: bool,
    foreground: bool,
    wait_go: bool,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        id: String::new(),
        bundle: PathBuf::new(),
        state_dir: PathBuf::new(),
        runtime_root: PathBuf::new(),
        log: None,
        log_rotation: Default::default(),
        tty: false,
        stdin: false,
        stdin_once: false,
        foreground: false,
        wait_go: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--id" => a.id = val("--id")?,
            "--bundle" => a.bundle = val("--bundle")?.into(),
            "--state-dir" => a.state_dir = val("--state-dir")?.into(),
            "--runtime-root" => a.runtime_root = val("--runtime-root")?.into(),
            "--log" => a.log = Some(val("--log")?.into()),
            "--log-max-size" => {
                a.log_rotation.max_size =
                    val("--log-max-size")?.parse().context("--log-max-size")?
            }
            "--log-max-file" => {
                a.log_rotation.max_file =
                    val("--log-max-file")?.parse().context("--log-max-file")?
            }
            "--log-compress" => a.log_rotation.compress = true,
            "--log-format-cri" => a.log_rotation.cri_format = true,
            "--tty" => a.tty = true,
            "--stdin" => a.stdin = true,
            "--stdin-once" => a.stdin_once = true,
            "--foreground" => a.foreground = true,
            "--wait-go" => a.wait_go = true,
            other => bail!("unknown argument {other:?}"),
        }
    }
    if a.id.is_empty() || a.bundle.as_os_str().is_empty() || a.state_dir.as_os_str().is_empty() {
        bail!("--id, --bundle and --state-dir are required");
    }
    if a.runtime_root.as_os_str().is_empty() {
        a.runtime_root = a.state_dir.join("runtime");
    }
    let abs = |p: &PathBuf| -> Result<PathBuf> {
        Ok(if p.is_absolute() {
            p.clone()
        } else {
            std::env::current_dir()?.join(p)
        })
    };
    a.bundle = abs(&a.bundle)?;
    a.state_dir = abs(&a.state_dir)?;
    a.runtime_root = abs(&a.runtime_root)?;
    if let Some(l) = &a.log {
        a.log = Some(abs(l)?);
    }
    Ok(a)
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("pause") {
        pause::main(std::env::args().skip(2));
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            ready_line(&format!("error {e:#}"));
            std::process::exit(2);
        }
    };
    if !args.foreground {
        // The caller waits only for our ready line, not for us: the first process
        // exits now and the supervisor lives on in its own session.
        match pier_sys::fork_single_threaded() {
            Ok(pier_sys::Forked::Parent(_)) => pier_sys::exit_immediately(0),
            Ok(pier_sys::Forked::Child) => {}
            Err(e) => {
                ready_line(&format!("error fork: {e}"));
                std::process::exit(1);
            }
        }
        let _ = nix::unistd::setsid();
    }
    if args.wait_go {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        if line.trim_end() != "go" {
            std::process::exit(0);
        }
    }
    match setup(&args) {
        Ok(mut s) => {
            ready_line(&format!("ok {}", std::process::id()));
            // Nobody reads our stdout after the ready line.
            if let Ok(null) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                let fd = std::os::fd::OwnedFd::from(null);
                let _ = pier_sys::redirect_fd(&fd, 0);
                let _ = pier_sys::redirect_fd(&fd, 1);
            }
            s.run();
            let _ = std::fs::remove_file(pier_runtime::proto::SOCKET_NAME);
        }
        Err(e) => {
            ready_line(&format!("error {e:#}"));
            eprintln!("pier-shim {}: {e:#}", args.id);
            std::process::exit(1);
        }
    }
}

/// The one line the spawner reads from our stdout.
fn ready_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn setup(a: &Args) -> Result<sup::Sup> {
    std::fs::create_dir_all(&a.state_dir)
        .with_context(|| format!("create {}", a.state_dir.display()))?;
    std::fs::create_dir_all(&a.runtime_root)
        .with_context(|| format!("create {}", a.runtime_root.display()))?;
    // Socket names stay short (sun_path is 108 bytes) when bound relative to here.
    std::env::set_current_dir(&a.state_dir)
        .with_context(|| format!("chdir {}", a.state_dir.display()))?;
    pier_sys::set_child_subreaper()?;

    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block().context("block SIGCHLD")?;
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None);
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .context("signalfd")?;

    let log = match &a.log {
        Some(p) => logw::LogWriter::new(
            logw::open_log(p).with_context(|| format!("open log {}", p.display()))?,
            p.clone(),
            a.log_rotation,
        ),
        None => logw::LogWriter::none(),
    };

    let sock = pier_runtime::proto::SOCKET_NAME;
    let _ = std::fs::remove_file(sock);
    let listener = UnixListener::bind(sock)
        .with_context(|| format!("bind {}", a.state_dir.join(sock).display()))?;

    let mut init = sup::Proc::new(a.tty);
    let (io, parent) = stdio::prepare(a.tty, a.stdin, std::path::Path::new("console.sock"))?;
    match lc::create(&a.id, &a.bundle, &a.runtime_root, io) {
        Ok(pid) => {
            init.pid = pid;
            let fds = stdio::finish(parent)?;
            init.master = fds.master;
            init.stdin = fds.stdin;
            init.out = fds.out;
        }
        Err(e) => {
            let _ = std::fs::remove_file("console.sock");
            eprintln!("pier-shim {}: create: {}", a.id, e.message);
            // The runtime may have left cgroups and state behind.
            let _ = lc::delete(&a.id, &a.runtime_root);
            let _ = std::fs::remove_dir_all(a.runtime_root.join(&a.id));
            init.start_error = Some(e);
        }
    }
    let cfg = sup::Config {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        runtime_root: a.runtime_root.clone(),
        state_dir: a.state_dir.clone(),
        stdin_once: a.stdin_once,
    };
    let mut s = sup::Sup::new(cfg, listener, sigfd, log, init);
    s.finish_failed_create();
    Ok(s)
}
