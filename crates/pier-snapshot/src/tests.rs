//! Unpacking, containment against hostile layers, and real overlay mounts (we run as
//! root on the dev VM; mount tests skip themselves otherwise).

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use pier_reference::{chain_id, Digest};

use super::*;
use crate::changes::{is_opaque, is_whiteout};

/// Builds tars entry by entry, including the hostile names the tar crate refuses.
#[derive(Default)]
struct TarBuf {
    b: Option<tar::Builder<Vec<u8>>>,
}

impl TarBuf {
    fn new() -> Self {
        TarBuf {
            b: Some(tar::Builder::new(Vec::new())),
        }
    }

    fn raw(
        &mut self,
        kind: tar::EntryType,
        name: &str,
        link: Option<&str>,
        data: &[u8],
        mode: u32,
    ) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        assert!(name.len() < 100);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1001);
        h.set_mtime(1_000_000_000);
        if let Some(l) = link {
            h.set_link_name_literal(l).unwrap();
        }
        h.set_cksum();
        self.b.as_mut().unwrap().append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(tar::EntryType::Regular, name, None, data, 0o640)
    }

    fn dir(&mut self, name: &str) -> &mut Self {
        self.raw(tar::EntryType::Directory, name, None, b"", 0o751)
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(tar::EntryType::Symlink, name, Some(target), b"", 0o777)
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(tar::EntryType::Link, name, Some(target), b"", 0o644)
    }

    fn xattr_file(&mut self, name: &str, key: &str, value: &[u8]) -> &mut Self {
        let rec = crate::changes::pax_record(&format!("SCHILY.xattr.{key}"), value);
        self.raw(tar::EntryType::XHeader, "PaxHeaders/x", None, &rec, 0o644);
        self.file(name, b"with xattr")
    }

    fn finish(&mut self) -> (Vec<u8>, Digest) {
        let v = self.b.take().unwrap().into_inner().unwrap();
        let d = Digest::sha256(&v);
        (v, d)
    }
}

struct Env {
    dir: tempfile::TempDir,
    s: Snapshotter,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(dir.path().join("snap")).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(dir.path().join("outside/secret"), b"secret").unwrap();
        Env { dir, s }
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    /// The outside directory still holds exactly the one untouched file.
    fn assert_outside_untouched(&self) {
        let names: Vec<_> = fs::read_dir(self.outside())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["secret"]);
        let m = fs::metadata(self.outside().join("secret")).unwrap();
        assert_eq!(m.nlink(), 1);
        assert_eq!(fs::read(self.outside().join("secret")).unwrap(), b"secret");
    }

    fn apply(&self, parent: Option<&Digest>, t: &mut TarBuf) -> Result<Digest> {
        let (bytes, d) = t.finish();
        self.s.apply_layer(parent, &bytes[..], &d)
    }

    fn no_temp_left(&self) {
        let tmp: Vec<_> = fs::read_dir(self.s.root().join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(".tmp-"))
            .collect();
        assert!(tmp.is_empty(), "{tmp:?}");
    }
}

