//! `stats` as Docker computes it: CPU % from real deltas, memory without
//! inactive file cache, NET I/O from the container's interfaces, BLOCK I/O
//! from the block-io controller, PIDs, and a stream of one object a second.
//! Checked through `pier stats` and the real docker CLI.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use pier_tests::{cmd, Input, OutputExt, TestDaemon, CMD_TIMEOUT};

const DOCKER: &str = "/usr/bin/docker";
const FMT: &str = "{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}";

/// One `--format FMT` row, split into its six columns.
fn row(out: &str) -> Vec<String> {
    let line = out.lines().next().unwrap_or_default();
    let cols: Vec<String> = line.split('|').map(str::to_string).collect();
    assert_eq!(cols.len(), 6, "stats row: {out:?}");
    cols
}

fn pier_stats(d: &TestDaemon, ctr: &str) -> Vec<String> {
    row(&d.pier_ok(&["stats", "--no-stream", "--format", FMT, ctr]))
}

fn docker_stats(d: &TestDaemon, ctr: &str) -> Vec<String> {
    let mut c = Command::new(DOCKER);
    c.args(["stats", "--no-stream", "--format", FMT, ctr])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.join("docker-config"))
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION");
    let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
    assert_eq!(o.code(), 0, "docker stats: {}", o.describe());
    row(&o.out())
}

fn pct(s: &str) -> f64 {
    s.trim()
        .trim_end_matches('%')
        .parse()
        .unwrap_or_else(|_| panic!("not a percentage: {s:?}"))
}

/// Bytes from Docker's human sizes: `41.2MiB` (binary) or `1.3kB` (decimal).
fn bytes(s: &str) -> f64 {
    let s = s.trim();
    let i = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or_else(|| panic!("no unit in {s:?}"));
    let n: f64 = s[..i]
        .parse()
        .unwrap_or_else(|_| panic!("not a size: {s:?}"));
    let mult = match &s[i..] {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        u => panic!("unknown unit {u:?} in {s:?}"),
    };
    n * mult
}

/// `A / B` as two byte counts.
fn pair(s: &str) -> (f64, f64) {
    let (a, b) = s
        .split_once(" / ")
        .unwrap_or_else(|| panic!("not `A / B`: {s:?}"));
    (bytes(a), bytes(b))
}

