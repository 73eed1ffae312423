//! Root tests: real overlay mounts in temp dirs, always unmounted.

use std::fs;
use std::path::{Path, PathBuf};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Unmounts on drop so a failed assertion leaves no mount behind.
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = pier_sys::unmount(&self.0, true);
    }
}

fn whiteout(p: &Path) {
    nix::sys::stat::mknod(
        p,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        0,
    )
    .unwrap();
}

fn check_overlay(legacy: bool, nlayers: usize, pad: usize) {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    // Long directory names so that 100+ layers overflow one page of mount data.
    let mut lowers = Vec::new();
    for i in 0..nlayers {
        let d = base.join(format!("layer-{i:04}-{}", "x".repeat(pad)));
        fs::create_dir(&d).unwrap();
        fs::write(d.join(format!("f{i}")), format!("{i}")).unwrap();
        lowers.push(d);
    }
    // Bottom layer has "gone"; the layer above whites it out. Top layer shadows "shared".
    let bottom = &lowers[nlayers - 1];
    fs::write(bottom.join("gone"), "x").unwrap();
    fs::write(bottom.join("shared"), "bottom").unwrap();
    whiteout(&lowers[nlayers - 2].join("gone"));
    fs::write(lowers[0].join("shared"), "top").unwrap();

    let upper = base.join("upper");
    let work = base.join("work");
    let target = base.join("merged");
    for d in [&upper, &work, &target] {
        fs::create_dir(d).unwrap();
    }
    let refs: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
    if legacy {
        pier_sys::testing::mount_overlay_legacy(&refs, &upper, &work, &target).unwrap();
    } else {
        pier_sys::mount_overlay(&refs, &upper, &work, &target).unwrap();
    }
    let guard = Mounted(target.clone());

    assert_eq!(fs::read_to_string(target.join("shared")).unwrap(), "top");
    assert!(
        !target.join("gone").exists(),
        "whiteout in a lower must hide the file"
    );
    for i in 0..nlayers {
        assert!(target.join(format!("f{i}")).exists());
    }
    fs::write(target.join("new"), "n").unwrap();
    assert_eq!(fs::read_to_string(upper.join("new")).unwrap(), "n");
    fs::remove_file(target.join("f0")).unwrap();
    let md = fs::symlink_metadata(upper.join("f0")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(
        md.file_type().is_char_device(),
        "delete must leave a whiteout in upper"
    );

    drop(guard);
    assert!(!target.join("shared").exists(), "target must be unmounted");
}

#[test]
fn overlay_few_layers() {
    check_overlay(false, 3, 1);
}

#[test]
fn overlay_many_layers_new_api() {
    check_overlay(false, 120, 40);
}

#[test]
fn overlay_many_layers_legacy_relative() {
    // Absolute paths overflow a page; relative to the common parent they fit.
    check_overlay(true, 120, 20);
}

#[test]
fn bind_mount_readonly() {
    if !is_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    fs::create_dir(&src).unwrap();
    fs::create_dir(&dst).unwrap();
    fs::write(src.join("a"), "a").unwrap();
    pier_sys::bind_mount(&src, &dst, true).unwrap();
    let _g = Mounted(dst.clone());
    assert_eq!(fs::read_to_string(dst.join("a")).unwrap(), "a");
    assert!(fs::write(dst.join("b"), "b").is_err());
    pier_sys::unmount(&dst, false).unwrap();
    assert!(!dst.join("a").exists());
}

#[test]
fn volatile_overlay_mounts_again_after_a_clean_unmount() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let [lower, upper, work, target] =
        ["lower", "upper", "work", "merged"].map(|d| tmp.path().join(d));
    for d in [&lower, &upper, &work, &target] {
        fs::create_dir(d).unwrap();
    }
    for round in 0..2 {
        pier_sys::mount_overlay_volatile(&[lower.as_path()], &upper, &work, &target).unwrap();
        let guard = Mounted(target.clone());
        let opts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = opts
            .lines()
            .find(|l| l.contains(target.to_str().unwrap()))
            .unwrap()
            .to_string();
        assert!(line.contains("volatile"), "round {round}: {line}");
        fs::write(target.join(format!("f{round}")), "x").unwrap();
        pier_sys::unmount(&target, false).unwrap();
        drop(guard);
        // The kernel leaves its marker behind; the next volatile mount clears it.
        assert!(work.join("work/incompat/volatile").exists());
    }
    assert!(upper.join("f0").exists() && upper.join("f1").exists());
}