#[test]
fn unpack_preserves_metadata() {
    let env = Env::new();
    let mut t = TarBuf::new();
    t.dir("etc/")
        .file("etc/passwd", b"root:x:0:0\n")
        .raw(tar::EntryType::Regular, "bin/su", None, b"su", 0o4755)
        .symlink("etc/link", "/etc/passwd")
        .hardlink("etc/hard", "etc/passwd")
        .raw(tar::EntryType::Fifo, "run/fifo", None, b"", 0o600)
        .raw(tar::EntryType::Char, "dev/null", None, b"", 0o666)
        .xattr_file("etc/x", "user.pier", b"yes");
    let chain = env.apply(None, &mut t).unwrap();
    let fs_dir = env.s.path(&chain);

    let m = fs::metadata(fs_dir.join("etc/passwd")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o640);
    assert_eq!((m.uid(), m.gid()), (1000, 1001));
    assert_eq!(m.mtime(), 1_000_000_000);
    assert_eq!(m.nlink(), 2, "hardlink shares the inode");
    // chmod after chown keeps setuid
    let su = fs::metadata(fs_dir.join("bin/su")).unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o4755);
    let d = fs::metadata(fs_dir.join("etc")).unwrap();
    assert_eq!(d.permissions().mode() & 0o7777, 0o751);
    assert_eq!(d.mtime(), 1_000_000_000, "dir mtime set after its children");
    assert_eq!(
        fs::read_link(fs_dir.join("etc/link")).unwrap(),
        Path::new("/etc/passwd")
    );
    let l = fs::symlink_metadata(fs_dir.join("etc/link")).unwrap();
    assert_eq!((l.uid(), l.mtime()), (1000, 1_000_000_000));
    assert!(fs::symlink_metadata(fs_dir.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(fs::symlink_metadata(fs_dir.join("dev/null"))
        .unwrap()
        .file_type()
        .is_char_device());
    let mut buf = [0u8; 16];
    let n = rustix::fs::getxattr(fs_dir.join("etc/x"), "user.pier", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"yes");
    env.no_temp_left();
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let env = Env::new();
    let mut t = TarBuf::new();
    t.file("a/.wh.gone", b"")
        .file("b/.wh..wh..opq", b"")
        .file("b/new", b"n")
        .file("c/.wh..wh.plnk", b"");
    let chain = env.apply(None, &mut t).unwrap();
    let fs_dir = env.s.path(&chain);
    assert!(is_whiteout(
        &fs::symlink_metadata(fs_dir.join("a/gone")).unwrap()
    ));
    assert!(!fs_dir.join("a/.wh.gone").exists());
    assert!(is_opaque(&fs_dir.join("b")));
    assert!(!fs_dir.join("b/.wh..wh..opq").exists());
    assert!(fs_dir.join("b/new").is_file());
    assert!(!fs_dir.join("c/.wh..wh.plnk").exists());
}

#[test]
fn chain_ids_parents_and_lowers() {
    let env = Env::new();
    let c1 = env.apply(None, TarBuf::new().file("one", b"1")).unwrap();
    let (l2, d2) = TarBuf::new().file("two", b"2").finish();
    let c2 = env.s.apply_layer(Some(&c1), &l2[..], &d2).unwrap();
    assert_eq!(
        c1,
        Digest::sha256(&TarBuf::new().file("one", b"1").finish().0)
    );
    assert_eq!(c2, pier_reference::chain_id(&[c1.clone(), d2.clone()]));
    assert_eq!(env.s.parent(&c2).unwrap(), Some(c1.clone()));
    assert_eq!(env.s.parent(&c1).unwrap(), None);
    assert_eq!(
        env.s.lowers(&c2).unwrap(),
        vec![env.s.path(&c2), env.s.path(&c1)]
    );
    assert_eq!(
        env.s.lowers_chain(&c2).unwrap(),
        vec![c2.clone(), c1.clone()]
    );
    // Idempotent.
    assert_eq!(env.s.apply_layer(Some(&c1), &l2[..], &d2).unwrap(), c2);
    let mut all = vec![c1.clone(), c2.clone()];
    all.sort();
    assert_eq!(env.s.list().unwrap(), all);
    // A parent with children stays.
    assert!(matches!(env.s.remove(&c1), Err(SnapshotError::InUse(..))));
    env.s.remove(&c2).unwrap();
    env.s.remove(&c1).unwrap();
    assert!(env.s.list().unwrap().is_empty());
    assert!(env.s.remove(&c1).unwrap_err().is_not_found());
    let missing = Digest::sha256(b"nope");
    assert!(env
        .s
        .apply_layer(Some(&missing), &l2[..], &d2)
        .unwrap_err()
        .is_not_found());
}

#[test]
fn diff_id_mismatch_keeps_nothing() {
    let env = Env::new();
    let (bytes, _) = TarBuf::new().file("f", b"x").finish();
    let wrong = Digest::sha256(b"other");
    let err = env.s.apply_layer(None, &bytes[..], &wrong).unwrap_err();
    assert!(matches!(err, SnapshotError::DiffIdMismatch { .. }), "{err}");
    assert!(!env.s.exists(&wrong));
    env.no_temp_left();
}

#[test]
fn cleanup_removes_half_unpacks() {
    let env = Env::new();
    fs::create_dir_all(env.s.root().join("snapshots/.tmp-1-1/fs/x")).unwrap();
    assert_eq!(env.s.cleanup().unwrap(), 1);
    env.no_temp_left();
}

// ---- hostile layers: nothing may land outside the snapshot ----

#[test]
fn dotdot_is_refused() {
    let env = Env::new();
    for name in ["../evil", "a/../../evil", "./../outside/secret"] {
        let err = env
            .apply(None, TarBuf::new().file(name, b"pwned"))
            .unwrap_err();
        assert!(matches!(err, SnapshotError::Breakout(_)), "{name}: {err}");
        assert!(
            err.to_string().contains("outside of the layer root"),
            "{err}"
        );
        assert!(err.is_invalid_layer());
    }
    env.assert_outside_untouched();
    env.no_temp_left();
    assert!(!env.dir.path().join("evil").exists());
    assert!(!env.s.root().join("evil").exists());
}

#[test]
fn absolute_paths_are_contained() {
    let env = Env::new();
    let abs = format!("{}/pwned", env.outside().display());
    let chain = env.apply(None, TarBuf::new().file(&abs, b"pwned")).unwrap();
    env.assert_outside_untouched();
    assert!(env
        .s
        .path(&chain)
        .join(abs.trim_start_matches('/'))
        .is_file());
}

#[test]
fn write_through_symlink_stays_inside() {
    let env = Env::new();
    let out = env.outside().display().to_string();
    // Absolute and relative symlinks out, then writes through them.
    for target in [out.clone(), format!("../../../../../../../../..{out}")] {
        let mut t = TarBuf::new();
        t.symlink("link", &target)
            .file("link/pwned", b"pwned")
            .file("link/secret", b"over");
        let res = env.apply(None, &mut t);
        env.assert_outside_untouched();
        if let Ok(c) = res {
            // Docker-like containment: the write went to the same path inside the root.
            let inside = env.s.path(&c).join(out.trim_start_matches('/'));
            assert!(inside.join("pwned").is_file());
        } else {
            assert!(res.unwrap_err().to_string().contains("dangling symlink"));
        }
    }
    // A symlinked directory that exists inside the root is followed, inside.
    let mut t = TarBuf::new();
    t.dir("real/")
        .symlink("alias", "/real")
        .file("alias/f", b"ok");
    let c = env.apply(None, &mut t).unwrap();
    assert!(env.s.path(&c).join("real/f").is_file());
    env.assert_outside_untouched();
}

#[test]
fn replacing_a_symlink_does_not_write_its_target() {
    let env = Env::new();
    let secret = format!("{}/secret", env.outside().display());
    let mut t = TarBuf::new();
    t.symlink("victim", &secret).file("victim", b"overwritten");
    let c = env.apply(None, &mut t).unwrap();
    assert_eq!(
        fs::read(env.s.path(&c).join("victim")).unwrap(),
        b"overwritten"
    );
    env.assert_outside_untouched();
}

#[test]
fn hardlink_escapes_fail() {
    let env = Env::new();
    let secret = format!("{}/secret", env.outside().display());
    let err = env
        .apply(None, TarBuf::new().hardlink("h", "../../../outside/secret"))
        .unwrap_err();
    assert!(matches!(err, SnapshotError::Breakout(_)), "{err}");
    // Absolute: resolved inside the root, where there is no such file.
    assert!(env
        .apply(None, TarBuf::new().hardlink("h", &secret))
        .is_err());
    // Through a symlinked directory pointing out.
    let mut t = TarBuf::new();
    t.symlink("d", &env.outside().display().to_string())
        .hardlink("h", "d/secret");
    assert!(env.apply(None, &mut t).is_err());
    env.assert_outside_untouched();
    env.no_temp_left();
}

#[test]
fn whiteouts_through_symlinks_stay_inside() {
    let env = Env::new();
    let out = env.outside().display().to_string();
    for last in [".wh.secret", ".wh..wh..opq"] {
        let mut t = TarBuf::new();
        t.symlink("d", &out).file(&format!("d/{last}"), b"");
        let _ = env.apply(None, &mut t);
        env.assert_outside_untouched();
        assert!(!is_opaque(&env.outside()));
    }
}

#[test]
fn container_keys_are_validated() {
    let env = Env::new();
    for bad in ["", "..", "a/b", "../x", "a b"] {
        assert!(
            matches!(env.s.prepare(bad, None), Err(SnapshotError::InvalidKey(_))),
            "{bad:?}"
        );
    }
    let m = env.s.prepare("c1", None).unwrap();
    assert_eq!(m.lowers, vec![env.s.root().join("empty")]);
    assert!(m.upper.is_dir() && m.work.is_dir() && m.target.is_dir());
    assert_eq!(env.s.mounts("c1").unwrap(), m);
    assert_eq!(env.s.merged_path("c1"), m.target);
    env.s.remove_container("c1").unwrap();
    assert!(!m.upper.exists());
    env.s.remove_container("c1").unwrap();
}

#[test]
fn usage_counts_hardlinks_once() {
    let env = Env::new();
    let mut t = TarBuf::new();
    t.file("a", &[0u8; 1000])
        .hardlink("b", "a")
        .file("c", &[0u8; 24]);
    let c = env.apply(None, &mut t).unwrap();
    assert_eq!(usage(&env.s.path(&c)).unwrap(), 1024);
}

// ---- real overlay mounts ----

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Unmounts on drop, so a failing assertion leaves no mount behind.
struct Mounted(PathBuf);

impl Mounted {
    fn new(m: &OverlayMount) -> Mounted {
        let st = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &m.options()])
            .arg(&m.target)
            .status()
            .unwrap();
        assert!(st.success(), "mount -o {}", m.options());
        Mounted(m.target.clone())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn overlay_honours_whiteouts_and_diff_round_trips() {
    if !is_root() {
        eprintln!("not root; skipping overlay test");
        return;
    }
    let env = Env::new();
    let base = env
        .apply(
            None,
            TarBuf::new()
                .file("a/keep", b"keep")
                .file("a/gone", b"gone")
                .file("b/old", b"old")
                .file("etc/conf", b"v1"),
        )
        .unwrap();
    let top = env
        .apply(
            Some(&base),
            TarBuf::new()
                .file("a/.wh.gone", b"")
                .file("b/.wh..wh..opq", b"")
                .file("b/new", b"new"),
        )
        .unwrap();

    let m = env.s.prepare("ctr", Some(&top)).unwrap();
    {
        let _mnt = Mounted::new(&m);
        let root = &m.target;
        assert_eq!(fs::read(root.join("a/keep")).unwrap(), b"keep");
        assert!(
            !root.join("a/gone").exists(),
            "whiteout hides the lower file"
        );
        assert!(
            !root.join("b/old").exists(),
            "opaque dir hides lower entries"
        );
        assert!(root.join("b/new").exists());
        assert!(matches!(
            env.s.remove_container("ctr"),
            Err(SnapshotError::InUse(..))
        ));

        // The container changes things.
        fs::write(root.join("etc/conf"), b"v2").unwrap();
        fs::write(root.join("added"), b"+").unwrap();
        fs::remove_file(root.join("a/keep")).unwrap();
        fs::create_dir(root.join("newdir")).unwrap();
        fs::write(root.join("newdir/f"), b"f").unwrap();

        let mut exported = Vec::new();
        export_tar(root, &mut exported).unwrap();
        let names = tar_names(&exported);
        assert!(names.contains(&"etc/conf".to_string()), "{names:?}");
        assert!(!names
            .iter()
            .any(|n| n.contains(".wh.") || n == "a/keep" || n == "a/gone"));
    }

    let changes: Vec<String> = env
        .s
        .diff("ctr")
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        changes,
        vec![
            "C /a",
            "D /a/keep",
            "A /added",
            "C /etc",
            "C /etc/conf",
            "A /newdir",
            "A /newdir/f"
        ]
    );

    let mut diff = Vec::new();
    let diff_id = env.s.write_diff_tar("ctr", &mut diff).unwrap();
    assert_eq!(diff_id, Digest::sha256(&diff));
    let names = tar_names(&diff);
    assert!(names.contains(&"a/.wh.keep".to_string()), "{names:?}");
    assert!(names.contains(&"newdir/f".to_string()), "{names:?}");

    // The committed diff applies as a new layer and gives the same view.
    let committed = env.s.apply_layer(Some(&top), &diff[..], &diff_id).unwrap();
    let m2 = env.s.prepare("ctr2", Some(&committed)).unwrap();
    {
        let _mnt = Mounted::new(&m2);
        let root = &m2.target;
        assert!(!root.join("a/keep").exists());
        assert_eq!(fs::read(root.join("etc/conf")).unwrap(), b"v2");
        assert_eq!(fs::read(root.join("newdir/f")).unwrap(), b"f");
        assert!(root.join("b/new").exists() && !root.join("b/old").exists());
    }
    env.s.remove_container("ctr").unwrap();
    env.s.remove_container("ctr2").unwrap();
}

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut sink = Vec::new();
        e.read_to_end(&mut sink).unwrap();
        out.push(
            e.path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string(),
        );
    }
    out
}

