//! Many containers at once: every run succeeds and nothing leaks.

use std::thread;

use pier_tests::{OutputExt, TestDaemon};

const N: usize = 50;

#[test]
fn fifty_parallel_run_rm_true() {
    let d = TestDaemon::serial_with_busybox();
    let results: Vec<std::process::Output> = thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|_| s.spawn(|| d.pier(&["run", "--rm", "busybox", "true"])))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("runner thread"))
            .collect()
    });
    let failed: Vec<String> = results
        .iter()
        .enumerate()
        .filter(|(_, o)| o.code() != 0)
        .map(|(i, o)| format!("#{i}: {}", o.describe()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {N} runs failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    // assert_clean: no container, mount, cgroup, shim or container process left.
    d.assert_clean();
    // And the daemon is still in shape for more.
    assert_eq!(
        d.pier_ok(&["run", "--rm", "busybox", "echo", "after"]),
        "after\n"
    );
    d.assert_clean();
}

#[test]
fn parallel_detached_then_rm_f() {
    let d = TestDaemon::serial_with_busybox();
    let ids: Vec<String> = thread::scope(|s| {
        let hs: Vec<_> = (0..20)
            .map(|_| s.spawn(|| d.pier_ok(&["run", "-d", "busybox", "sleep", "1000"])))
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap().trim().to_string())
            .collect()
    });
    assert_eq!(d.pier_ok(&["ps", "-q"]).lines().count(), 20);
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    let out = d.pier_ok(&args);
    assert_eq!(out.lines().count(), 20, "{out}");
    d.assert_clean();
}
