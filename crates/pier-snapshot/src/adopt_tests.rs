//! A container's upper directory adopted as a snapshot equals the snapshot an
//! unpack of its layer tar gives (real overlay mounts: root only).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use pier_reference::Digest;
use rustix::fs::{self as rfs, XattrFlags};

use crate::{SnapshotError, Snapshotter};

fn base_tar() -> (Vec<u8>, Digest) {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8], kind: tar::EntryType, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(1_000_000_000);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, name, data).unwrap();
    };
    add("etc/", b"", tar::EntryType::Directory, 0o755);
    add("etc/conf", b"v1", tar::EntryType::Regular, 0o644);
    add("etc/gone", b"x", tar::EntryType::Regular, 0o644);
    add("lib/", b"", tar::EntryType::Directory, 0o755);
    add("lib/old", b"old", tar::EntryType::Regular, 0o644);
    let v = b.into_inner().unwrap();
    let d = Digest::sha256(&v);
    (v, d)
}

/// Every entry below `root`: type and permission bits, owner, rdev, content
/// or link target, and xattrs.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for ent in fs::read_dir(&dir).unwrap() {
            let p = ent.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let body = if m.is_file() {
                format!("{:?}", fs::read(&p).unwrap())
            } else if m.file_type().is_symlink() {
                fs::read_link(&p).unwrap().display().to_string()
            } else {
                String::new()
            };
            let mut names = vec![0u8; 4096];
            let n = rfs::llistxattr(&p, &mut names[..]).unwrap_or(0);
            let mut xattrs: Vec<String> = names[..n]
                .split(|&b| b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let mut v = vec![0u8; 256];
                    let k = String::from_utf8_lossy(s).into_owned();
                    let l = rfs::lgetxattr(&p, k.as_str(), &mut v[..]).unwrap_or(0);
                    format!("{k}={:?}", &v[..l])
                })
                .collect();
            xattrs.sort();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let links = if m.is_dir() { 0 } else { m.nlink() };
            out.insert(
                rel,
                format!(
                    "{:o} {}:{} rdev={} nlink={links} {body} {xattrs:?}",
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    m.rdev()
                ),
            );
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

fn mount(s: &Snapshotter, key: &str, parent: &Digest) -> std::path::PathBuf {
    let m = s.prepare(key, Some(parent)).unwrap();
    let st = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &m.options()])
        .arg(&m.target)
        .status()
        .unwrap();
    assert!(st.success());
    m.target
}

fn umount(p: &Path) {
    assert!(Command::new("umount").arg(p).status().unwrap().success());
}

#[test]
fn adopted_upper_equals_unpacked_layer() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("not root; skipping overlay test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(dir.path().join("a")).unwrap();
    let other = Snapshotter::open(dir.path().join("b")).unwrap();
    let (bytes, base_id) = base_tar();
    let base = s.apply_layer(None, &bytes[..], &base_id).unwrap();
    other.apply_layer(None, &bytes[..], &base_id).unwrap();

    let root = mount(&s, "step", &base);
    let res = std::panic::catch_unwind(|| {
        // Copy-up (overlay marks it with trusted.overlay.* attributes),
        // whiteout, opaque directory, new files of every kind.
        fs::write(root.join("etc/conf"), b"v2").unwrap();
        fs::remove_file(root.join("etc/gone")).unwrap();
        fs::remove_dir_all(root.join("lib")).unwrap();
        fs::create_dir(root.join("lib")).unwrap();
        fs::write(root.join("lib/new"), b"new").unwrap();
        fs::create_dir_all(root.join("app/deps")).unwrap();
        fs::write(root.join("app/deps/f"), b"data").unwrap();
        fs::set_permissions(root.join("app/deps/f"), fs::Permissions::from_mode(0o4750)).unwrap();
        rfs::chown(
            root.join("app/deps"),
            Some(rfs::Uid::from_raw(1000)),
            Some(rfs::Gid::from_raw(1001)),
        )
        .unwrap();
        rfs::setxattr(root.join("app/deps/f"), "user.k", b"v", XattrFlags::empty()).unwrap();
        fs::hard_link(root.join("app/deps/f"), root.join("app/link")).unwrap();
        std::os::unix::fs::symlink("deps/f", root.join("app/sym")).unwrap();
        std::os::unix::net::UnixListener::bind(root.join("app/sock")).unwrap();
    });
    umount(&root);
    res.unwrap();

    let mut tar = Vec::new();
    let diff_id = s.write_diff_tar("step", &mut tar).unwrap();
    let unpacked = other.apply_layer(Some(&base), &tar[..], &diff_id).unwrap();
    let chain = s.commit_upper_as_snapshot("step", &diff_id).unwrap();
    assert_eq!(chain.as_ref(), Some(&unpacked));
    let chain = chain.unwrap();
    assert_eq!(tree(&s.path(&chain)), tree(&other.path(&unpacked)));
    assert_eq!(s.parent(&chain).unwrap(), Some(base.clone()));
    assert!(!s.upper("step").unwrap().exists());

    // It works as a lower: whiteout and opaque directory hide the base.
    let top = mount(&s, "next", &chain);
    let seen = (
        fs::read(top.join("etc/conf")).unwrap(),
        top.join("etc/gone").exists(),
        top.join("lib/old").exists(),
        fs::read(top.join("app/link")).unwrap(),
    );
    umount(&top);
    assert_eq!(seen, (b"v2".to_vec(), false, false, b"data".to_vec()));
    s.remove_container("next").unwrap();
    s.remove_container("step").unwrap();
}

#[test]
fn whiteout_like_names_are_not_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(dir.path()).unwrap();
    let m = s.prepare("c", None).unwrap();
    fs::write(m.upper.join(".wh.x"), b"").unwrap();
    let mut tar = Vec::new();
    let diff_id = s.write_diff_tar("c", &mut tar).unwrap();
    assert_eq!(s.commit_upper_as_snapshot("c", &diff_id).unwrap(), None);
    assert!(m.upper.join(".wh.x").exists(), "left as it was");
    assert!(matches!(
        s.commit_upper_as_snapshot("gone", &diff_id),
        Err(SnapshotError::NotFound(_))
    ));
}
