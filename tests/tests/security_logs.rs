//! Issue #11 item 7: container logs cannot fill the disk or the daemon's
//! memory (json-file rotation, the local and none drivers, daemon.json
//! defaults, `--tail` in bounded memory, `-f` across rotations).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pier_tests::{cmd, pier_bin, wait_until, Input, OutputExt, TestDaemon};

fn container_dir(d: &TestDaemon, id: &str) -> PathBuf {
    d.data_root.join("containers").join(id)
}

/// Names and sizes of the files of a container's log, sorted by name.
fn log_files(d: &TestDaemon, id: &str) -> Vec<(String, u64)> {
    let prefix = format!("{id}-json.log");
    let mut v: Vec<(String, u64)> = std::fs::read_dir(container_dir(d, id))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            n.starts_with(&prefix)
                .then(|| (n, e.metadata().map(|m| m.len()).unwrap_or(0)))
        })
        .collect();
    v.sort();
    v
}

fn run_d(d: &TestDaemon, args: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    d.pier_ok(&a).trim().to_string()
}

fn vm_kib(pid: i32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A line of 100 characters, printed as fast as the container can.
const FLOOD: &str = "yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789";

#[test]
fn rotation_keeps_the_log_within_max_size_times_max_file() {
    let d = TestDaemon::with_busybox();
    let id = run_d(
        &d,
        &[
            "--log-opt",
            "max-size=1m",
            "--log-opt",
            "max-file=2",
            "busybox",
            "sh",
            "-c",
            FLOOD,
        ],
    );
    std::thread::sleep(Duration::from_secs(4));
    d.pier_ok(&["kill", &id]);
    let files = log_files(&d, &id);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [format!("{id}-json.log"), format!("{id}-json.log.1")],
        "the log rotated once at least, and kept 2 files"
    );
    let total: u64 = files.iter().map(|(_, s)| s).sum();
    // Each file passes max-size (decimal, like Docker's) by less than a line.
    assert!(
        total <= 2_000_000 + 2 * 300,
        "{total} bytes on disk: {files:?}"
    );
    assert!(total > 1_000_000, "{files:?}");
    let tail = d.pier_ok(&["logs", "--tail", "3", &id]);
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.len(), 3, "{tail:?}");
    // The kill may cut the last line short: Docker logs that piece as it is.
    let full = "0123456789".repeat(10);
    assert!(
        lines[..2].iter().all(|l| *l == full) && full.starts_with(lines[2]),
        "{tail:?}"
    );
    // `logs` reads the rotated file, then the live one.
    let all = d.pier(&["logs", &id]);
    assert_eq!(all.code(), 0, "{}", all.describe());
    let n = all.out().lines().count();
    assert!(n > 6000 && n < 2_000_000 / 100, "{n} lines");
    d.pier_ok(&["rm", "-f", &id]);
}

#[test]
fn compress_gzips_rotated_files() {
    let d = TestDaemon::with_busybox();
    let id = run_d(
        &d,
        &[
            "--log-opt",
            "max-size=100k",
            "--log-opt",
            "max-file=3",
            "--log-opt",
            "compress=true",
            "busybox",
            "sh",
            "-c",
            FLOOD,
        ],
    );
    assert!(
        wait_until(Duration::from_secs(20), || log_files(&d, &id).len() == 3),
        "{:?}",
        log_files(&d, &id)
    );
    d.pier_ok(&["kill", &id]);
    let files = log_files(&d, &id);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("{id}-json.log"),
            format!("{id}-json.log.1.gz"),
            format!("{id}-json.log.2.gz")
        ]
    );
    for (n, size) in &files[1..] {
        let head = std::fs::read(container_dir(&d, &id).join(n)).unwrap();
        assert_eq!(&head[..2], b"\x1f\x8b", "{n} is gzip");
        assert!(*size < 100_000 / 5, "{n}: {size} bytes, compressed");
    }
    // The compressed files are read too: more lines than the live file holds.
    let live = std::fs::read_to_string(container_dir(&d, &id).join(&files[0].0)).unwrap();
    let all = d.pier_ok(&["logs", &id]);
    assert!(
        all.lines().count() > live.lines().count() + 1000,
        "{} lines from logs, {} in the live file",
        all.lines().count(),
        live.lines().count()
    );
    // --tail across the boundary of the live file and a .gz one.
    let want = live.lines().count() + 10;
    let tail = d.pier_ok(&["logs", "--tail", &want.to_string(), &id]);
    assert_eq!(tail.lines().count(), want);
    d.pier_ok(&["rm", "-f", &id]);
}

