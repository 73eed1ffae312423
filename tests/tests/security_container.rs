//! Container breakouts through the runtime: the CVE classes runc has had, kept closed.
//!
//! - CVE-2024-21626: a host directory fd leaked into the container's init or an exec'd
//!   process, reachable as `/proc/self/fd/N` (a working directory there is a host path).
//! - CVE-2019-5736: a container process reaching the runtime binary through
//!   `/proc/<pid>/exe` while the runtime joins the container, and overwriting it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use pier_tests::{bin_dir, OutputExt, TestDaemon};

/// The fd numbers open in a container's process, as `ls /proc/self/fd` there sees them
/// (the listing itself holds one more: the directory being read).
fn fds(listing: &str) -> Vec<u32> {
    let mut v: Vec<u32> = listing
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn no_host_fd_reaches_a_container_process() {
    let d = TestDaemon::with_busybox();
    // `ls` holds 0-2 and its directory fd (3); anything more came from the runtime.
    let out = d.pier_ok(&["run", "--rm", "busybox", "ls", "/proc/self/fd"]);
    assert_eq!(fds(&out), vec![0, 1, 2, 3], "run: {out}");

    d.pier_ok(&["run", "-d", "--name", "fdc", "busybox", "sleep", "60"]);
    let out = d.pier_ok(&["exec", "fdc", "ls", "/proc/self/fd"]);
    assert_eq!(fds(&out), vec![0, 1, 2, 3], "exec: {out}");
    // The container's init holds only its stdio too.
    let out = d.pier_ok(&["exec", "fdc", "ls", "/proc/1/fd"]);
    assert_eq!(fds(&out), vec![0, 1, 2], "init: {out}");

    // CVE-2024-21626's exploit: a working directory of /proc/self/fd/N, then `..` up to
    // the host's root. No N may give a cwd outside the container's root: a marker the
    // host keeps in its /tmp must stay out of reach.
    let marker = format!("/tmp/pier-host-marker-{}", std::process::id());
    fs::write(&marker, "HOST-SECRET").unwrap();
    let up = format!("cat ../../../../../../..{marker}; pwd");
    for n in 3..=12 {
        let wd = format!("/proc/self/fd/{n}");
        let o = d.pier(&["run", "--rm", "-w", &wd, "busybox", "sh", "-c", &up]);
        assert!(
            !o.out().contains("HOST-SECRET"),
            "run -w {wd} reached the host: {}",
            o.describe()
        );
        let o = d.pier(&["exec", "-w", &wd, "fdc", "sh", "-c", &up]);
        assert!(
            !o.out().contains("HOST-SECRET"),
            "exec -w {wd} reached the host: {}",
            o.describe()
        );
    }
    let _ = fs::remove_file(&marker);
    d.pier_ok(&["rm", "-f", "fdc"]);
    d.assert_clean();
}

fn sha256(path: &std::path::Path) -> String {
    let o = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_container_cannot_overwrite_the_runtime_binary() {
    // The daemon runs from a private copy of the binaries, so a successful attack
    // damages only this test's files.
    let bins = PathBuf::from(format!("/tmp/pier-test-bins-{}", std::process::id()));
    fs::create_dir_all(&bins).unwrap();
    for b in ["pier", "pier-shim"] {
        let to = bins.join(b);
        fs::copy(bin_dir().join(b), &to).unwrap();
        fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let before: Vec<String> = ["pier", "pier-shim"]
        .iter()
        .map(|b| sha256(&bins.join(b)))
        .collect();

    let d = TestDaemon::start_with_bin_dir(bins.clone());
    d.import_busybox();
    // The container writes to every process's exe it can see, in a loop, and replaces
    // a command with a script whose interpreter is /proc/self/exe: an exec of it runs
    // whatever binary the entering process has at that moment.
    let attack = r#"printf '#!/proc/self/exe\n' > /bin/evil; chmod +x /bin/evil
while :; do
  for e in /proc/[0-9]*/exe; do
    case "$(readlink $e)" in /bin/busybox|/bin/sh) continue;; esac
    echo PWNED >> "$e" 2>/dev/null && echo "wrote $e" >> /tmp/wrote
  done
done"#;
    d.pier_ok(&["run", "-d", "--name", "atk", "busybox", "sh", "-c", attack]);
    for _ in 0..20 {
        // The exec of the shebang script fails or runs something harmless; either way
        // nothing on the host may change.
        let _ = d.pier(&["exec", "atk", "/bin/evil"]);
        let _ = d.pier(&["exec", "atk", "true"]);
    }
    let wrote = d.pier(&["exec", "atk", "cat", "/tmp/wrote"]).out();
    d.pier_ok(&["rm", "-f", "atk"]);
    let after: Vec<String> = ["pier", "pier-shim"]
        .iter()
        .map(|b| sha256(&bins.join(b)))
        .collect();
    assert_eq!(
        before, after,
        "a runtime binary changed; the container wrote: {wrote}"
    );
    assert!(
        !wrote.contains("wrote"),
        "the container opened a host exe for writing: {wrote}"
    );
    d.assert_clean();
    drop(d);
    let _ = fs::remove_dir_all(&bins);
}
