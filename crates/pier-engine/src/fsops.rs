//! Work on a container's files: /etc files, export, diff, commit, cp, top, stats.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use pier_api::image::History;
use pier_api::models::{ChangeType, ContainerTopResponse, FilesystemChange};

use crate::records::{ContainerRecord, StoredLayer};
use crate::util::now_rfc3339;
use crate::{Engine, EngineError, Result};

/// True when `path` is the root of a mount (its device differs from its parent's).
pub(crate) fn is_mountpoint(path: &Path) -> bool {
    let (Ok(m), Some(parent)) = (std::fs::symlink_metadata(path), path.parent()) else {
        return false;
    };
    match std::fs::metadata(parent) {
        Ok(p) => m.dev() != p.dev() || m.ino() == p.ino(),
        Err(_) => false,
    }
}

fn write_file(path: &str, data: &str) -> Result<()> {
    std::fs::write(path, data).map_err(|e| EngineError::from_io(Path::new(path), e))
}

/// Docker's default resolvers when the host only has local ones.
const DEFAULT_DNS: &[&str] = &["8.8.8.8", "8.8.4.4"];

/// The default bridge's resolv.conf: the host's, with local resolvers dropped,
/// and `--dns`, `--dns-search` and `--dns-option` replacing the host's
/// nameserver, search/domain and options lines when given (Docker's rules).
pub(crate) fn resolv_conf(
    host: &str,
    dns: &[String],
    search: &[String],
    opts: &[String],
) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let t = line.trim();
        if (!search.is_empty() && (t.starts_with("search") || t.starts_with("domain")))
            || (!opts.is_empty() && t.starts_with("options"))
        {
            continue;
        }
        if let Some(ns) = t.strip_prefix("nameserver") {
            let ns = ns.trim();
            if !dns.is_empty() || ns.starts_with("127.") || ns == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    for d in dns {
        out.push_str(&format!("nameserver {d}\n"));
        servers += 1;
    }
    if servers == 0 {
        for d in DEFAULT_DNS {
            out.push_str(&format!("nameserver {d}\n"));
        }
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !opts.is_empty() {
        out.push_str(&format!("options {}\n", opts.join(" ")));
    }
    out
}

/// Writes the container's /etc/hostname, /etc/hosts and /etc/resolv.conf.
pub(crate) fn write_etc_files(rec: &ContainerRecord) -> Result<()> {
    let hostname = rec
        .config
        .hostname
        .clone()
        .unwrap_or_else(|| rec.id[..12].to_string());
    write_file(&rec.hostname_path, &format!("{hostname}\n"))?;
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    hosts.push_str(&crate::network::hosts::hosts_lines(rec));
    for h in rec.host_config.extra_hosts.iter().flatten() {
        if let Some((name, ip)) = h.split_once(':') {
            let ip = if ip == "host-gateway" {
                crate::network::hosts::host_gateway(rec)
            } else {
                ip.to_string()
            };
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    write_file(&rec.hosts_path, &hosts)?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let host = if rec.host_config.network_mode.as_deref() == Some("host") {
        host_resolv
    } else if let Some(r) = crate::network::hosts::resolv_conf_for(rec, &host_resolv) {
        r
    } else {
        let h = &rec.host_config;
        resolv_conf(
            &host_resolv,
            h.dns.as_deref().unwrap_or(&[]),
            h.dns_search.as_deref().unwrap_or(&[]),
            h.dns_options.as_deref().unwrap_or(&[]),
        )
    };
    write_file(&rec.resolv_conf_path, &host)?;
    Ok(())
}

/// Docker's "init layer": the mount points the runtime needs (/etc/hosts and
/// friends, /proc, /sys, /dev), made in a read-only layer between the image
/// and the container's writable layer, so that `diff` and `commit` never see
/// them. A path the image has as a symlink is left alone.
///
/// Its content depends on the image only, so one layer per image serves all
/// its containers (Docker makes one per container: a dozen inodes created and
/// deleted per run). It is built aside and renamed into place, so concurrent
/// starts of the same image never see half a layer, and a layer that exists
/// is complete: no marker inside it, where the container would see it.
// Part of prepare_bundle, which runs on a blocking thread.
#[allow(clippy::disallowed_methods)]
pub(crate) fn make_init_layer(init: &Path, image_lowers: &[PathBuf]) -> Result<()> {
    if init.is_dir() {
        drop_old_marker(init);
        return Ok(());
    }
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = init.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}-{n}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    build_init_layer(&tmp, image_lowers)?;
    match std::fs::rename(&tmp, init) {
        Ok(()) => Ok(()),
        // Another start of the same image won the race.
        Err(_) if init.is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(EngineError::from_io(init, e))
        }
    }
}

fn build_init_layer(init: &Path, image_lowers: &[PathBuf]) -> Result<()> {
    let is_symlink_in_image = |rel: &str| {
        image_lowers.iter().find_map(|l| {
            std::fs::symlink_metadata(l.join(rel))
                .ok()
                .map(|m| m.file_type().is_symlink())
        }) == Some(true)
    };
    let mkdir = |rel: &str| -> Result<()> {
        let p = init.join(rel);
        std::fs::create_dir_all(&p).map_err(|e| EngineError::from_io(&p, e))
    };
    mkdir("")?;
    for d in ["proc", "sys", "dev"] {
        if !is_symlink_in_image(d) {
            mkdir(d)?;
        }
    }
    if !is_symlink_in_image("etc") {
        mkdir("etc")?;
        for f in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
            if !is_symlink_in_image(f) {
                let p = init.join(f);
                std::fs::write(&p, b"").map_err(|e| EngineError::from_io(&p, e))?;
            }
        }
    }
    // As Docker's init layer has it: an empty file, 0755.
    let p = init.join(".dockerenv");
    std::fs::write(&p, b"").map_err(|e| EngineError::from_io(&p, e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| EngineError::from_io(&p, e))?;
    }
    // Directories keep the image's modes where it has them, so the init
    // layer does not change what the container sees.
    for d in ["proc", "sys", "dev", "etc"] {
        if let Some(m) = image_lowers
            .iter()
            .find_map(|l| std::fs::symlink_metadata(l.join(d)).ok())
            .filter(|m| m.is_dir())
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(
                init.join(d),
                std::fs::Permissions::from_mode(m.mode() & 0o7777),
            );
        }
    }
    Ok(())
}