/// CPU time of one process (utime + stime) in seconds, from /proc.
fn proc_cpu_secs(pid: i32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    let rest = &s[s.rfind(')').expect("comm") + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 of stat(5), counted from after the comm; USER_HZ is 100.
    (f[11] + f[12]) as f64 / 100.0
}

/// Runs `f` and says what share of one CPU (in %) `pid` used meanwhile:
/// an independent reference, as the 2-core test host is shared and a busy
/// loop gets anywhere from a third to all of one CPU.
fn measured<T>(pid: i32, f: impl FnOnce() -> T) -> (T, f64) {
    let (c0, t0) = (proc_cpu_secs(pid), Instant::now());
    let r = f();
    let pct = (proc_cpu_secs(pid) - c0) / t0.elapsed().as_secs_f64() * 100.0;
    (r, pct)
}

#[test]
fn cpu_percent_is_real_and_matches_docker() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&[
        "run",
        "-d",
        "--name",
        "burn",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let pid = d.container_pid("burn");
    // Both CLIs at once, so they measure nearly the same second.
    let ((p, k), real) = measured(pid, || {
        std::thread::scope(|s| {
            let p = s.spawn(|| pier_stats(&d, "burn"));
            let k = s.spawn(|| docker_stats(&d, "burn"));
            (p.join().unwrap(), k.join().unwrap())
        })
    });
    let (pc, kc) = (pct(&p[0]), pct(&k[0]));
    eprintln!("pier CPU {pc}%  docker CPU {kc}%  /proc says {real:.2}%");
    // Before real deltas a busy loop showed well under 1%.
    assert!(pc > 20.0, "pier stats CPU % of a busy loop: {p:?}");
    assert!((pc - real).abs() < 15.0, "pier {pc}% vs /proc {real:.2}%");
    // The two clients' one-second windows start a little apart, and the
    // loop's share of the shared host swings by several points a second.
    assert!((pc - kc).abs() < 10.0, "pier {pc}% vs docker {kc}%");
    // The other columns agree too (memory within a page or two of churn).
    assert_eq!(p[5], k[5], "PIDS: pier {p:?} docker {k:?}");
    let (pm, km) = (pair(&p[1]), pair(&k[1]));
    assert_eq!(pm.1, km.1, "memory limit: pier {p:?} docker {k:?}");
    assert!(
        (pm.0 - km.0).abs() < 1024.0 * 1024.0,
        "pier {p:?} docker {k:?}"
    );
    d.pier_ok(&["rm", "-f", "burn"]);
    d.assert_clean();
}

#[test]
fn memory_pids_and_block_io() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&[
        "run", "-d", "--name", "mem", "busybox", "sh", "-c",
        "dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 2>/dev/null; sleep 1000 & sleep 1000 & wait",
    ]);
    let cond = || {
        let r = pier_stats(&d, "mem");
        (pair(&r[1]).0 >= 40.0 * 1024.0 * 1024.0 && r[5] == "3").then_some(r)
    };
    let mut got = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.is_none() && Instant::now() < deadline {
        got = cond();
    }
    let r =
        got.unwrap_or_else(|| panic!("40 MiB and 3 pids never shown: {:?}", pier_stats(&d, "mem")));
    let (usage, limit) = pair(&r[1]);
    assert!(limit > usage, "{r:?}");
    let mem_pct = pct(&r[2]);
    assert!((mem_pct - usage / limit * 100.0).abs() < 0.1, "{r:?}");
    // Overlay on tmpfs may do no block I/O at all: the column must still be
    // two sizes.
    let (rd, wr) = pair(&r[4]);
    assert!(rd >= 0.0 && wr >= 0.0, "{r:?}");
    let k = docker_stats(&d, "mem");
    assert_eq!(k[5], "3", "docker PIDS: {k:?}");
    assert!(pair(&k[1]).0 >= 40.0 * 1024.0 * 1024.0, "docker MEM: {k:?}");
    // The API has the fields Docker's clients read.
    let v: serde_json::Value = serde_json::from_slice(
        &d.http("GET", "/containers/mem/stats?stream=0", None, b"")
            .body,
    )
    .unwrap();
    assert_eq!(v["pids_stats"]["current"], 3, "{v}");
    assert!(
        v["memory_stats"]["stats"].as_object().is_some_and(|m| m
            .contains_key("total_inactive_file")
            || m.contains_key("inactive_file")),
        "{v}"
    );
    assert!(
        v["blkio_stats"]["io_service_bytes_recursive"].is_array(),
        "{v}"
    );
    assert!(v["cpu_stats"]["online_cpus"].as_u64() > Some(0), "{v}");
    // -a lists a stopped container with zeroed counters, as Docker does,
    // without waiting for a second sample of it.
    d.pier_ok(&["create", "--name", "idle", "busybox", "true"]);
    let t = Instant::now();
    let all = d.pier_ok(&[
        "stats",
        "-a",
        "--no-stream",
        "--format",
        "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}",
    ]);
    assert!(all.lines().any(|l| l == "idle 0.00% 0B / 0B 0"), "{all}");
    assert!(all.lines().any(|l| l.starts_with("mem ")), "{all}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stats -a took {:?}",
        t.elapsed()
    );
    let running = d.pier_ok(&["stats", "--no-stream", "--format", "{{.Name}}"]);
    assert_eq!(running, "mem\n");
    d.pier_ok(&["rm", "-f", "mem", "idle"]);
    d.assert_clean();
}

