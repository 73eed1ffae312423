//! Resolving `--user` against the container's /etc/passwd and /etc/group.

use std::io;
use std::path::{Component, Path, PathBuf};

/// The ids a container process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("uids and gids must be in range 0-2147483647")]
    Range,
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

const MAX_ID: u64 = 2_147_483_647;
const MAX_SYMLINKS: usize = 40;

/// Resolves `path` (absolute, as seen inside the container) to a host path under
/// `root`, following symlinks as if `root` were `/`, so no link can point outside.
pub fn resolve_in_root(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut resolved = PathBuf::new(); // relative to root
    let mut pending: Vec<PathBuf> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(PathBuf::from(s)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c.as_os_str() == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&c);
        let host = root.join(&candidate);
        match std::fs::symlink_metadata(&host) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links resolving {}",
                        path.display()
                    )));
                }
                let target = std::fs::read_link(&host)?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for comp in target.components().rev() {
                    match comp {
                        Component::Normal(s) => pending.push(PathBuf::from(s)),
                        Component::ParentDir => pending.push(PathBuf::from("..")),
                        _ => {}
                    }
                }
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

fn read_db(root: &Path, file: &str) -> Result<Option<String>, UserError> {
    let p = resolve_in_root(root, Path::new(file)).map_err(|e| UserError::Io {
        path: root.join(file.trim_start_matches('/')),
        source: e,
    })?;
    match std::fs::read_to_string(&p) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(UserError::Io { path: p, source: e }),
    }
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn parse_passwd(s: &str) -> Vec<PasswdEntry> {
    s.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_group(s: &str) -> Vec<GroupEntry> {
    s.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|x| !x.is_empty())
                            .map(|x| x.trim().to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_id(s: &str) -> Option<Result<u32, UserError>> {
    let n: i128 = s.parse().ok()?;
    Some(if n < 0 || n > MAX_ID as i128 {
        Err(UserError::Range)
    } else {
        Ok(n as u32)
    })
}

/// Resolves Docker's `--user` forms ("", "name", "uid", "name:group", "uid:gid")
/// against the rootfs's own databases.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<ResolvedUser, UserError> {
    let (user_arg, group_arg) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_arg = if user_arg.is_empty() { "0" } else { user_arg };
    let passwd = read_db(rootfs, "/etc/passwd")?
        .map(|s| parse_passwd(&s))
        .unwrap_or_default();

    let mut out = ResolvedUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".into(),
    };
    let numeric_uid = parse_id(user_arg).transpose()?;
    let entry = passwd.iter().find(|e| match numeric_uid {
        Some(uid) => e.uid == uid,
        None => e.name == user_arg,
    });
    match (entry, numeric_uid) {
        (Some(e), _) => {
            out.uid = e.uid;
            out.gid = e.gid;
            if !e.home.is_empty() {
                out.home = e.home.clone();
            }
        }
        (None, Some(uid)) => out.uid = uid,
        (None, None) => return Err(UserError::NoUser(user_arg.to_string())),
    }

    let groups = read_db(rootfs, "/etc/group")?;
    match group_arg {
        Some(g) if !g.is_empty() => {
            let numeric = parse_id(g).transpose()?;
            let found = groups.as_deref().map(parse_group).and_then(|gs| {
                gs.into_iter().find(|e| match numeric {
                    Some(gid) => e.gid == gid,
                    None => e.name == g,
                })
            });
            out.gid = match (found, numeric) {
                (Some(e), _) => e.gid,
                (None, Some(gid)) => gid,
                (None, None) => return Err(UserError::NoGroup(g.to_string())),
            };
        }
        _ => {
            if let (Some(e), Some(gs)) = (entry, groups.as_deref()) {
                for g in parse_group(gs) {
                    if g.members.contains(&e.name)
                        && g.gid != out.gid
                        && !out.additional_gids.contains(&g.gid)
                    {
                        out.additional_gids.push(g.gid);
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn rootfs() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("etc")).unwrap();
        fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
             app:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nwheel:x:10:root,app\naudio:x:29:app\napp:x:1000:\nnogroup:x:65534:\n",
        )
        .unwrap();
        t
    }

    #[test]
    fn forms() {
        let t = rootfs();
        let r = resolve_user(t.path(), "").unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (0, 0, "/root"));
        assert_eq!(r.additional_gids, [10]);
        let r = resolve_user(t.path(), "app").unwrap();
        assert_eq!((r.uid, r.gid), (1000, 1000));
        assert_eq!(r.additional_gids, [10, 29]);
        assert_eq!(r.home, "/home/app");
        let r = resolve_user(t.path(), "1000").unwrap();
        assert_eq!((r.uid, r.gid), (1000, 1000));
        let r = resolve_user(t.path(), "4242").unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (4242, 0, "/"));
        let r = resolve_user(t.path(), "app:audio").unwrap();
        assert_eq!((r.uid, r.gid), (1000, 29));
        assert!(r.additional_gids.is_empty());
        let r = resolve_user(t.path(), "5:7").unwrap();
        assert_eq!((r.uid, r.gid), (5, 7));
    }

    #[test]
    fn errors_match_docker() {
        let t = rootfs();
        let e = resolve_user(t.path(), "x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find user x: no matching entries in passwd file"
        );
        let e = resolve_user(t.path(), "app:nope").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find group nope: no matching entries in group file"
        );
        assert!(matches!(
            resolve_user(t.path(), "-1"),
            Err(UserError::Range)
        ));
    }

    #[test]
    fn no_passwd_file() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(resolve_user(t.path(), "12").unwrap().uid, 12);
        assert!(resolve_user(t.path(), "root").is_err());
    }

    #[test]
    fn symlinks_stay_inside_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("data")).unwrap();
        fs::write(root.join("data/pw"), "evil:x:7:7::/e:/bin/sh\n").unwrap();
        // An absolute link resolves inside the rootfs, never to the host's /etc.
        std::os::unix::fs::symlink("/data/pw", root.join("etc/passwd")).unwrap();
        let r = resolve_user(&root, "evil").unwrap();
        assert_eq!(r.uid, 7);
        // ".." cannot climb above the root.
        std::os::unix::fs::symlink("../../../../etc/shadow", root.join("etc/group")).unwrap();
        assert_eq!(
            resolve_in_root(&root, Path::new("/etc/group")).unwrap(),
            root.join("etc/shadow")
        );
        assert!(resolve_user(&root, "evil").is_ok());
    }
}