/// Layers made before the marker moved out carry a `/.pier-init` file that
/// every container of the image would list in its root.
fn drop_old_marker(init: &Path) {
    let old = init.join(".pier-init");
    match std::fs::remove_file(&old) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("removing {}: {e}", old.display()),
    }
}

/// Resolves `path` inside `root` like a chroot would, following symlinks
/// but never leaving `root` (Docker's FollowSymlinkInScope).
pub(crate) fn resolve_in_root(root: &Path, path: &str) -> Result<PathBuf> {
    let mut resolved = PathBuf::from("/");
    let mut pending: Vec<String> = Path::new(path)
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let host = root.join(candidate.strip_prefix("/").unwrap_or(&candidate));
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 255 {
                    return Err(EngineError::invalid_argument(format!(
                        "too many symlinks resolving {path}"
                    )));
                }
                let target =
                    std::fs::read_link(&host).map_err(|e| EngineError::from_io(&host, e))?;
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(s) => pending.push(s.to_string_lossy().into_owned()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved.strip_prefix("/").unwrap_or(&resolved)))
}

/// Resolves `path` in the container as its processes see it: inside a
/// volume or bind mount when one covers the path (those are not visible in
/// the root seen from the host), otherwise inside the root. Returns the
/// containment root and the resolved host path.
pub(crate) fn resolve_with_mounts(
    rec: &ContainerRecord,
    root: &Path,
    path: &str,
) -> Result<(PathBuf, PathBuf)> {
    let clean: PathBuf = Path::new("/").join(path).components().collect();
    let best = rec
        .mounts
        .iter()
        .filter(|m| m.kind != "tmpfs" && clean.starts_with(&m.destination))
        .max_by_key(|m| m.destination.len());
    match best {
        Some(m) => {
            let rest = clean.strip_prefix(&m.destination).unwrap_or(Path::new(""));
            let src = PathBuf::from(&m.source);
            let host = resolve_in_root(&src, &rest.display().to_string())?;
            Ok((src, host))
        }
        None => Ok((root.to_path_buf(), resolve_in_root(root, path)?)),
    }
}