#[test]
fn tail_of_a_big_log_keeps_the_daemon_small() {
    let d = TestDaemon::with_busybox();
    let id = d.pier_ok(&["create", "busybox", "echo", "first"]);
    let id = id.trim();
    d.pier_ok(&["start", "-a", id]);
    let path = d.inspect(id)["LogPath"].as_str().unwrap().to_string();
    // ~300 MB of the container's log, written here: quicker than through a
    // container, and the daemon reads it the same way.
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let text = "x".repeat(1000);
        let mut block = String::new();
        for i in 0..1000 {
            block.push_str(&format!(
                "{{\"log\":\"{i:04} {text}\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-07T10:00:00.000000001Z\"}}\n"
            ));
        }
        for _ in 0..290 {
            f.write_all(block.as_bytes()).unwrap();
        }
        f.write_all(
            b"{\"log\":\"the end\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-07T10:00:01Z\"}\n",
        )
        .unwrap();
    }
    assert!(std::fs::metadata(&path).unwrap().len() > 300_000_000);
    let pid = d.daemon_pid().unwrap();
    let before = vm_kib(pid, "VmRSS:");
    let hwm_before = vm_kib(pid, "VmHWM:");
    let t = std::time::Instant::now();
    let out = d.pier_ok(&["logs", "--tail", "3", id]);
    let took = t.elapsed();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert!(lines[0].starts_with("0998 xxx"), "{}", &lines[0][..20]);
    assert_eq!(lines[2], "the end");
    let hwm = vm_kib(pid, "VmHWM:");
    eprintln!(
        "logs --tail 3 of a {} byte log: daemon RSS {before} KiB before, peak {hwm_before} -> {hwm} KiB, {took:?}",
        std::fs::metadata(&path).unwrap().len()
    );
    assert!(
        hwm < before.max(hwm_before) + 50 * 1024,
        "daemon peak RSS {hwm} KiB, {before} KiB before (peak {hwm_before} KiB)"
    );
    assert!(took < Duration::from_secs(5), "tail took {took:?}");
    d.pier_ok(&["rm", "-f", id]);
}

/// `out` holds `line0` .. `line<n-1>`, each once, in order.
fn assert_every_line(out: &str, n: usize) {
    let got: Vec<&str> = out.lines().collect();
    let first_wrong = (0..n).find(|i| got.get(*i) != Some(&format!("line{i}").as_str()));
    assert!(
        first_wrong.is_none() && got.len() == n,
        "{} lines, want {n}; first wrong at {first_wrong:?}: {:?}",
        got.len(),
        first_wrong.map(|i| &got[i.saturating_sub(2)..(i + 2).min(got.len())])
    );
}

#[test]
fn follow_sees_lines_written_after_rotations() {
    let d = TestDaemon::with_busybox();
    let id = run_d(
        &d,
        &[
            "--log-opt",
            "max-size=10k",
            "--log-opt",
            "max-file=2",
            "busybox",
            "sh",
            "-c",
            "sleep 1; i=0; while [ $i -lt 600 ]; do echo line$i; i=$((i+1)); usleep 3000; done; sleep 1",
        ],
    );
    let out = d.pier(&["logs", "-f", &id]);
    assert_eq!(out.code(), 0, "{}", out.describe());
    assert_every_line(&out.out(), 600);
    // The early lines are rotated away by now: the follower read them live.
    assert!(log_files(&d, &id).len() == 2, "{:?}", log_files(&d, &id));
    let all = d.pier_ok(&["logs", &id]);
    assert!(!all.contains("line0\n"), "line0 was rotated away");
    d.pier_ok(&["rm", "-f", &id]);
}

#[test]
fn follow_keeps_up_with_several_rotations_between_looks() {
    let d = TestDaemon::with_busybox();
    // A burst rotates the 2k files many times within one poll of the follower.
    let id = run_d(
        &d,
        &[
            "--log-opt",
            "max-size=2k",
            "--log-opt",
            "max-file=100",
            "busybox",
            "sh",
            "-c",
            "sleep 1; i=0; while [ $i -lt 1000 ]; do echo line$i; i=$((i+1)); done; sleep 1",
        ],
    );
    let out = d.pier(&["logs", "-f", &id]);
    assert_eq!(out.code(), 0, "{}", out.describe());
    assert_every_line(&out.out(), 1000);
    assert!(log_files(&d, &id).len() > 10, "{:?}", log_files(&d, &id));
    d.pier_ok(&["rm", "-f", &id]);
}

#[test]
fn none_and_local_drivers() {
    let d = TestDaemon::with_busybox();
    let id = d.pier_ok(&[
        "run",
        "-d",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "secret",
    ]);
    let id = id.trim();
    let o = d.pier(&["logs", id]);
    assert_eq!(o.code(), 1, "{}", o.describe());
    assert!(
        o.err()
            .contains("configured logging driver does not support reading"),
        "{}",
        o.describe()
    );
    let r = d.http(
        "GET",
        &format!("/v1.43/containers/{id}/logs?stdout=1"),
        None,
        b"",
    );
    assert_eq!(r.status, 501, "{}", r.text());
    let v = d.inspect(id);
    assert_eq!(v["HostConfig"]["LogConfig"]["Type"], "none");
    assert_eq!(v["LogPath"], "");
    assert!(log_files(&d, id).is_empty(), "no log file kept");
    d.pier_ok(&["rm", "-f", id]);

    let id = d.pier_ok(&[
        "run",
        "-d",
        "--log-driver",
        "local",
        "busybox",
        "sh",
        "-c",
        "echo a; echo b >&2",
    ]);
    let id = id.trim();
    d.pier_ok(&["wait", id]);
    let o = d.pier(&["logs", id]);
    assert_eq!((o.out().as_str(), o.err().as_str()), ("a\n", "b\n"));
    let v = d.inspect(id);
    assert_eq!(v["HostConfig"]["LogConfig"]["Type"], "local");
    assert_eq!(v["LogPath"], "");
    assert!(container_dir(&d, id)
        .join("local-logs/container.log")
        .is_file());
    d.pier_ok(&["rm", "-f", id]);
}

