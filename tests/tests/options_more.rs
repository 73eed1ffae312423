//! Options of issue 15 beyond devices, resources, namespaces and stats:
//! restart policies as dockerd's restart manager runs them, daemon.json's
//! container defaults, `/events` filters, `system df` and `builder prune`
//! (boot and socket activation: options_boot.rs).

use std::time::{Duration, Instant};

mod options_util;

use options_util::*;
use pier_tests::{wait_until, OutputExt, TestDaemon};
use serde_json::Value;

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

#[test]
fn daemon_json_gives_containers_dns_and_ulimit_defaults() {
    let tmp = tmp_dir("defaults");
    let cfg = tmp.0.join("daemon.json");
    std::fs::write(
        &cfg,
        r#"{"dns":["10.9.9.9"],"dns-search":["corp.example"],"dns-opts":["ndots:3"],
            "default-ulimits":{"nofile":{"Name":"nofile","Soft":123,"Hard":456}},
            "live-restore":true,"features":{"buildkit":true}}"#,
    )
    .unwrap();
    let d = TestDaemon::start_with_args(&["--config-file", cfg.to_str().unwrap()]);
    d.import_busybox();
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        d.pier_ok(&a)
    };
    let show = "cat /etc/resolv.conf; ulimit -Sn; ulimit -Hn";
    let out = run(&["busybox", "sh", "-c", show]);
    assert!(out.contains("nameserver 10.9.9.9\n"), "{out}");
    assert!(out.contains("search corp.example\n"), "{out}");
    assert!(out.contains("options ndots:3\n"), "{out}");
    assert!(out.ends_with("123\n456\n"), "{out}");
    // A container's own settings win, each on its own.
    let out = run(&[
        "--dns-search",
        "mine.example",
        "--ulimit",
        "nofile=50:60",
        "busybox",
        "sh",
        "-c",
        show,
    ]);
    assert!(out.contains("nameserver 10.9.9.9\n"), "{out}");
    assert!(out.contains("search mine.example\n"), "{out}");
    assert!(!out.contains("corp.example"), "{out}");
    assert!(out.ends_with("50\n60\n"), "{out}");
    // On a user network the embedded DNS (at the gateway) answers and
    // forwards to the daemon's servers; search and options are the daemon's.
    d.pier_ok(&["network", "create", "defnet"]);
    let out = run(&["--network", "defnet", "busybox", "cat", "/etc/resolv.conf"]);
    let net: Value = serde_json::from_str(&d.pier_ok(&["network", "inspect", "defnet"])).unwrap();
    let gw = net[0]["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(out.starts_with(&format!("nameserver {gw}\n")), "{out}");
    assert!(out.contains("search corp.example\n"), "{out}");
    assert!(out.contains("ndots:3"), "{out}");
    // As dockerd, defaults are applied at start, not stored in the container.
    let id = d.pier_ok(&["create", "busybox"]);
    let h = &d.inspect(id.trim())["HostConfig"];
    assert!(h["Dns"].as_array().is_none_or(Vec::is_empty), "{h}");
    assert!(h["Ulimits"].as_array().is_none_or(Vec::is_empty), "{h}");
    d.pier_ok(&["rm", id.trim()]);
    d.pier_ok(&["network", "rm", "defnet"]);
}

/// `pier daemon` with `cfg` as its config file, expected to refuse to start.
fn daemon_refuses(dir: &std::path::Path, cfg: &str, flags: &[&str]) -> String {
    let file = dir.join("daemon.json");
    std::fs::write(&file, cfg).unwrap();
    let data = dir.join("data");
    let mut c = std::process::Command::new(pier_tests::pier_bin());
    c.arg("daemon")
        .arg("--config-file")
        .arg(&file)
        .arg("--data-root")
        .arg(&data)
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("-H")
        .arg(format!("unix://{}", dir.join("s.sock").display()))
        .args(flags);
    let o = pier_tests::cmd::run(c, pier_tests::Input::Null, Duration::from_secs(20));
    assert_ne!(o.code(), 0, "{}", o.describe());
    assert!(!data.exists(), "a refused config touches nothing");
    o.err()
}

