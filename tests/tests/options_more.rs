//! Options of issue 15 beyond devices, resources, namespaces and stats:
//! restart policies as dockerd's restart manager runs them, daemon.json's
//! container defaults, `/events` filters and socket activation.

use std::time::{Duration, Instant};

use pier_tests::{wait_until, OutputExt, TestDaemon};
use serde_json::Value;

fn run_d(d: &TestDaemon, args: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    d.pier_ok(&a).trim().to_string()
}

fn state(d: &TestDaemon, c: &str) -> (String, i64) {
    let v = d.inspect(c);
    (
        v["State"]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        v["RestartCount"].as_i64().unwrap_or(-1),
    )
}

/// The events of the last `secs` seconds that `filters` (JSON) lets through.
fn events(d: &TestDaemon, filters: &str, since: i64) -> Vec<Value> {
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let path = format!(
        "/events?since={since}&until={until}&filters={}",
        urlencode(filters)
    );
    let r = d.http("GET", &path, None, b"");
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn on_failure_counts_its_restarts_and_a_start_by_hand_resets_them() {
    let d = TestDaemon::with_busybox();
    let id = run_d(
        &d,
        &["--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3"],
    );
    assert!(
        wait_until(Duration::from_secs(20), || state(&d, &id)
            == ("exited".into(), 2)),
        "two restarts, then it stays exited: {:?}",
        state(&d, &id)
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(state(&d, &id), ("exited".into(), 2), "no third run");
    assert_eq!(d.inspect(&id)["State"]["ExitCode"], 3);
    // As dockerd: a start by hand begins the count again.
    d.pier_ok(&["start", &id]);
    assert!(
        wait_until(Duration::from_secs(20), || state(&d, &id)
            == ("exited".into(), 2)),
        "{:?}",
        state(&d, &id)
    );
    // A clean exit is no failure.
    let ok = run_d(
        &d,
        &["--restart", "on-failure", "busybox", "sh", "-c", "exit 0"],
    );
    d.pier_ok(&["wait", &ok]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(state(&d, &ok), ("exited".into(), 0));
    d.pier_ok(&["rm", "-f", &id, &ok]);
}

#[test]
fn restarts_back_off_from_100ms_doubling() {
    let d = TestDaemon::with_busybox();
    let since = now_secs() - 1;
    let id = run_d(
        &d,
        &["--restart", "on-failure:4", "busybox", "sh", "-c", "exit 1"],
    );
    assert!(
        wait_until(Duration::from_secs(30), || state(&d, &id)
            == ("exited".into(), 4)),
        "{:?}",
        state(&d, &id)
    );
    let f = format!(r#"{{"container":["{id}"],"event":["start","die"]}}"#);
    let evs = events(&d, &f, since);
    let times: Vec<(String, i64)> = evs
        .iter()
        .map(|e| {
            (
                e["Action"].as_str().unwrap().to_string(),
                e["timeNano"].as_i64().unwrap(),
            )
        })
        .collect();
    let actions: Vec<&str> = times.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["start", "die", "start", "die", "start", "die", "start", "die", "start", "die"],
        "{times:?}"
    );
    // Each die-to-start gap is at least the restart manager's delay:
    // 100, 200, 400, 800 ms (a fixed delay would give 100 each time).
    for (n, pair) in times[1..9].chunks(2).enumerate() {
        let gap = Duration::from_nanos((pair[1].1 - pair[0].1) as u64);
        let want = Duration::from_millis(100 << n);
        assert!(gap >= want, "restart {}: {gap:?} < {want:?}", n + 1);
    }
    d.pier_ok(&["rm", "-f", &id]);
}

#[test]
fn always_and_unless_stopped_across_a_daemon_restart() {
    let mut d = TestDaemon::with_busybox();
    let always = run_d(&d, &["--restart", "always", "busybox", "sleep", "600"]);
    let unless = run_d(
        &d,
        &["--restart", "unless-stopped", "busybox", "sleep", "600"],
    );
    let dies = run_d(
        &d,
        &["--restart", "unless-stopped", "busybox", "sleep", "600"],
    );
    d.pier_ok(&["stop", "-t", "0", &always, &unless]);
    // Stopped by hand: no policy restarts them while the daemon runs.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(state(&d, &always).0, "exited");
    assert_eq!(state(&d, &unless).0, "exited");
    // One ends while no daemon runs: the daemon finds its exit and restarts it.
    let pid = d.container_pid(&dies);
    d.kill9();
    nix_kill(pid);
    d.restart();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let v = d.inspect(&dies);
            v["State"]["Status"] == "running" && v["State"]["Pid"].as_i64() != Some(pid as i64)
        }),
        "unless-stopped comes back after its process died: {}",
        d.inspect(&dies)["State"]
    );
    d.restart();
    // As dockerd: `always` comes back at daemon start even when stopped by
    // hand; `unless-stopped` stopped by hand stays stopped.
    assert!(
        wait_until(Duration::from_secs(20), || state(&d, &always).0
            == "running"),
        "always: {:?}",
        state(&d, &always)
    );
    assert_eq!(state(&d, &unless).0, "exited");
    assert_eq!(
        state(&d, &dies).0,
        "running",
        "kept across a graceful restart"
    );
    d.pier_ok(&["rm", "-f", &always, &unless, &dies]);
}

fn nix_kill(pid: i32) {
    let st = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -9 {pid}");
}

#[test]
fn restart_sends_the_signal_asked_for() {
    let d = TestDaemon::with_busybox();
    let script = "trap 'echo got USR1; exit 0' USR1; echo up; while true; do sleep 0.1; done";
    let id = run_d(&d, &["busybox", "sh", "-c", script]);
    assert!(wait_until(Duration::from_secs(10), || d
        .pier_ok(&["logs", &id])
        .contains("up")));
    let t = Instant::now();
    d.pier_ok(&["restart", "-s", "USR1", "-t", "30", &id]);
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(d.pier_ok(&["logs", &id]).contains("got USR1"));
    assert_eq!(state(&d, &id).0, "running");
    // The API's `signal` query parameter, as docker-py sends it.
    let r = d.http(
        "POST",
        &format!("/containers/{id}/restart?signal=SIGUSR1&t=30"),
        None,
        b"",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let logs = d.pier_ok(&["logs", &id]);
    assert_eq!(logs.matches("got USR1").count(), 2, "{logs}");
    let r = d.http(
        "POST",
        &format!("/containers/{id}/restart?signal=NOPE"),
        None,
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let o = d.pier(&["restart", "--signal", "NOPE", &id]);
    assert_eq!(o.code(), 1, "{}", o.describe());
    d.pier_ok(&["rm", "-f", &id]);
}
