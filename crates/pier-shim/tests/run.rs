//! Root integration tests: real containers from a busybox rootfs.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_reaches_attach_and_log() {
    if !is_root() {
        return;
    }
    let f = Fixture::new(
        "echo",
        &["sh", "-c", "echo hello; echo oops >&2; echo world"],
        |_| {},
    );
    let t0 = Instant::now();
    let h = f.spawn(false, false).await;
    let c = &h.client;
    let att = c.attach(None, false, true, true).await.unwrap();
    let pid = c.start().await.unwrap();
    assert!(pid > 0);
    let out = read_all(att).await;
    let st = c.wait(None).await.unwrap();
    eprintln!("create+start+exit: {:?}", t0.elapsed());
    assert_eq!(st.exit_code, 0);
    assert_eq!(stdout_of(&out), "hello\nworld\n");
    let frames = pier_runtime::client::demux(&out);
    assert!(frames.iter().any(|(s, d)| *s == 2 && d == b"oops\n"));
    let log = f.log_lines();
    let stdout: Vec<_> = log
        .iter()
        .filter(|l| l["stream"] == "stdout")
        .map(|l| l["log"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stdout, ["hello\n", "world\n"]);
    assert!(log
        .iter()
        .any(|l| l["stream"] == "stderr" && l["log"] == "oops\n"));
    assert!(log[0]["time"].as_str().unwrap().ends_with('Z'));
    // exit.json is there; the cgroup and runtime state go right after the
    // exit is reported (a helper deletes them).
    let ex = c.exit_file().unwrap().unwrap();
    assert_eq!(ex.exit_code, 0);
    let gone = |f: &Fixture| {
        f.cgroup_dirs().iter().all(|d| !d.exists()) && !f.runtime_root.join(&f.id).exists()
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while !gone(&f) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for d in f.cgroup_dirs() {
        assert!(!d.exists(), "{} still exists", d.display());
    }
    assert!(!f.runtime_root.join(&f.id).exists());
    f.finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes() {
    if !is_root() {
        return;
    }
    let f = Fixture::new("exit3", &["sh", "-c", "exit 3"], |_| {});
    let h = f.spawn(false, false).await;
    h.client.start().await.unwrap();
    assert_eq!(h.client.wait(None).await.unwrap().exit_code, 3);
    f.finish(&h.client).await;

    let f = Fixture::new("true", &["true"], |_| {});
    let t0 = Instant::now();
    let h = f.spawn(false, false).await;
    h.client.start().await.unwrap();
    assert_eq!(h.client.wait(None).await.unwrap().exit_code, 0);
    eprintln!("true: create+start+exit {:?}", t0.elapsed());
    f.finish(&h.client).await;

    let f = Fixture::new("missing", &["nope-not-here"], |_| {});
    let h = f.spawn(false, false).await;
    let err = h.client.start().await.unwrap_err();
    match err {
        pier_runtime::ShimError::Refused { message, exit_code } => {
            assert_eq!(exit_code, Some(127));
            assert_eq!(
                message,
                "exec: \"nope-not-here\": executable file not found in $PATH"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(h.client.wait(None).await.unwrap().exit_code, 127);
    f.finish(&h.client).await;
    for d in f.cgroup_dirs() {
        assert!(!d.exists(), "{} still exists", d.display());
    }

    let f = Fixture::new("noexec", &["/bin/noexec"], |_| {});
    let h = f.spawn(false, false).await;
    match h.client.start().await.unwrap_err() {
        pier_runtime::ShimError::Refused { exit_code, .. } => assert_eq!(exit_code, Some(126)),
        other => panic!("unexpected {other:?}"),
    }
    f.finish(&h.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_piped_to_cat() {
    if !is_root() {
        return;
    }
    use tokio::io::AsyncWriteExt;
    let f = Fixture::new("cat", &["cat"], |_| {});
    let h = f.spawn(false, true).await;
    let c = &h.client;
    let mut att = c.attach(None, true, true, true).await.unwrap();
    c.start().await.unwrap();
    att.write_all(b"piped line\nsecond").await.unwrap();
    att.shutdown().await.unwrap();
    let out = read_all(att).await;
    assert_eq!(stdout_of(&out), "piped line\nsecond");
    assert_eq!(c.wait(None).await.unwrap().exit_code, 0);
    let log = f.log_lines();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1]["log"], "second");
    f.finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tty_and_resize() {
    if !is_root() {
        return;
    }
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = Fixture::new("tty", &["sh"], |o| o.terminal = true);
    let h = f.spawn(true, true).await;
    let c = &h.client;
    let mut att = c.attach(None, true, true, true).await.unwrap();
    c.start().await.unwrap();
    c.resize(None, 42, 123).await.unwrap();
    att.write_all(b"stty size; exit 5\n").await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), att.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("42 123"), "tty output: {text:?}");
    assert_eq!(c.wait(None).await.unwrap().exit_code, 5);
    let log = f.log_lines();
    assert!(log.iter().all(|l| l["stream"] == "stdout"));
    assert!(log
        .iter()
        .any(|l| l["log"].as_str().unwrap().contains("42 123")));
    f.finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_sleep_exec_and_rss() {
    if !is_root() {
        return;
    }
    let f = Fixture::new("sleep", &["sleep", "1000"], |_| {});
    let h = f.spawn(false, false).await;
    let c = &h.client;
    c.start().await.unwrap();
    let st = c.state().await.unwrap();
    assert_eq!(st.status, pier_runtime::proto::Status::Running);
    for d in f.cgroup_dirs().iter().take(2) {
        assert!(d.exists(), "{} missing while running", d.display());
    }

    // An exec with output and an exit code; its shell forks (seccomp allows clone).
    let process: libcontainer::oci_spec::runtime::Process =
        serde_json::from_value(serde_json::json!({
            "args": ["sh", "-c", "echo from exec | cat; hostname; exit 7"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "user": {"uid": 0, "gid": 0},
            "terminal": false,
        }))
        .unwrap();
    c.exec("e1", process, false, false).await.unwrap();
    let att = c.attach(Some("e1"), false, true, true).await.unwrap();
    let t0 = Instant::now();
    let pid = c.exec_start("e1").await.unwrap();
    assert!(pid > 0);
    let out = read_all(att).await;
    let est = c.wait(Some("e1")).await.unwrap();
    eprintln!("exec round trip {:?}", t0.elapsed());
    assert_eq!(stdout_of(&out), "from exec\npier-test\n");
    assert_eq!(est.exit_code, 7);
    // Exec output is not logged.
    assert!(f.log_lines().is_empty());

    let rss = vm_rss_kib(h.pid).unwrap();
    eprintln!("shim VmRSS while supervising: {rss} KiB");

    c.pause().await.unwrap();
    assert_eq!(
        c.state().await.unwrap().status,
        pier_runtime::proto::Status::Paused
    );
    c.resume().await.unwrap();

    c.kill(9).await.unwrap();
    let st = tokio::time::timeout(Duration::from_secs(10), c.wait(None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(st.exit_code, 128 + 9);
    // Cgroups go after the exit is reported, before the shim exits.
    f.finish(c).await;
    assert!(!h.client.is_alive().await);
    for d in f.cgroup_dirs() {
        assert!(!d.exists(), "{} still exists", d.display());
    }
}

/// Prints the numbers the design targets: create+start+exit latency of `true`
/// and the shim's memory while it supervises a running container.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_latency_and_rss() {
    if !is_root() {
        return;
    }
    let mut times = Vec::new();
    for _ in 0..5 {
        let f = Fixture::new("lat", &["true"], |o| {
            o.seccomp_unconfined = std::env::var_os("PIER_TEST_NO_SECCOMP").is_some()
        });
        let t0 = Instant::now();
        let h = f.spawn(false, false).await;
        h.client.start().await.unwrap();
        assert_eq!(h.client.wait(None).await.unwrap().exit_code, 0);
        times.push(t0.elapsed());
        f.finish(&h.client).await;
        if std::env::var_os("PIER_SHIM_TRACE").is_some() {
            let log = std::fs::read_to_string(f.state_dir.join("shim.log")).unwrap_or_default();
            eprintln!("{log}");
        }
    }
    times.sort();
    eprintln!(
        "true create+start+exit: min {:?} median {:?}",
        times[0], times[2]
    );

    let f = Fixture::new("rss", &["sleep", "1000"], |_| {});
    let h = f.spawn(false, false).await;
    h.client.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rss = vm_rss_kib(h.pid).unwrap();
    eprintln!("shim VmRSS supervising sleep: {rss} KiB");
    if std::env::var_os("PIER_SHIM_SMAPS").is_some() {
        let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", h.pid)).unwrap();
        let mut cur = String::new();
        for l in smaps.lines() {
            if !l.starts_with(|c: char| c.is_ascii_uppercase()) {
                cur = l.to_string();
            } else if l.starts_with("Rss:") && !l.contains(" 0 kB") {
                eprintln!("{l:>20}  {cur}");
            }
        }
    }
    h.client.kill(9).await.unwrap();
    assert_eq!(h.client.wait(None).await.unwrap().exit_code, 137);
    f.finish(&h.client).await;
}