#[test]
fn bad_drivers_and_options_are_refused_at_create() {
    let d = TestDaemon::with_busybox();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--log-driver", "syslog"],
            "logger: no log driver named 'syslog' is registered",
        ),
        (
            &["--log-opt", "bogus=1"],
            "unknown log opt 'bogus' for json-file log driver",
        ),
        (&["--log-opt", "max-size=abc"], "invalid size: 'abc'"),
        (
            &["--log-opt", "max-size=0"],
            "max-size must be a positive number",
        ),
        (
            &["--log-opt", "max-file=0"],
            "max-file cannot be less than 1",
        ),
        (
            &["--log-opt", "compress=true"],
            "compress cannot be true when max-file is less than 2 or max-size is not set",
        ),
        (
            &["--log-driver", "local", "--log-opt", "tag=x"],
            "unknown log opt 'tag' for log driver local",
        ),
    ];
    for (args, msg) in cases {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend(["busybox", "true"]);
        let o = d.pier(&a);
        assert_eq!(o.code(), 125, "{args:?}: {}", o.describe());
        assert!(o.err().contains(msg), "{args:?}: {}", o.describe());
    }
    let body = br#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"LogConfig":{"Type":"json-file","Config":{"max-size":"1e400"}}}}"#;
    let r = d.http(
        "POST",
        "/v1.43/containers/create",
        Some("application/json"),
        body,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        d.pier_ok(&["ps", "-aq"]).trim().is_empty(),
        "nothing was created"
    );
}

#[test]
fn daemon_json_sets_the_default_log_config() {
    let dir = tempfile_dir("cfg");
    let cfg = dir.path().join("daemon.json");
    std::fs::write(
        &cfg,
        r#"{"log-driver":"json-file","log-opts":{"max-size":"2k","max-file":"3"}}"#,
    )
    .unwrap();
    let d = TestDaemon::start_with_args(&["--config-file", cfg.to_str().unwrap()]);
    d.import_busybox();
    let id = run_d(
        &d,
        &[
            "busybox",
            "sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done",
        ],
    );
    d.pier_ok(&["wait", &id]);
    let v = d.inspect(&id);
    assert_eq!(
        v["HostConfig"]["LogConfig"],
        serde_json::json!({"Type": "json-file", "Config": {"max-size": "2k", "max-file": "3"}})
    );
    let files = log_files(&d, &id);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.iter().all(|(_, s)| *s < 2000 + 200), "{files:?}");
    let out = d.pier_ok(&["logs", "--tail", "1", &id]);
    assert_eq!(out, "line299\n");
    // A container's own options win, key by key.
    let id2 = d.pier_ok(&["create", "--log-opt", "max-file=2", "busybox"]);
    let v = d.inspect(id2.trim());
    assert_eq!(
        v["HostConfig"]["LogConfig"]["Config"],
        serde_json::json!({"max-size": "2k", "max-file": "2"})
    );
    d.pier_ok(&["rm", "-f", &id, id2.trim()]);
}

/// A directory under /tmp removed when dropped, also when a test fails.
fn tempfile_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("pier-logs-{tag}-"))
        .tempdir_in("/tmp")
        .unwrap()
}

/// `pier daemon` with `cfg` as its config file, expected to refuse to start.
fn daemon_refuses(dir: &Path, cfg: &str, flags: &[&str]) -> String {
    let file = dir.join("daemon.json");
    std::fs::write(&file, cfg).unwrap();
    let data = dir.join("data");
    let mut c = Command::new(pier_bin());
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
    let o = cmd::run(c, Input::Null, Duration::from_secs(20));
    assert_ne!(o.code(), 0, "{}", o.describe());
    assert!(!data.exists(), "a refused config touches nothing");
    o.err()
}

#[test]
fn daemon_json_unknown_keys_and_conflicts_stop_the_daemon() {
    let tmp = tempfile_dir("bad");
    let dir = tmp.path();
    let e = daemon_refuses(dir, r#"{"log-driver":"local","bogus-key":1}"#, &[]);
    assert!(
        e.contains("the following directives don't match any configuration option: bogus-key"),
        "{e}"
    );
    let e = daemon_refuses(dir, r#"{"log-driver":"local"}"#, &["--log-driver", "none"]);
    assert!(
        e.contains("the following directives are specified both as a flag and in the configuration file: log-driver: (from flag: none, from file: local)"),
        "{e}"
    );
    let e = daemon_refuses(dir, r#"{"log-opts":{"max-size":"1x"}}"#, &[]);
    assert!(e.contains("invalid suffix: 'x'"), "{e}");
}
