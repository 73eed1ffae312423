//! Who may reach the daemon's files: root, and for the socket its group.
//!
//! Below the data root lie container upper directories (a container can leave
//! a setuid-root binary there, which any local user could run if they could
//! reach it), the metadata database (environment variables and other secrets
//! of every container) and container logs. So, as dockerd does, the data root
//! is 0710 and nobody but root can traverse it; `containers/` and
//! `snapshots/` (the graph driver's home in Docker's terms) are 0710, the
//! other directories 0700, files at the top (the database and its WAL and
//! shared-memory files) 0600, logs 0640, the exec root 0700. An install made
//! by an older Pier (everything 0755/0644) is tightened at every start.
//!
//! The socket is 0660, owned by root and the group `--group` names (dockerd's
//! `-G`, default `docker`; when the default group does not exist, root's).
//! When the socket lives inside the exec root (the default,
//! `/run/pier/pier.sock`), that group may traverse the exec root (0710) but
//! list or enter none of its directories (0700).

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::{EngineConfig, EngineError, Result};

/// The data root and what sits right below it.
pub const DATA_ROOT_MODE: u32 = 0o710;
/// `containers/` and `snapshots/`, as Docker's `containers/` and `overlay2/`.
const SHARED_DIR_MODE: u32 = 0o710;
/// Any other directory below the data or exec root.
const PRIVATE_DIR_MODE: u32 = 0o700;
/// Files at the top of the data root: the database, its -wal and -shm.
const PRIVATE_FILE_MODE: u32 = 0o600;
/// Container log files, as dockerd's json-file driver makes them.
pub const LOG_MODE: u32 = 0o640;
/// The exec root.
pub const EXEC_ROOT_MODE: u32 = 0o700;
/// The API socket.
pub const SOCKET_MODE: u32 = 0o660;
/// The group a socket gets when `--group` is not given (dockerd's default).
pub const DEFAULT_SOCKET_GROUP: &str = "docker";

/// Every directory the engine makes at the top of the data root.
const DATA_DIRS: &[&str] = &[
    "containers",
    "snapshots",
    "content",
    "init",
    "volumes",
    "build-run",
    "build-cache-mounts",
    "build-contexts",
    "spare-containers",
    ".trash",
];
/// ... and of the exec root.
const EXEC_DIRS: &[&str] = &["containers", "runtime", "netns", "seccomp", ".trash"];

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| EngineError::from_io(path, e))
}

/// Sets `mode` on `path` unless it already has it (a chmod on every start of
/// a read-only or full filesystem should not be what fails).
fn ensure_mode(path: &Path, mode: u32) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_symlink() => Ok(()),
        Ok(md) if md.mode() & 0o7777 == mode => Ok(()),
        Ok(_) => set_mode(path, mode),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::from_io(path, e)),
    }
}