#[test]
fn net_io_grows_with_traffic() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&["network", "create", "statsnet"]);
    d.pier_ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "statsnet",
        "busybox",
        "sleep",
        "1000",
    ]);
    let before = pair(&pier_stats(&d, "srv")[3]);
    // 200 pings of 1000 bytes: ~200 kB each way on srv's eth0.
    d.pier_ok(&[
        "run",
        "--rm",
        "--network",
        "statsnet",
        "busybox",
        "ping",
        "-q",
        "-c",
        "200",
        "-i",
        "0.01",
        "-s",
        "1000",
        "srv",
    ]);
    let r = pier_stats(&d, "srv");
    let after = pair(&r[3]);
    eprintln!("NET I/O before {before:?} after {after:?}");
    assert!(after.0 >= before.0 + 190_000.0, "rx did not grow: {r:?}");
    assert!(after.1 >= before.1 + 190_000.0, "tx did not grow: {r:?}");
    let k = docker_stats(&d, "srv");
    let kn = pair(&k[3]);
    assert!(
        kn.0 >= after.0 * 0.99 && kn.1 >= after.1 * 0.99,
        "docker {k:?} pier {r:?}"
    );
    let v: serde_json::Value = serde_json::from_slice(
        &d.http(
            "GET",
            "/containers/srv/stats?one-shot=1&stream=0",
            None,
            b"",
        )
        .body,
    )
    .unwrap();
    assert!(
        v["networks"]["eth0"]["rx_packets"].as_u64() >= Some(200),
        "{v}"
    );
    assert!(v["networks"].get("lo").is_none(), "{v}");
    // A host-network container has no interfaces of its own: no networks,
    // as with dockerd (not the host's counters).
    d.pier_ok(&[
        "run",
        "-d",
        "--name",
        "hostnet",
        "--network",
        "host",
        "busybox",
        "sleep",
        "1000",
    ]);
    let v: serde_json::Value = serde_json::from_slice(
        &d.http(
            "GET",
            "/containers/hostnet/stats?stream=0&one-shot=1",
            None,
            b"",
        )
        .body,
    )
    .unwrap();
    assert!(v.get("networks").is_none(), "{v}");
    d.pier_ok(&["rm", "-f", "srv", "hostnet"]);
    d.pier_ok(&["network", "rm", "statsnet"]);
    d.assert_clean();
}

/// Reads `n` JSON objects off a `stream=1` response, with their arrival times.
fn stream_objects(d: &TestDaemon, path: &str, n: usize) -> Vec<(Instant, serde_json::Value)> {
    let mut s = UnixStream::connect(&d.sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: pier\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut out = Vec::new();
    let mut line = String::new();
    while out.len() < n {
        line.clear();
        assert!(
            r.read_line(&mut line).expect("read stream") > 0,
            "stream ended"
        );
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim())
            && v.is_object()
        {
            out.push((Instant::now(), v));
        }
    }
    out
}

/// The docker CLI's CPU %: cgroup CPU delta over host CPU delta, times CPUs.
fn cpu_pct(a: &serde_json::Value, b: &serde_json::Value) -> f64 {
    let n = |v: &serde_json::Value, p: &str| v.pointer(p).and_then(|x| x.as_f64()).unwrap();
    let cpu = n(b, "/cpu_stats/cpu_usage/total_usage") - n(a, "/cpu_stats/cpu_usage/total_usage");
    let sys = n(b, "/cpu_stats/system_cpu_usage") - n(a, "/cpu_stats/system_cpu_usage");
    cpu / sys * n(b, "/cpu_stats/online_cpus") * 100.0
}

#[test]
fn stream_gives_one_object_a_second_with_previous_cpu() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&[
        "run",
        "-d",
        "--name",
        "burn2",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let pid = d.container_pid("burn2");
    let (objs, real) = measured(pid, || {
        stream_objects(&d, "/containers/burn2/stats?stream=1", 4)
    });
    assert_eq!(objs[0].1["preread"], "0001-01-01T00:00:00Z");
    for w in objs.windows(2) {
        let ((t0, a), (t1, b)) = (&w[0], &w[1]);
        let gap = t1.duration_since(*t0);
        assert!(
            gap > Duration::from_millis(700) && gap < Duration::from_millis(1600),
            "objects {gap:?} apart"
        );
        assert_eq!(
            b["precpu_stats"], a["cpu_stats"],
            "precpu is the previous cpu_stats"
        );
        assert_eq!(b["preread"], a["read"]);
        let pct = cpu_pct(a, b);
        eprintln!("stream CPU {pct:.2}% over one second");
        assert!(pct > 20.0, "busy loop at {pct}% between stream objects");
    }
    // Over the whole stream, Docker's formula agrees with /proc (a single
    // second swings with the shared host's load).
    let span = cpu_pct(&objs[0].1, &objs[objs.len() - 1].1);
    eprintln!("stream CPU {span:.2}% over the stream, /proc {real:.2}%");
    assert!(
        (span - real).abs() < 10.0,
        "stream {span}% vs /proc {real:.2}%"
    );
    // one-shot answers at once, with no previous sample.
    let t = Instant::now();
    let v: serde_json::Value = serde_json::from_slice(
        &d.http(
            "GET",
            "/containers/burn2/stats?stream=0&one-shot=1",
            None,
            b"",
        )
        .body,
    )
    .unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "one-shot took {:?}",
        t.elapsed()
    );
    assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 0, "{v}");
    d.pier_ok(&["rm", "-f", "burn2"]);
    d.assert_clean();
}
