//! Issue #11, item 4: slow or idle clients cannot lock everyone out. Before,
//! idle connections held the daemon's descriptors forever and 20,000 of them
//! left no request served. Now the daemon raises its open-file limit, serves
//! a bounded number of connections, and closes a connection whose request
//! head does not arrive within the header timeout (10 s); streams stay open.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use pier_tests::TestDaemon;

/// The daemon's header timeout (pier-server's `HEADER_TIMEOUT`).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Raises this process's soft open-file limit to its hard limit: the test
/// holds thousands of sockets.
fn raise_own_nofile() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    let hard = line.split_whitespace().nth(4).unwrap().to_string();
    let st = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={hard}:{hard}"))
        .status()
        .unwrap();
    assert!(st.success(), "prlimit failed");
    hard.parse().unwrap_or(u64::MAX)
}

fn timed_get(d: &TestDaemon, path: &str) -> Duration {
    let t = Instant::now();
    let r = d.http("GET", path, None, b"");
    let took = t.elapsed();
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    took
}

/// Whether the daemon closed `s` (EOF or reset) within `within`.
fn closed_within(s: &mut UnixStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => true,
        // A 408 or similar before the close is a close too.
        Ok(_) => s.read(&mut b).map(|n| n == 0).unwrap_or(true),
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn idle_and_slow_clients_do_not_lock_out_the_api() {
    let hard = raise_own_nofile();
    assert!(
        hard >= 6000,
        "hard open-file limit {hard} is too low for this test"
    );
    let d = TestDaemon::start();

    // A stream opened now must outlive the header timeout.
    let mut events = UnixStream::connect(&d.sock).unwrap();
    events
        .write_all(b"GET /events HTTP/1.1\r\nHost: pier\r\n\r\n")
        .unwrap();

    let idle: Vec<UnixStream> = (0..5000)
        .map(|i| {
            UnixStream::connect(&d.sock)
                .unwrap_or_else(|e| panic!("idle connection {i}: {e}; log:\n{}", d.log_tail(20)))
        })
        .collect();
    let ping = timed_get(&d, "/_ping");
    let list = timed_get(&d, "/containers/json");
    eprintln!("with 5000 idle connections: /_ping {ping:?}, /containers/json {list:?}");
    assert!(ping < Duration::from_secs(1), "/_ping took {ping:?}");
    assert!(
        list < Duration::from_secs(1),
        "/containers/json took {list:?}"
    );

    // Clients that start a request head and never finish it.
    let started = Instant::now();
    let mut slow: Vec<UnixStream> = (0..100)
        .map(|_| {
            let mut s = UnixStream::connect(&d.sock).unwrap();
            s.write_all(b"GET /_ping HTTP/1.1\r\nHost: pier\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    let deadline = HEADER_TIMEOUT + Duration::from_secs(10);
    for (i, s) in slow.iter_mut().enumerate() {
        let left = deadline.saturating_sub(started.elapsed()) + Duration::from_millis(1);
        assert!(
            closed_within(s, left),
            "slow client {i} still open after {:?}",
            started.elapsed()
        );
    }
    let took = started.elapsed();
    eprintln!("100 partial headers closed after {took:?}");
    assert!(
        took >= HEADER_TIMEOUT - Duration::from_secs(1),
        "closed too early ({took:?}): the timeout must let a real client finish"
    );
    // The idle ones went the same way.
    let mut idle = idle;
    for s in idle.iter_mut().take(50) {
        assert!(
            closed_within(s, Duration::from_secs(5)),
            "an idle connection is still open"
        );
    }
    drop(idle);
    drop(slow);

    // The event stream is past its head: still open, and still delivering.
    d.pier_ok(&["volume", "create", "after-timeout"]);
    events
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut seen = Vec::new();
    let mut b = [0u8; 4096];
    let t = Instant::now();
    while !String::from_utf8_lossy(&seen).contains("after-timeout") {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no event on the open stream"
        );
        let n = events.read(&mut b).expect("event stream cut");
        assert!(n > 0, "event stream closed by the daemon");
        seen.extend_from_slice(&b[..n]);
    }
    drop(events);

    // And the daemon serves as before.
    assert!(timed_get(&d, "/_ping") < Duration::from_secs(1));
    d.pier_ok(&["volume", "rm", "after-timeout"]);
    d.assert_clean();
}
