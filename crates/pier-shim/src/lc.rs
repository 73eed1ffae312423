//! libcontainer calls, each run in a short-lived forked child.
//!
//! libcontainer is not safe in a multi-threaded process and touches a lot of
//! memory (spec parsing, seccomp compilation). Running every call in a fork keeps
//! the long-lived shim small: the pages the call faults in belong to the child
//! and vanish with it.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::oci_spec::runtime::{Process, Spec};
use libcontainer::syscall::syscall::SyscallType;

/// Stdio handed to a new container process.
pub enum ChildIo {
    /// A console socket path (relative to the shim's cwd) that receives the pty master.
    Tty(PathBuf),
    Pipes {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
}

/// A failed start, with Docker's exit code.
#[derive(Debug, Clone)]
pub struct StartError {
    pub message: String,
    pub exit_code: i32,
}

fn encode(r: Result<String, StartError>) -> Vec<u8> {
    match r {
        Ok(s) => format!("ok {s}").into_bytes(),
        Err(e) => format!("err {} {}", e.exit_code, e.message).into_bytes(),
    }
}

fn decode(out: &[u8], status: nix::sys::wait::WaitStatus) -> Result<String, StartError> {
    let s = String::from_utf8_lossy(out);
    if let Some(rest) = s.strip_prefix("ok ") {
        return Ok(rest.to_string());
    }
    if let Some(rest) = s.strip_prefix("err ") {
        let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
        return Err(StartError {
            message: msg.to_string(),
            exit_code: code.parse().unwrap_or(128),
        });
    }
    Err(StartError {
        message: format!("runtime helper ended with {status:?} and no result"),
        exit_code: 128,
    })
}

/// Runs `f` in a forked child with the signal state a workload expects.
fn in_child<F: FnOnce() -> Result<String, StartError>>(
    op: &str,
    f: F,
) -> Result<String, StartError> {
    in_child_then(op, || f().map(|s| (s, ())), |()| {})
}

/// [`in_child`], with `then` run by the child after it has answered.
fn in_child_then<T, F, G>(op: &str, f: F, then: G) -> Result<String, StartError>
where
    F: FnOnce() -> Result<(String, T), StartError>,
    G: FnOnce(T),
{
    let t0 = std::time::Instant::now();
    let r = pier_sys::run_in_child_then(
        || {
            if let Err(e) = pier_sys::reset_signals_for_exec() {
                return (
                    encode(Err(StartError {
                        message: e.to_string(),
                        exit_code: 128,
                    })),
                    None,
                );
            }
            match f() {
                Ok((s, t)) => (encode(Ok(s)), Some(t)),
                Err(e) => (encode(Err(e)), None),
            }
        },
        |t| {
            if let Some(t) = t {
                then(t)
            }
        },
    );
    let r = match r {
        Ok((out, status)) => decode(&out, status),
        Err(e) => Err(StartError {
            message: format!("fork runtime helper: {e}"),
            exit_code: 128,
        }),
    };
    if std::env::var_os("PIER_SHIM_TRACE").is_some() {
        eprintln!("pier-shim: {op} took {:?}", t0.elapsed());
    }
    r
}

fn other(e: impl std::fmt::Display) -> StartError {
    StartError {
        message: e.to_string(),
        exit_code: 128,
    }
}

fn with_io(b: ContainerBuilder, io: ChildIo) -> ContainerBuilder {
    match io {
        ChildIo::Tty(sock) => b.with_console_socket(Some(sock)),
        ChildIo::Pipes {
            stdin,
            stdout,
            stderr,
        } => b.with_stdin(stdin).with_stdout(stdout).with_stderr(stderr),
    }
}

/// Docker's wording and exit code for a command that cannot be run, found by
/// looking at the rootfs ourselves (libcontainer's errors are not specific).
fn classify_exec(rootfs: &Path, args: &[String], env: &[String], cwd: &str) -> Option<StartError> {
    use std::os::unix::fs::PermissionsExt;
    let cmd = args.first()?;
    let not_found = |message: String| {
        Some(StartError {
            message,
            exit_code: 127,
        })
    };
    let check = |p: &Path| -> Result<(), std::io::Error> {
        let host = pier_runtime::user::resolve_in_root(rootfs, p)?;
        let md = std::fs::metadata(host)?;
        if md.is_dir() || md.permissions().mode() & 0o111 == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        }
        Ok(())
    };
    if cmd.contains('/') {
        let p = if cmd.starts_with('/') {
            PathBuf::from(cmd)
        } else {
            Path::new(cwd).join(cmd)
        };
        return match check(&p) {
            Ok(()) => None,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Some(StartError {
                message: format!("exec: \"{cmd}\": permission denied"),
                exit_code: 126,
            }),
            Err(_) => not_found(format!(
                "exec: \"{cmd}\": stat {cmd}: no such file or directory"
            )),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(pier_runtime::spec::DEFAULT_PATH);
    let mut denied = false;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        match check(&Path::new(dir).join(cmd)) {
            Ok(()) => return None,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => denied = true,
            Err(_) => {}
        }
    }
    if denied {
        return Some(StartError {
            message: format!("exec: \"{cmd}\": permission denied"),
            exit_code: 126,
        });
    }
    not_found(format!(
        "exec: \"{cmd}\": executable file not found in $PATH"
    ))
}

fn rootfs_of(bundle: &Path) -> Result<(Spec, PathBuf), StartError> {
    let spec = Spec::load(bundle.join("config.json")).map_err(other)?;
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    let root = if root.is_absolute() {
        root
    } else {
        bundle.join(root)
    };
    Ok((spec, root))
}

fn explain(bundle: &Path, process: Option<&Process>, err: String) -> StartError {
    if let Ok((spec, root)) = rootfs_of(bundle) {
        let p = process.or(spec.process().as_ref());
        if let Some(p) = p {
            let args = p.args().clone().unwrap_or_default();
            let env = p.env().clone().unwrap_or_default();
            let cwd = p.cwd().to_string_lossy().into_owned();
            if let Some(e) = classify_exec(&root, &args, &env, &cwd) {
                return e;
            }
        }
    }
    other(err)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Creates the container (init waits for `start`); returns its pid.
pub fn create(id: &str, bundle: &Path, root: &Path, io: ChildIo) -> Result<i32, StartError> {
    // A restart may come while the previous run's helper still deletes its state.
    let state = root.join(id);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while state.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let r = in_child("create", || {
        let b = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_root_path(root)
            .map_err(other)?;
        let b = with_io(b, io);
        let b = match crate::filter::prepare_init(bundle, &filter_cache(root)).map_err(other)? {
            Some(x) => b.with_executor(x),
            None => b,
        };
        match b
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
        {
            Ok(c) => Ok(c.pid().map(|p| p.as_raw()).unwrap_or(0).to_string()),
            Err(e) => Err(explain(bundle, None, error_chain(&e))),
        }
    })?;
    r.parse().map_err(other)
}

/// Compiled seccomp programs, beside the runtime state (tmpfs: gone at reboot,
/// when a new libseccomp may be in place).
fn filter_cache(root: &Path) -> PathBuf {
    root.parent().unwrap_or(root).join("seccomp")
}

fn load(id: &str, root: &Path) -> Result<Container, StartError> {
    Container::load(root.join(id)).map_err(|e| other(error_chain(&e)))
}

pub fn start(id: &str, root: &Path) -> Result<(), StartError> {
    in_child("start", || {
        load(id, root)?
            .start()
            .map(|_| String::new())
            .map_err(|e| other(error_chain(&e)))
    })
    .map(|_| ())
}

pub fn pause(id: &str, root: &Path) -> Result<(), StartError> {
    in_child("pause", || {
        load(id, root)?
            .pause()
            .map(|_| String::new())
            .map_err(|e| other(error_chain(&e)))
    })
    .map(|_| ())
}

pub fn resume(id: &str, root: &Path) -> Result<(), StartError> {
    in_child("resume", || {
        load(id, root)?
            .resume()
            .map(|_| String::new())
            .map_err(|e| other(error_chain(&e)))
    })
    .map(|_| ())
}

/// Starts an exec described by the OCI process in `process_file`; returns its pid.
pub fn exec(
    id: &str,
    root: &Path,
    bundle: &Path,
    process_file: &Path,
    tty: bool,
    io: ChildIo,
) -> Result<i32, StartError> {
    let r = in_child("exec", || {
        let b = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_root_path(root)
            .map_err(other)?;
        let b = with_io(b, io);
        let b = match crate::filter::prepare_exec(bundle, process_file).map_err(other)? {
            Some(x) => b.with_executor(x),
            None => b,
        };
        match b
            .as_tenant()
            .with_detach(tty)
            .with_process(Some(process_file))
            .build()
        {
            Ok(pid) => Ok(pid.as_raw().to_string()),
            Err(e) => {
                let process: Option<Process> = std::fs::read(process_file)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                Err(explain(bundle, process.as_ref(), error_chain(&e)))
            }
        }
    })?;
    r.parse().map_err(other)
}

/// Whether the kernel OOM-killed anything in the container's cgroup. Read by
/// the shim itself (a small file), so an exit is reported without waiting for
/// a helper process.
pub fn oom_killed(id: &str, root: &Path) -> bool {
    libcontainer::config::YoukiConfig::load(root.join(id))
        .map(|cfg| oom_killed_in(&cfg.cgroup_path))
        .unwrap_or(false)
}

/// Deletes the container (cgroups, runtime state) in a helper that answers
/// once it has loaded the container's state and deletes after, so a caller
/// may remove the state directory as soon as this returns. Until the helper
/// is reaped, the state directory may still exist: [`create`] waits for it.
pub fn delete(id: &str, root: &Path) -> Result<(), StartError> {
    in_child_then(
        "delete",
        || {
            let c = load(id, root)?;
            let cfg = c.spec().ok();
            Ok((String::new(), (c, cfg)))
        },
        |(c, cfg)| match crate::cleanup::delete_stopped(&c, cfg.as_ref()) {
            Ok(true) => {}
            Ok(false) => {
                let mut c = c;
                if let Err(e) = c.delete(true) {
                    eprintln!("pier-shim: delete container {id}: {}", error_chain(&e));
                }
            }
            Err(e) => eprintln!("pier-shim: delete container {id}: {e}"),
        },
    )
    .map(|_| ())
}

/// Counts OOM kills in the container's memory cgroup (v2 or v1).
fn oom_killed_in(cgroup_path: &Path) -> bool {
    let rel = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
    let files = [
        (
            Path::new("/sys/fs/cgroup").join(rel).join("memory.events"),
            "oom_kill ",
        ),
        (
            Path::new("/sys/fs/cgroup/memory")
                .join(rel)
                .join("memory.oom_control"),
            "oom_kill ",
        ),
    ];
    for (f, key) in files {
        if let Ok(s) = std::fs::read_to_string(&f) {
            for line in s.lines() {
                if let Some(n) = line.strip_prefix(key)
                    && n.trim().parse::<u64>().unwrap_or(0) > 0
                {
                    return true;
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify() {
        let t = std::env::temp_dir().join(format!("pier-shim-classify-{}", std::process::id()));
        std::fs::create_dir_all(t.join("bin")).unwrap();
        std::fs::write(t.join("bin/x"), "").unwrap();
        let env = vec!["PATH=/bin".to_string()];
        let e = classify_exec(&t, &["nope".into()], &env, "/").unwrap();
        assert_eq!(e.exit_code, 127);
        assert_eq!(
            e.message,
            "exec: \"nope\": executable file not found in $PATH"
        );
        let e = classify_exec(&t, &["x".into()], &env, "/").unwrap();
        assert_eq!(e.exit_code, 126);
        let e = classify_exec(&t, &["/bin/x".into()], &env, "/").unwrap();
        assert_eq!(e.exit_code, 126);
        assert_eq!(
            classify_exec(&t, &["/nope".into()], &env, "/")
                .unwrap()
                .exit_code,
            127
        );
        std::fs::remove_dir_all(&t).unwrap();
    }
}