impl Engine {
    /// Runs `f` with the container's root mounted (mounting it for the call
    /// when the container is not running).
    fn with_rootfs<T>(
        &self,
        rec: &ContainerRecord,
        f: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<T> {
        let merged = self.merged_path(&rec.id);
        if is_mountpoint(&merged) {
            return f(&merged);
        }
        let root = self.mount_rootfs(rec)?;
        let r = f(&root);
        if !self.is_running(&rec.id) {
            let _ = pier_sys::unmount(&root, true);
        }
        r
    }

    /// `GET /containers/{id}/export`: the whole root as a tar. Blocking.
    pub fn export_container(&self, key: &str, out: &mut dyn Write) -> Result<()> {
        let rec = self.find_container(key)?;
        self.with_rootfs(&rec, |root| {
            pier_snapshot::export_tar(root, out)
                .map_err(|e| EngineError::internal(format!("export {}", rec.id)).with_source(e))
        })?;
        self.container_event("export", &rec, &[]);
        Ok(())
    }

    /// `GET /containers/{id}/changes`.
    pub fn container_changes(&self, key: &str) -> Result<Vec<FilesystemChange>> {
        let rec = self.find_container(key)?;
        let changes = self
            .snaps
            .diff(&rec.id)
            .map_err(|e| EngineError::internal(format!("diff {}", rec.id)).with_source(e))?;
        Ok(changes
            .into_iter()
            .map(|c| FilesystemChange {
                path: c.path,
                kind: match c.kind {
                    pier_snapshot::ChangeKind::Modified => ChangeType::_0,
                    pier_snapshot::ChangeKind::Added => ChangeType::_1,
                    pier_snapshot::ChangeKind::Deleted => ChangeType::_2,
                },
            })
            .collect())
    }

    /// `POST /commit`: the container's writable layer becomes a new image. Blocking.
    pub fn commit_container(
        &self,
        key: &str,
        reference: Option<&str>,
        author: Option<&str>,
        comment: Option<&str>,
        changes: &[String],
        config: Option<pier_api::models::ContainerConfig>,
    ) -> Result<String> {
        let rec = self.find_container(key)?;
        let base = self.find_image(&rec.image_id)?;
        let (diff_id, size) = self.store_diff_layer(&rec.id)?;
        let blob = diff_id.clone();
        let mut cfg = base.config.clone();
        // As Docker's commit records them.
        cfg.container = Some(rec.id.clone());
        cfg.container_config = Some(rec.config.clone());
        let mut c = config.unwrap_or_else(|| rec.config.clone());
        crate::changes::apply(&mut c, changes)?;
        c.hostname = None;
        c.image = None;
        cfg.config = Some(c);
        let now = now_rfc3339();
        cfg.created = Some(now.clone());
        cfg.author = author.map(str::to_string).filter(|a| !a.is_empty());
        cfg.comment = comment.map(str::to_string).filter(|a| !a.is_empty());
        cfg.rootfs.diff_ids.push(diff_id.to_string());
        cfg.history.push(History {
            created: Some(now),
            created_by: Some(
                format!("{} {}", rec.path, rec.args.join(" "))
                    .trim()
                    .to_string(),
            ),
            author: cfg.author.clone(),
            comment: cfg.comment.clone(),
            empty_layer: false,
        });
        let mut layers = base.layers.clone();
        layers.push(StoredLayer {
            blob: blob.to_string(),
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            size,
            diff_id: diff_id.to_string(),
        });
        let tags: Vec<String> = reference
            .filter(|r| !r.is_empty())
            .map(|r| crate::names::parse_ref(r).map(|r| r.full()))
            .transpose()?
            .into_iter()
            .collect();
        let img = self.create_image(&cfg, layers, &tags, &base.id)?;
        self.container_event("commit", &rec, &[]);
        Ok(img.id)
    }

    /// `GET /containers/{id}/archive`: a tar of `path` and its stat (HEAD: `out`
    /// is None). Blocking. Everything is reached by descriptor from the container's
    /// root (see [`crate::cpfs`]), so a container racing the copy cannot lead it out.
    pub fn archive_get(
        &self,
        key: &str,
        path: &str,
        out: Option<&mut dyn Write>,
    ) -> Result<serde_json::Value> {
        let rec = self.find_container(key)?;
        self.with_rootfs(&rec, |merged| {
            let view = crate::cpfs::View::open(&rec, key, merged)?;
            // Docker resolves the final component too when the path ends in `/` or
            // `/.`; otherwise a symlink is archived as itself.
            let follow = path.ends_with('/') || path.ends_with("/.");
            let found = view.walk(path, follow)?;
            let clean: PathBuf = Path::new("/").join(path).components().collect();
            let name = clean
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "/".into());
            let is_link = rustix::fs::FileType::from_raw_mode(found.st.st_mode)
                == rustix::fs::FileType::Symlink;
            // Where the link leads inside the container (Docker's linkTarget).
            let link_target = if is_link {
                view.walk(path, true)
                    .map(|t| t.logical.display().to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let stat = serde_json::json!({
                "name": name,
                "size": found.st.st_size,
                "mode": crate::cpfs::go_mode(&found.st),
                "mtime": crate::util::rfc3339_from_unix(found.st.st_mtime),
                "linkTarget": link_target,
            });
            if let Some(out) = out {
                // As Docker names them: `dir/.` is its contents (`./x`), the root is
                // `/` with `/x` below it (the docker CLI rebases on that), anything
                // else is named by its base name.
                let top = if path.ends_with("/.") {
                    ".".to_string()
                } else {
                    name
                };
                view.write_tar(&found, top.as_bytes(), out)?;
            }
            Ok(stat)
        })
    }

    /// `PUT /containers/{id}/archive`: extracts a tar into directory `path`. Blocking.
    pub fn archive_put(
        &self,
        key: &str,
        path: &str,
        preserve_owner: bool,
        input: &mut dyn std::io::Read,
    ) -> Result<()> {
        let rec = self.find_container(key)?;
        if rec.host_config.readonly_rootfs.unwrap_or(false) {
            return Err(EngineError::conflict(
                "container rootfs is marked read-only",
            ));
        }
        self.with_rootfs(&rec, |merged| {
            let view = crate::cpfs::View::open(&rec, key, merged)?;
            let found = view.walk(path, true)?;
            if rustix::fs::FileType::from_raw_mode(found.st.st_mode)
                != rustix::fs::FileType::Directory
            {
                return Err(EngineError::not_found(format!(
                    "Could not find the file {path} in container {key}"
                )));
            }
            if found.read_only {
                return Err(EngineError::conflict(format!(
                    "mounted volume is marked read-only: {}",
                    found.logical.display()
                )));
            }
            let mut body = self.spool_checked(input, path)?;
            // Extraction resolves `rel` again from the tree's descriptor with
            // RESOLVE_IN_ROOT on every entry: a rename meanwhile stays inside.
            let what = PathBuf::from(format!("container {}", rec.id));
            pier_snapshot::extract_at(found.tree, &what, &found.rel, &mut body, preserve_owner)
                .map_err(|e| EngineError::invalid_argument(format!("extracting to {path}: {e}")))
        })
    }

    /// Copies an uploaded archive into an unnamed file under the data root and checks
    /// all of it, so that a refused entry (a GNU sparse file, a path climbing out)
    /// is found before anything is written into the container. Returns the file,
    /// rewound.
    fn spool_checked(&self, input: &mut dyn std::io::Read, path: &str) -> Result<std::fs::File> {
        use rustix::fs::{Mode, OFlags};
        use std::io::{Seek, SeekFrom};
        let root = self.data_root();
        let fd = rustix::fs::open(
            root,
            OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| EngineError::from_io(root, e.into()))?;
        let mut f = std::fs::File::from(fd);
        std::io::copy(input, &mut f).map_err(|e| {
            EngineError::invalid_argument(format!("reading the archive for {path}: {e}"))
        })?;
        f.seek(SeekFrom::Start(0))
            .map_err(|e| EngineError::from_io(root, e))?;
        pier_snapshot::check_archive(&mut f)
            .map_err(|e| EngineError::invalid_argument(format!("extracting to {path}: {e}")))?;
        f.seek(SeekFrom::Start(0))
            .map_err(|e| EngineError::from_io(root, e))?;
        Ok(f)
    }

    /// `GET /containers/{id}/top`: `ps` of the container's processes.
    pub fn top(&self, key: &str, ps_args: Option<&str>) -> Result<ContainerTopResponse> {
        let rec = self.find_container(key)?;
        if !rec.state.running() {
            return Err(EngineError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let pids = crate::system::settled_cgroup_pids(&rec.cgroups_path);
        let args = ps_args.filter(|a| !a.is_empty()).unwrap_or("-ef");
        let out = std::process::Command::new("ps")
            .args(args.split_whitespace())
            .output()
            .map_err(|e| EngineError::internal("running ps").with_source(e))?;
        if !out.status.success() {
            return Err(EngineError::internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let pid_col = header
            .iter()
            .position(|h| h == "PID")
            .ok_or_else(|| EngineError::invalid_argument("Couldn't find PID field in ps output"))?;
        let mut procs = Vec::new();
        for line in lines {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < header.len() {
                continue;
            }
            let pid: u32 = fields[pid_col].parse().unwrap_or(0);
            if !pids.contains(&pid) {
                continue;
            }
            let mut row: Vec<String> = fields[..header.len() - 1]
                .iter()
                .map(|s| s.to_string())
                .collect();
            row.push(fields[header.len() - 1..].join(" "));
            procs.push(row);
        }
        Ok(ContainerTopResponse {
            titles: Some(header),
            processes: Some(procs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        std::os::unix::fs::symlink("../../../../outside", root.join("etc/esc")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/link/passwd").unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(root, "/etc/esc").unwrap(),
            root.join("outside")
        );
        assert_eq!(resolve_in_root(root, "/../../x").unwrap(), root.join("x"));
    }

    #[test]
    fn resolv_conf_drops_local_resolvers() {
        let r = resolv_conf("nameserver 127.0.0.53\nsearch lan\n", &[], &[], &[]);
        assert_eq!(r, "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let r = resolv_conf("nameserver 10.0.0.1\n", &[], &[], &[]);
        assert_eq!(r, "nameserver 10.0.0.1\n");
        let r = resolv_conf("nameserver 10.0.0.1\n", &["1.1.1.1".into()], &[], &[]);
        assert_eq!(r, "nameserver 1.1.1.1\n");
    }

    #[test]
    fn resolv_conf_search_and_options_replace_the_hosts() {
        let host = "nameserver 10.0.0.1\nsearch lan\noptions edns0\n";
        let r = resolv_conf(host, &[], &["a.test".into(), "b.test".into()], &[]);
        assert_eq!(
            r,
            "nameserver 10.0.0.1\noptions edns0\nsearch a.test b.test\n"
        );
        let r = resolv_conf(host, &[], &[], &["ndots:2".into()]);
        assert_eq!(r, "nameserver 10.0.0.1\nsearch lan\noptions ndots:2\n");
    }
}