#[test]
fn daemon_json_switches_pier_cannot_honour_stop_the_daemon() {
    let tmp = tmp_dir("switches");
    let dir = &tmp.0;
    let e = daemon_refuses(dir, r#"{"live-restore":false}"#, &[]);
    assert!(
        e.contains("not supported by Pier: live-restore=false"),
        "{e}"
    );
    let e = daemon_refuses(dir, r#"{"features":{"containerd-snapshotter":true}}"#, &[]);
    assert!(
        e.contains("not supported by Pier: features.containerd-snapshotter=true"),
        "{e}"
    );
    let e = daemon_refuses(dir, r#"{"dns":["1.1.1.1"]}"#, &["--dns", "8.8.8.8"]);
    assert!(
        e.contains("the following directives are specified both as a flag and in the configuration file: dns: (from flag: 8.8.8.8, from file: [\"1.1.1.1\"])"),
        "{e}"
    );
    let e = daemon_refuses(dir, r#"{"dns":["not-an-ip"]}"#, &[]);
    assert!(
        e.contains("IP address is not correctly formatted: not-an-ip"),
        "{e}"
    );
    let e = daemon_refuses(
        dir,
        r#"{"default-ulimits":{"nosuch":{"Name":"nosuch","Soft":1,"Hard":1}}}"#,
        &[],
    );
    assert!(e.contains("invalid default-ulimits"), "{e}");
}

#[test]
fn events_honour_every_filter_type_and_the_time_window() {
    let d = TestDaemon::with_busybox();
    let before = now_secs() - 2;
    std::thread::sleep(Duration::from_millis(1100));
    let since = now_secs();
    d.pier_ok(&["network", "create", "evnet"]);
    d.pier_ok(&["volume", "create", "evvol"]);
    d.pier_ok(&[
        "run",
        "--rm",
        "--name",
        "evc",
        "--label",
        "tier=front",
        "--network",
        "evnet",
        "-v",
        "evvol:/d",
        "busybox",
        "true",
    ]);
    d.pier_ok(&["tag", "busybox", "evimg:1"]);
    let get = |f: &str| events(&d, f, since);
    let summary = |evs: &[Value]| -> Vec<String> {
        evs.iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    e["Type"].as_str().unwrap(),
                    e["Action"].as_str().unwrap(),
                    e["Actor"]["Attributes"]["name"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    let all = get("{}");
    let kinds = |evs: &[Value]| -> std::collections::BTreeSet<String> {
        evs.iter()
            .map(|e| e["Type"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        kinds(&all).into_iter().collect::<Vec<_>>(),
        ["container", "image", "network", "volume"],
        "{:?}",
        summary(&all)
    );
    let check = |f: &str, want_kinds: &[&str], must: &[&str]| {
        let evs = get(f);
        let s = summary(&evs);
        assert!(!evs.is_empty(), "{f}: nothing");
        assert!(
            kinds(&evs).iter().all(|k| want_kinds.contains(&k.as_str())),
            "{f}: {s:?}"
        );
        for m in must {
            assert!(s.iter().any(|x| x.starts_with(m)), "{f}: no {m:?} in {s:?}");
        }
        s
    };
    check(
        r#"{"type":["network"]}"#,
        &["network"],
        &["network create evnet", "network connect evnet"],
    );
    check(
        r#"{"network":["evnet"]}"#,
        &["network"],
        &["network create", "network connect", "network disconnect"],
    );
    check(
        r#"{"volume":["evvol"]}"#,
        &["volume"],
        &["volume create", "volume mount", "volume unmount"],
    );
    check(
        r#"{"container":["evc"]}"#,
        &["container"],
        &[
            "container create evc",
            "container start evc",
            "container die evc",
            "container destroy evc",
        ],
    );
    check(r#"{"image":["evimg"]}"#, &["image"], &["image tag evimg:1"]);
    check(
        r#"{"image":["evimg:1"]}"#,
        &["image"],
        &["image tag evimg:1"],
    );
    check(
        r#"{"label":["tier=front"]}"#,
        &["container"],
        &["container start evc"],
    );
    let s = check(
        r#"{"type":["container"],"event":["die"]}"#,
        &["container"],
        &["container die evc"],
    );
    assert_eq!(s.len(), 1, "{s:?}");
    check(
        r#"{"scope":["local"]}"#,
        &["container", "image", "network", "volume"],
        &[],
    );
    assert!(get(r#"{"scope":["swarm"]}"#).is_empty());
    assert!(get(r#"{"daemon":["nosuchdaemon"]}"#).is_empty());
    assert!(get(r#"{"type":["daemon"]}"#).is_empty());
    assert!(
        get(r#"{"volume":["evvol"],"network":["evnet"]}"#).is_empty(),
        "keys are ANDed"
    );
    // A window that ends before anything happened holds nothing.
    let r = d.http(
        "GET",
        &format!("/events?since={before}&until={}", before + 1),
        None,
        b"",
    );
    assert_eq!(r.status, 200);
    assert!(r.text().trim().is_empty(), "{}", r.text());
    let r = d.http(
        "GET",
        &format!(
            "/events?since={since}&until={}&filters={}",
            now_secs(),
            urlencode(r#"{"bogus":["x"]}"#)
        ),
        None,
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("nvalid filter 'bogus'"), "{}", r.text());
    d.pier_ok(&["network", "rm", "evnet"]);
    d.pier_ok(&["volume", "rm", "evvol"]);
}

fn df(d: &TestDaemon) -> Value {
    let r = d.http("GET", "/system/df", None, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

fn build_prune(d: &TestDaemon, query: &str) -> (u16, Value) {
    let r = d.http("POST", &format!("/build/prune{query}"), None, b"");
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

#[test]
fn system_df_counts_volumes_and_build_cache_and_builder_prune_chooses() {
    let d = TestDaemon::with_busybox();
    let ctx = tmp_dir("bctx");
    std::fs::write(
        ctx.0.join("Dockerfile"),
        "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1k count=200 2>/dev/null\n",
    )
    .unwrap();
    d.pier_ok(&["build", "-q", "-t", "bp1", ctx.0.to_str().unwrap()]);
    d.pier_ok(&["volume", "create", "bpvol"]);
    d.pier_ok(&[
        "run",
        "--rm",
        "-v",
        "bpvol:/d",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/d/f",
        "bs=1k",
        "count=100",
    ]);
    let v = df(&d);
    let vol = v["Volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["Name"] == "bpvol")
        .unwrap_or_else(|| panic!("{}", v["Volumes"]));
    assert!(
        vol["UsageData"]["Size"].as_i64().unwrap() >= 100 * 1024,
        "{vol}"
    );
    assert_eq!(vol["UsageData"]["RefCount"], 0);
    let cache = v["BuildCache"].as_array().unwrap().clone();
    assert!(!cache.is_empty(), "{v}");
    assert!(cache.iter().all(|c| c["Shared"] == true), "{cache:?}");
    let ids: Vec<String> = cache
        .iter()
        .map(|c| c["ID"].as_str().unwrap().to_string())
        .collect();
    // API 1.42's `type` asks for some kinds only; the others are null.
    let r = d.http("GET", "/system/df?type=volume&type=build-cache", None, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let some: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(some["Images"], Value::Null, "{some}");
    assert_eq!(some["Containers"], Value::Null, "{some}");
    assert_eq!(some["Volumes"], v["Volumes"]);
    assert_eq!(
        some["BuildCache"].as_array().map(Vec::len),
        Some(cache.len())
    );
    let r = d.http("GET", "/system/df?type=bogus", None, b"");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("unknown object type: bogus"),
        "{}",
        r.text()
    );
    let out = d.pier_ok(&["system", "df"]);
    assert!(out.contains("Local Volumes"), "{out}");
    assert!(out.contains("Build Cache"), "{out}");
    // Without `all` a record an image shares stays; the filters choose.
    let (st, r) = build_prune(&d, "");
    assert_eq!(st, 200);
    assert!(
        ids.iter()
            .all(|i| !r["CachesDeleted"].to_string().contains(i.as_str())),
        "{r}"
    );
    let (st, r) = build_prune(
        &d,
        &format!("?all=1&filters={}", urlencode(r#"{"until":["1h"]}"#)),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        r["CachesDeleted"],
        serde_json::json!([]),
        "nothing is an hour old"
    );
    let (st, _) = build_prune(
        &d,
        &format!("?filters={}", urlencode(r#"{"label":["a=b"]}"#)),
    );
    assert_eq!(st, 400);
    let (st, r) = build_prune(&d, "?max-used-space=1000");
    assert_eq!(st, 400, "{r}");
    assert_eq!(df(&d)["BuildCache"].as_array().unwrap().len(), cache.len());
    // Once the image is gone the record is the cache's own: a size limit
    // above what it takes keeps it, a plain prune frees it.
    d.pier_ok(&["rmi", "bp1"]);
    d.pier_ok(&["builder", "prune", "-f", "--keep-storage", "1g"]);
    assert_eq!(df(&d)["BuildCache"].as_array().unwrap().len(), cache.len());
    let (st, r) = build_prune(&d, "?reserved-space=1");
    assert_eq!(st, 200, "{r}");
    assert!(r["SpaceReclaimed"].as_i64().unwrap() >= 200 * 1024, "{r}");
    for i in &ids {
        assert!(
            r["CachesDeleted"].to_string().contains(i.as_str()),
            "{i}: {r}"
        );
    }
    assert_eq!(df(&d)["BuildCache"], serde_json::json!([]));
    d.pier_ok(&["volume", "rm", "bpvol"]);
}
