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
    // exit.json is there and the cgroup is gone.
    let ex = c.exit_file().unwrap().unwrap();
    assert_eq!(ex.exit_code, 0);
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
    for d in f.cgroup_dirs() {
        assert!(!d.exists(), "{} still exists", d.display());
    }
    f.finish(c).await;
    assert!(!h.client.is_alive().await);
}