/// Makes the data and exec roots (if missing) and closes them and what an
/// earlier daemon left in them to other users. Runs before the database is
/// opened: SQLite gives the -wal and -shm files the database file's mode.
pub(crate) fn secure_roots(cfg: &EngineConfig) -> Result<()> {
    for (root, mode) in [
        (&cfg.data_root, DATA_ROOT_MODE),
        (&cfg.exec_root, EXEC_ROOT_MODE),
    ] {
        std::fs::create_dir_all(root).map_err(|e| EngineError::from_io(root, e))?;
        ensure_mode(root, mode)?;
    }
    // Directories made on demand later are made now, closed: a lazy
    // `create_dir_all` would make them 0755 until the next start.
    for (root, names) in [(&cfg.data_root, DATA_DIRS), (&cfg.exec_root, EXEC_DIRS)] {
        for name in names {
            let dir = root.join(name);
            let mode = match *name {
                "containers" | "snapshots" if root == &cfg.data_root => SHARED_DIR_MODE,
                _ => PRIVATE_DIR_MODE,
            };
            match std::fs::DirBuilder::new().mode(mode).create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(EngineError::from_io(&dir, e)),
            }
        }
    }
    // A fresh database is born private (an empty file is an empty database).
    let db = cfg.data_root.join("meta.db");
    if let Err(e) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(&db)
        && e.kind() != std::io::ErrorKind::AlreadyExists
    {
        return Err(EngineError::from_io(&db, e));
    }
    for (path, ft) in read_dir(&cfg.data_root)? {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if ft.is_dir() {
            let mode = match name.as_deref() {
                Some("containers") | Some("snapshots") => SHARED_DIR_MODE,
                _ => PRIVATE_DIR_MODE,
            };
            ensure_mode(&path, mode)?;
        } else if ft.is_file() {
            ensure_mode(&path, PRIVATE_FILE_MODE)?;
        }
    }
    for (path, ft) in read_dir(&cfg.exec_root)? {
        if ft.is_dir() {
            ensure_mode(&path, PRIVATE_DIR_MODE)?;
        }
    }
    // Logs of containers (and of ready-made container directories) that an
    // older daemon created world-readable.
    for dir in [
        cfg.data_root.join("containers"),
        cfg.data_root.join("spare-containers"),
    ] {
        for (ctr, ft) in read_dir(&dir)? {
            if !ft.is_dir() {
                continue;
            }
            for (f, ft) in read_dir(&ctr)? {
                if ft.is_file() && is_log_name(&f) {
                    tighten_log(&f)?;
                }
            }
        }
    }
    Ok(())
}

/// `<id>-json.log` and its rotations, and a spare directory's `log`.
fn is_log_name(p: &Path) -> bool {
    p.file_name()
        .map(|n| n.to_string_lossy())
        .is_some_and(|n| n == "log" || n.contains("-json.log") || n.ends_with(".log"))
}

/// Takes group write and every bit for others off a log file.
fn tighten_log(p: &Path) -> Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(md) if md.mode() & 0o027 != 0 => set_mode(p, md.mode() & 0o7777 & !0o027),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::from_io(p, e)),
    }
}

// Only from secure_roots, while the engine opens, before the API listens.
#[allow(clippy::disallowed_methods)]
fn read_dir(dir: &Path) -> Result<Vec<(std::path::PathBuf, std::fs::FileType)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EngineError::from_io(dir, e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| EngineError::from_io(dir, e))?;
        if let Ok(ft) = ent.file_type() {
            out.push((ent.path(), ft));
        }
    }
    Ok(out)
}

/// The group id for the API socket: `group` by name or number, like
/// dockerd's `-G`. An empty name, or the default group when it does not
/// exist, means root's group; any other unknown group is an error.
pub fn socket_gid(group: &str) -> Result<u32> {
    if group.is_empty() {
        return Ok(0);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => return Ok(g.gid.as_raw()),
        Ok(None) => {}
        Err(e) => {
            return Err(EngineError::invalid_argument(format!(
                "looking up group {group}: {e}"
            )))
        }
    }
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    if group == DEFAULT_SOCKET_GROUP {
        tracing::warn!("group {group} not found: the API socket is for root only");
        return Ok(0);
    }
    Err(EngineError::invalid_argument(format!(
        "group {group} not found (--group)"
    )))
}

