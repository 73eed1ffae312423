//! `pier-shim pause [--net] [--ipc] [--uts] [--pid] [--hostname NAME]`: the
//! process that holds a CRI pod sandbox's namespaces, so a pod needs no pause
//! image. It makes the namespaces asked for (loopback up in a new network
//! namespace), forks the holder (pid 1 of a new pid namespace), prints
//! `ok <holder pid>` or `error <msg>` and exits; the holder reaps orphans and
//! sleeps until SIGTERM, SIGINT or SIGKILL.

use anyhow::{bail, Context, Result};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

struct PauseArgs {
    flags: CloneFlags,
    pid: bool,
    hostname: Option<String>,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<PauseArgs> {
    let mut a = PauseArgs {
        flags: CloneFlags::empty(),
        pid: false,
        hostname: None,
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--net" => a.flags |= CloneFlags::CLONE_NEWNET,
            "--ipc" => a.flags |= CloneFlags::CLONE_NEWIPC,
            "--uts" => a.flags |= CloneFlags::CLONE_NEWUTS,
            "--pid" => a.pid = true,
            "--hostname" => a.hostname = Some(it.next().context("--hostname needs a value")?),
            other => bail!("unknown argument {other:?}"),
        }
    }
    if a.hostname.is_some() && !a.flags.contains(CloneFlags::CLONE_NEWUTS) {
        bail!("--hostname needs --uts");
    }
    Ok(a)
}

fn prepare(a: &PauseArgs) -> Result<()> {
    nix::sched::unshare(a.flags).context("unshare")?;
    if let Some(h) = &a.hostname {
        nix::unistd::sethostname(h).with_context(|| format!("sethostname {h:?}"))?;
    }
    if a.flags.contains(CloneFlags::CLONE_NEWNET) {
        // A pod without CNI still reaches itself on 127.0.0.1.
        let st = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .context("ip link set lo up")?;
        if !st.success() {
            bail!("ip link set lo up: {st}");
        }
    }
    if a.pid {
        nix::sched::unshare(CloneFlags::CLONE_NEWPID).context("unshare pid")?;
    }
    Ok(())
}

pub fn main(args: impl Iterator<Item = String>) -> ! {
    let res = parse(args).and_then(|a| prepare(&a));
    if let Err(e) = res {
        super::ready_line(&format!("error {e:#}"));
        std::process::exit(1);
    }
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD] {
        set.add(s);
    }
    let _ = set.thread_block();
    match pier_sys::fork_single_threaded() {
        Ok(pier_sys::Forked::Parent(pid)) => {
            super::ready_line(&format!("ok {pid}"));
            pier_sys::exit_immediately(0)
        }
        Ok(pier_sys::Forked::Child) => {}
        Err(e) => {
            super::ready_line(&format!("error fork: {e}"));
            std::process::exit(1);
        }
    }
    let _ = nix::unistd::setsid();
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let fd = std::os::fd::OwnedFd::from(null);
        for t in 0..3 {
            let _ = pier_sys::redirect_fd(&fd, t);
        }
    }
    let _ = std::env::set_current_dir("/");
    loop {
        match set.wait() {
            Ok(Signal::SIGCHLD) => {
                // Orphans of a shared pid namespace land here.
                while let Ok(st) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    if st == WaitStatus::StillAlive {
                        break;
                    }
                }
            }
            Ok(_) => pier_sys::exit_immediately(0),
            Err(_) => {}
        }
    }
}
