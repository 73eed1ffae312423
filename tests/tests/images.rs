//! Image transport: save/load round trip, import of hostile archives.

use std::fs;
use std::path::{Path, PathBuf};

use pier_tests::tar::{build, Entry};
use pier_tests::{Input, OutputExt, TestDaemon};

#[test]
fn save_rmi_load_round_trip() {
    let d = TestDaemon::with_busybox();
    let id = d.inspect("busybox:latest")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    let tar = d.root.join("bb-save.tar");
    let tar_s = tar.display().to_string();
    d.pier_ok(&["save", "-o", &tar_s, "busybox:latest"]);
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        list.lines().any(|l| l == "manifest.json"),
        "docker save layout:\n{list}"
    );

    let out = d.pier_ok(&["rmi", "busybox:latest"]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(!d.pier_ok(&["images"]).contains("busybox"));
    let o = d.pier(&["inspect", "busybox:latest"]);
    assert_ne!(o.code(), 0, "{}", o.describe());

    let out = d.pier_ok(&["load", "-i", &tar_s]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    assert_eq!(
        d.inspect("busybox:latest")["Id"],
        id.as_str(),
        "ids survive save/load"
    );
    assert_eq!(
        d.pier_ok(&["run", "--rm", "busybox", "echo", "back"]),
        "back\n"
    );

    // The same through stdout and stdin.
    let saved = d.pier(&["save", "busybox:latest"]);
    assert_eq!(saved.code(), 0, "{}", saved.err());
    d.pier_ok(&["rmi", "busybox:latest"]);
    let o = d.pier_input(&["load"], Input::Bytes(&saved.stdout));
    assert!(
        o.out().contains("Loaded image: busybox:latest"),
        "{}",
        o.describe()
    );
    let images = d.pier_ok(&["images"]);
    assert!(images.starts_with("REPOSITORY"), "{images}");
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("busybox ") && l.contains("latest")),
        "{images}"
    );
    d.assert_clean();
}

fn files_named(dir: &Path, marker: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy().contains(marker) {
            out.push(p.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            files_named(&p, marker, out);
        }
    }
}

/// Removes a directory outside the test root even when the test fails half-way.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn hostile_imports_are_refused() {
    let d = TestDaemon::with_busybox();
    let marker = format!("pier-escape-{}", d.id);
    let outside = PathBuf::from("/tmp").join(format!("{marker}-dir"));
    fs::create_dir_all(&outside).unwrap();
    let _rm_outside = RemoveOnDrop(outside.clone());
    let target = outside.join("target");
    fs::write(&target, "original").unwrap();
    let deep = "../../../../../../../../../../../..";

    let dotdot = format!("{deep}/tmp/{marker}-dotdot");
    let shallow = format!("../{marker}-shallow");
    let abs = format!("/tmp/{marker}-abs");
    let sym_abs_target = outside.display().to_string();
    let sym_rel_target = format!("{deep}{}", outside.display());
    let hard_target = format!("{deep}{}", target.display());
    // (label, archive, what the error must mention). Absolute names are not in this
    // list: Docker imports them relative to the layer root, which is harmless; they
    // are only checked for landing inside the layer, below.
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            build(&[Entry::File {
                name: &dotdot,
                data: b"x",
            }]),
            "pier-escape",
        ),
        (
            "shallow",
            build(&[Entry::File {
                name: &shallow,
                data: b"x",
            }]),
            "pier-escape",
        ),
        (
            "symlink-abs",
            build(&[
                Entry::Symlink {
                    name: "evil",
                    target: &sym_abs_target,
                },
                Entry::File {
                    name: "evil/pwned",
                    data: b"x",
                },
            ]),
            "evil",
        ),
        (
            "symlink-rel",
            build(&[
                Entry::Symlink {
                    name: "evil2",
                    target: &sym_rel_target,
                },
                Entry::File {
                    name: "evil2/pwned",
                    data: b"x",
                },
            ]),
            "evil2",
        ),
        (
            "hardlink",
            build(&[
                Entry::File {
                    name: "ok",
                    data: b"fine",
                },
                Entry::Hardlink {
                    name: "hl",
                    target: &hard_target,
                },
            ]),
            "pier-escape",
        ),
    ];
    for (label, data, mentions) in &cases {
        let tag = format!("evil:{label}");
        let o = d.pier_input(&["import", "-", &tag], Input::Bytes(data));
        assert_ne!(
            o.code(),
            0,
            "{label}: import of a hostile archive succeeded: {}",
            o.describe()
        );
        assert!(
            o.err().contains("Error") && o.err().contains(mentions),
            "{label}: the error must name the bad entry ({mentions}): {}",
            o.describe()
        );
        let o = d.pier(&["inspect", &tag]);
        assert_ne!(
            o.code(),
            0,
            "{label}: a refused import must not leave a tag"
        );
    }
    let abs_tar = build(&[Entry::File {
        name: &abs,
        data: b"x",
    }]);
    let o = d.pier_input(&["import", "-", "abs:1"], Input::Bytes(&abs_tar));
    if o.code() == 0 {
        d.pier_ok(&["rmi", "abs:1"]);
    } else {
        assert!(o.err().contains("Error"), "{}", o.describe());
    }

    // Nothing landed outside: not in /tmp, not in the escape dir, not in the data root.
    let mut found = Vec::new();
    files_named(Path::new("/tmp"), &format!("{marker}-"), &mut found);
    found.retain(|p| p != &outside);
    files_named(&outside, "pwned", &mut found);
    files_named(&d.root, &marker, &mut found);
    assert!(
        found.is_empty(),
        "files written outside the layer: {found:?}"
    );
    assert_eq!(fs::read_to_string(&target).unwrap(), "original");
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(&target).unwrap().nlink(),
            1,
            "host file was hard-linked"
        );
    }

    // A benign archive with absolute symlinks (as real images have) still imports.
    let ok = build(&[
        Entry::Dir { name: "bin/" },
        Entry::Symlink {
            name: "bin/sh2",
            target: "/bin/busybox",
        },
        Entry::File {
            name: "hello.txt",
            data: b"hi\n",
        },
    ]);
    let o = d.pier_input(&["import", "-", "benign:1"], Input::Bytes(&ok));
    assert_eq!(o.code(), 0, "{}", o.describe());
    d.pier_ok(&["rmi", "benign:1"]);
    assert_eq!(
        d.pier_ok(&["run", "--rm", "busybox", "echo", "still-ok"]),
        "still-ok\n"
    );
    d.assert_clean();
}

/// `images --filter` with Docker's creation-time keys; unknown keys are errors.
#[test]
fn image_filters_by_creation_time() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&["run", "--name", "base", "busybox", "touch", "/x"]);
    d.pier_ok(&["commit", "base", "later:1"]);
    d.pier_ok(&["rm", "base"]);
    let repos =
        |args: &[&str]| d.pier_sorted(&[&["images", "--format", "{{.Repository}}"], args].concat());
    assert_eq!(repos(&[]), "busybox,later");
    assert_eq!(repos(&["--filter", "since=busybox"]), "later");
    assert_eq!(repos(&["--filter", "before=later:1"]), "busybox");
    // Both made within the last hour: none is older than that.
    assert_eq!(repos(&["--filter", "until=1h"]), "");
    assert_eq!(
        repos(&["--filter", "until=2099-01-01T00:00:00Z"]),
        "busybox,later"
    );
    let o = d.pier(&["images", "--filter", "colour=blue"]);
    assert!(
        o.err().contains("Invalid filter 'colour'"),
        "{}",
        o.describe()
    );
    d.pier_ok(&["rmi", "later:1"]);
    d.assert_clean();
}