/// Gives the socket at `path` its mode and group (root owns it). When the
/// socket sits in the exec root, the group may traverse that (and nothing
/// below it) to reach the socket.
pub fn secure_socket(path: &Path, gid: u32, exec_root: &Path) -> Result<()> {
    std::os::unix::fs::chown(path, Some(0), Some(gid))
        .map_err(|e| EngineError::from_io(path, e))?;
    set_mode(path, SOCKET_MODE)?;
    if path.parent() == Some(exec_root) {
        let md = std::fs::metadata(exec_root).map_err(|e| EngineError::from_io(exec_root, e))?;
        if md.gid() != gid {
            std::os::unix::fs::chown(exec_root, Some(0), Some(gid))
                .map_err(|e| EngineError::from_io(exec_root, e))?;
        }
        ensure_mode(exec_root, 0o710)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names() {
        assert!(is_log_name(Path::new("/c/abc-json.log")));
        assert!(is_log_name(Path::new("/c/abc-json.log.1")));
        assert!(is_log_name(Path::new("/spare/x/log")));
        assert!(!is_log_name(Path::new("/c/hosts")));
        assert!(!is_log_name(Path::new("/c/resolv.conf")));
    }

    #[test]
    fn socket_groups_follow_dockerd() {
        assert_eq!(socket_gid("").unwrap(), 0);
        assert_eq!(socket_gid("root").unwrap(), 0);
        assert_eq!(socket_gid("4242").unwrap(), 4242);
        assert!(socket_gid("pier-no-such-group").is_err());
    }

    #[test]
    fn a_socket_in_the_exec_root_opens_it_to_its_group_only() {
        let t = tempfile::tempdir().unwrap();
        let exec = t.path().join("exec");
        std::fs::create_dir_all(exec.join("containers")).unwrap();
        set_mode(&exec, EXEC_ROOT_MODE).unwrap();
        let sock = exec.join("pier.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        secure_socket(&sock, 4242, &exec).unwrap();
        let md = std::fs::metadata(&sock).unwrap();
        assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o660, 0, 4242));
        let md = std::fs::metadata(&exec).unwrap();
        assert_eq!((md.mode() & 0o7777, md.gid()), (0o710, 4242));
        // Elsewhere, the exec root stays as it is.
        let other = t.path().join("pier.sock");
        let _l2 = std::os::unix::net::UnixListener::bind(&other).unwrap();
        set_mode(&exec, EXEC_ROOT_MODE).unwrap();
        secure_socket(&other, 4242, &exec).unwrap();
        assert_eq!(std::fs::metadata(&exec).unwrap().mode() & 0o7777, 0o700);
    }

    #[test]
    fn an_old_install_is_tightened() {
        let t = tempfile::tempdir().unwrap();
        let cfg = EngineConfig {
            data_root: t.path().join("data"),
            exec_root: t.path().join("exec"),
            cgroup_parent: "x".into(),
            shim_binary: "x".into(),
            network: Default::default(),
            log_defaults: Default::default(),
            cdi_spec_dirs: Vec::new(),
            container_defaults: Default::default(),
        };
        let ctr = cfg.data_root.join("containers/abc");
        std::fs::create_dir_all(&ctr).unwrap();
        std::fs::create_dir_all(cfg.data_root.join("content")).unwrap();
        std::fs::create_dir_all(cfg.exec_root.join("runtime")).unwrap();
        for (p, m) in [
            (cfg.data_root.join("meta.db"), 0o644),
            (cfg.data_root.join("meta.db-wal"), 0o644),
            (ctr.join("abc-json.log"), 0o644),
            (ctr.join("hosts"), 0o644),
        ] {
            std::fs::write(&p, b"").unwrap();
            set_mode(&p, m).unwrap();
        }
        for d in [&cfg.data_root, &cfg.exec_root] {
            set_mode(d, 0o755).unwrap();
        }
        secure_roots(&cfg).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&cfg.data_root), 0o710);
        assert_eq!(mode(&cfg.exec_root), 0o700);
        assert_eq!(mode(&cfg.data_root.join("containers")), 0o710);
        assert_eq!(mode(&cfg.data_root.join("content")), 0o700);
        assert_eq!(mode(&cfg.exec_root.join("runtime")), 0o700);
        assert_eq!(mode(&cfg.data_root.join("meta.db")), 0o600);
        assert_eq!(mode(&cfg.data_root.join("meta.db-wal")), 0o600);
        assert_eq!(mode(&ctr.join("abc-json.log")), 0o640);
        // Bind-mounted into the container: its users must read it.
        assert_eq!(mode(&ctr.join("hosts")), 0o644);
    }
}