#[test]
fn extract_into_stays_inside_the_container_root() {
    let env = Env::new();
    let root = env.dir.path().join("rootfs");
    fs::create_dir_all(root.join("srv")).unwrap();
    // The container's own symlink points at "/", which must mean its root, not ours.
    std::os::unix::fs::symlink("/", root.join("srv/up")).unwrap();
    let out = env.outside().display().to_string();
    std::os::unix::fs::symlink(&out, root.join("srv/out")).unwrap();
    let mut t = TarBuf::new();
    t.file("hello", b"hi")
        .file(".wh.literal", b"kept as a file")
        .file("up/etc/planted", b"x")
        .file("out/secret", b"over");
    let (bytes, _) = t.finish();
    let res = super::extract_into(&root, &root.join("srv"), &bytes[..]);
    env.assert_outside_untouched();
    // "out" points at a path missing inside the root: refused, never followed out.
    assert!(res.unwrap_err().to_string().contains("dangling symlink"));
    let m = fs::metadata(root.join("srv/hello")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0), "docker cp gives files to root");
    assert!(root.join("srv/.wh.literal").is_file());
    assert!(root.join("etc/planted").is_file());

    let (bytes, _) = TarBuf::new().file("../../escape", b"x").finish();
    let err = super::extract_into(&root, &root.join("srv"), &bytes[..]).unwrap_err();
    assert!(matches!(err, SnapshotError::Breakout(_)), "{err}");
    assert!(super::extract_into(&root, env.dir.path(), &bytes[..]).is_err());

    let (bytes, _) = TarBuf::new().file("owned", b"x").finish();
    super::extract_into_preserving_owner(&root, &root, &bytes[..]).unwrap();
    assert_eq!(fs::metadata(root.join("owned")).unwrap().uid(), 1000);
    env.assert_outside_untouched();
}

