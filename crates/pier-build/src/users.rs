//! `--chown` and WORKDIR owners: `user[:group]` resolved against the
//! build root's /etc/passwd and /etc/group, like Docker does.

use std::path::Path;

use crate::error::{BuildError, Result};
use crate::fsutil::resolve_in_root;

fn lookup(root: &Path, file: &str, name: &str) -> Result<Option<(u32, u32)>> {
    let host = resolve_in_root(root, file, true).map_err(BuildError::io("resolving", file))?;
    let Ok(text) = std::fs::read_to_string(&host) else {
        return Ok(None);
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 3 && f[0] == name {
            let id = f[2].parse().ok();
            let gid = f.get(3).and_then(|g| g.parse().ok());
            if let Some(id) = id {
                return Ok(Some((id, gid.unwrap_or(id))));
            }
        }
    }
    Ok(None)
}

/// Resolves `spec` (`user`, `uid`, `user:group`, `uid:gid`...) in `root`.
/// Without a group, the GID is the same number as the UID (Docker's rule
/// for COPY --chown).
pub fn resolve_chown(root: &Path, spec: &str) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => lookup(root, "/etc/passwd", user)?
            .ok_or_else(|| {
                BuildError::Invalid(format!(
                    "unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}"
                ))
            })?
            .0,
    };
    let gid = match group {
        None | Some("") => uid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(root, "/etc/group", g)?
                .ok_or_else(|| {
                    BuildError::Invalid(format!(
                        "unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"
                    ))
                })?
                .0,
        },
    };
    Ok((uid, gid))
}

/// The owner of directories a WORKDIR creates: the USER's uid and primary
/// group; root when USER is empty or cannot be resolved.
pub fn resolve_user(root: &Path, spec: &str) -> Option<(u32, u32)> {
    if spec.is_empty() {
        return None;
    }
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, lookup_by_uid(root, n).unwrap_or(0)),
        Err(_) => lookup(root, "/etc/passwd", user).ok()??,
    };
    let gid = match group {
        None => primary,
        Some(g) => g
            .parse()
            .ok()
            .or_else(|| lookup(root, "/etc/group", g).ok().flatten().map(|x| x.0))?,
    };
    Some((uid, gid))
}

fn lookup_by_uid(root: &Path, uid: u32) -> Option<u32> {
    let host = resolve_in_root(root, "/etc/passwd", true).ok()?;
    let text = std::fs::read_to_string(host).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[2].parse() == Ok(uid))
            .then(|| f[3].parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(t.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let r = |s: &str| resolve_chown(t.path(), s);
        assert_eq!(r("app").unwrap(), (1000, 1000));
        assert_eq!(r("app:staff").unwrap(), (1000, 50));
        assert_eq!(r("10").unwrap(), (10, 10));
        assert_eq!(r("10:20").unwrap(), (10, 20));
        assert_eq!(r("app:7").unwrap(), (1000, 7));
        assert!(r("nobody")
            .unwrap_err()
            .to_string()
            .contains("no such user"));
        assert!(r("app:nogroup").is_err());
        assert_eq!(resolve_user(t.path(), "app"), Some((1000, 1001)));
        assert_eq!(resolve_user(t.path(), "1000"), Some((1000, 1001)));
        assert_eq!(resolve_user(t.path(), ""), None);
    }
}