#[test]
fn apply_layers_at_once_is_apply_layer_in_turn() {
    let env = Env::new();
    let tars: Vec<(Vec<u8>, Digest)> = (0..5)
        .map(|i| {
            TarBuf::new()
                .file(&format!("f{i}"), format!("{i}").as_bytes())
                .finish()
        })
        .collect();
    let layers = tars.iter().map(|(b, d)| (d.clone(), &b[..])).collect();
    let chains = env.s.apply_layers(None, layers, 3).unwrap();
    let mut parent = None;
    for ((_, d), c) in tars.iter().zip(&chains) {
        let want = match &parent {
            None => d.clone(),
            Some(p) => pier_reference::chain_id(&[Clone::clone(p), d.clone()]),
        };
        assert_eq!(c, &want);
        assert_eq!(env.s.parent(c).unwrap(), parent);
        parent = Some(c.clone());
    }
    assert!(env.s.path(&chains[4]).join("f4").is_file());
    env.no_temp_left();

    // One bad layer: nothing of the new stack is kept.
    let (good, gd) = TarBuf::new().file("g", b"g").finish();
    let (bad, _) = TarBuf::new().file("b", b"b").finish();
    let top = chains[4].clone();
    let before = env.s.list().unwrap();
    let err = env
        .s
        .apply_layers(
            Some(&top),
            vec![(gd, &good[..]), (Digest::sha256(b"wrong"), &bad[..])],
            2,
        )
        .unwrap_err();
    assert!(matches!(err, SnapshotError::DiffIdMismatch { .. }), "{err}");
    assert_eq!(env.s.list().unwrap(), before);
    env.no_temp_left();
}

#[test]
fn staged_layers_hide_until_committed_on_a_visible_parent() {
    let env = Env::new();
    let (base, base_id) = TarBuf::new().file("a", b"1").finish();
    let (top, top_id) = TarBuf::new().file(".wh.a", b"").file("b", b"2").finish();
    // The top unpacks first, before its parent exists (pulls stage in parallel).
    let t = env.s.stage(Some(&base_id), &top[..], &top_id).unwrap();
    let top_chain = chain_id(&[base_id.clone(), top_id.clone()]);
    assert_eq!(t.chain(), &top_chain);
    assert!(!env.s.exists(&top_chain));
    assert!(env.s.list().unwrap().is_empty());
    let b = env.s.stage(None, &base[..], &base_id).unwrap();
    // Committing on a parent that is not visible yet fails and removes it.
    assert!(t.commit().unwrap_err().is_not_found());
    let t = env.s.stage(Some(&base_id), &top[..], &top_id).unwrap();
    assert_eq!(b.commit().unwrap(), base_id);
    assert_eq!(t.commit().unwrap(), top_chain);
    assert!(is_whiteout(
        &fs::symlink_metadata(env.s.path(&top_chain).join("a")).unwrap()
    ));
    assert_eq!(env.s.parent(&top_chain).unwrap(), Some(base_id.clone()));
    // A bad diff ID or a dropped stage leaves no directory behind.
    assert!(env.s.stage(None, &base[..], &Digest::sha256(b"x")).is_err());
    drop(env.s.stage(None, &top[..], &top_id).unwrap());
    let names: Vec<_> = fs::read_dir(env.s.root().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn untouched_container_layers_are_recycled_others_are_not() {
    let t = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(t.path()).unwrap();
    let dir = |k: &str| s.container_dir(k).unwrap();

    s.prepare("a", None).unwrap();
    // What overlayfs leaves in its work directory after an unmount.
    fs::create_dir_all(dir("a").join("work/work/incompat/volatile")).unwrap();
    apply::set_xattr(
        fs::File::open(dir("a").join("upper")).unwrap(),
        "trusted.overlay.uuid",
        b"u",
    )
    .unwrap();
    assert!(s.recycle_container("a").unwrap());
    assert!(!dir("a").exists());
    // The next container gets it back as new.
    s.prepare("a2", None).unwrap();
    assert_eq!(fs::read_dir(dir("a2").join("work")).unwrap().count(), 0);
    assert!(changes::read_xattrs(&dir("a2").join("upper")).is_empty());

    // Anything the container changed keeps the layer out of the pool.
    s.prepare("b", None).unwrap();
    fs::write(dir("b").join("upper/f"), b"x").unwrap();
    s.prepare("c", None).unwrap();
    fs::set_permissions(dir("c").join("upper"), fs::Permissions::from_mode(0o700)).unwrap();
    s.prepare("d", None).unwrap();
    apply::set_xattr(
        fs::File::open(dir("d").join("upper")).unwrap(),
        "user.x",
        b"1",
    )
    .unwrap();
    for k in ["b", "c", "d"] {
        assert!(!s.recycle_container(k).unwrap(), "{k}");
        assert!(dir(k).exists(), "{k}");
    }
}

/// A GNU sparse ('S') tar: 512 bytes of data that claim a 4 GiB file.
fn sparse_tar() -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path("big").unwrap();
    h.set_mode(0o644);
    h.set_size(512);
    h.set_entry_type(tar::EntryType::GNUSparse);
    let g = h.as_gnu_mut().unwrap();
    // One chunk at the end of the file; the rest is a hole.
    g.sparse[0].offset = *b"37777777000\0";
    g.sparse[0].numbytes = *b"00000001000\0";
    g.realsize = *b"40000000000\0";
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend([b'x'; 512]);
    out.extend([0; 1024]);
    out
}

#[test]
fn sparse_entries_are_refused_not_expanded() {
    let env = Env::new();
    let bytes = sparse_tar();
    let d = Digest::sha256(&bytes);
    let err = env.s.apply_layer(None, &bytes[..], &d).unwrap_err();
    assert!(
        err.is_invalid_layer() && err.to_string().contains("sparse"),
        "{err}"
    );
    assert!(!env.s.exists(&d));
    env.no_temp_left();

    let root = env.dir.path().join("rootfs");
    fs::create_dir_all(&root).unwrap();
    let err = super::extract_into(&root, &root, &bytes[..]).unwrap_err();
    assert!(err.to_string().contains("sparse"), "{err}");
    assert!(!root.join("big").exists(), "nothing is left behind");
}

#[test]
fn check_archive_reads_everything_and_writes_nothing() {
    let (ok, _) = TarBuf::new().file("a", b"x").file("d/b", b"y").finish();
    super::check_archive(&ok[..]).unwrap();
    let err = super::check_archive(&sparse_tar()[..]).unwrap_err();
    assert!(err.to_string().contains("sparse"), "{err}");
    let (out, _) = TarBuf::new().file("a", b"x").file("../../b", b"y").finish();
    let err = super::check_archive(&out[..]).unwrap_err();
    assert!(matches!(err, SnapshotError::Breakout(_)), "{err}");
}
