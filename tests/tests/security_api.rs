//! Issue #11, item 3: no request brings the daemon down. Numbers and times a
//! client sends that overflow or make no sense are a 400 naming the
//! parameter; before, `GET /events?until=1e30` panicked the daemon (and with
//! the release profile's `panic = "abort"`, killed it).

use std::time::Duration;

use pier_tests::TestDaemon;

fn ping_ok(d: &TestDaemon) {
    let r = d.http("GET", "/_ping", None, b"");
    assert_eq!(
        r.status,
        200,
        "daemon stopped answering; log:\n{}",
        d.log_tail(40)
    );
}

#[test]
fn overflowing_and_nonsense_values_are_400_and_the_daemon_lives() {
    let d = TestDaemon::start();
    let ctr = d.pier_ok(&["create", "--name", "num", &d.import_busybox(), "true"]);
    let ctr = ctr.trim();
    let filters = |f: &str| {
        let mut s = String::new();
        for b in f.bytes() {
            s.push_str(&format!("%{b:02X}"));
        }
        s
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("GET", "/events?until=1e30".into(), "until"),
        ("GET", "/events?until=1e19".into(), "until"),
        ("GET", "/events?since=1e19".into(), "since"),
        ("GET", "/events?since=1e30&until=1".into(), "since"),
        ("GET", "/events?until=inf".into(), "until"),
        ("GET", "/events?until=NaN".into(), "until"),
        ("GET", "/events?until=99999999999999999999".into(), "until"),
        ("GET", "/events?since=-9223372036854775809".into(), "since"),
        ("GET", "/events?since=99999999999999999999h".into(), "since"),
        (
            "GET",
            format!("/containers/{ctr}/logs?stdout=1&since=1e30"),
            "since",
        ),
        (
            "GET",
            format!("/containers/{ctr}/logs?stdout=1&until=1e19"),
            "until",
        ),
        (
            "GET",
            format!("/containers/{ctr}/logs?stdout=1&tail=1e30"),
            "tail",
        ),
        ("POST", format!("/containers/{ctr}/stop?t=1e30"), "t"),
        ("POST", format!("/containers/{ctr}/restart?t=inf"), "t"),
        (
            "POST",
            format!("/containers/{ctr}/resize?h=70000&w=80"),
            "h",
        ),
        ("POST", format!("/containers/{ctr}/resize?h=24&w=-1"), "w"),
        ("GET", "/containers/json?limit=1e30".into(), "limit"),
        (
            "POST",
            format!(
                "/containers/prune?filters={}",
                filters(r#"{"until":["99999999999999999999h"]}"#)
            ),
            "until",
        ),
        (
            "GET",
            format!(
                "/images/json?filters={}",
                filters(r#"{"until":["9999999999999999999999"]}"#)
            ),
            "until",
        ),
    ];
    for (method, path, key) in &cases {
        let r = d.http(method, path, None, b"");
        assert_eq!(
            r.status,
            400,
            "{method} {path}: {} {}; log:\n{}",
            r.status,
            r.text(),
            d.log_tail(20)
        );
        let msg = r.json()["message"].as_str().unwrap_or_default().to_string();
        assert!(
            msg.contains(key),
            "{path}: message {msg:?} should name {key}"
        );
        ping_ok(&d);
    }
    let r = d.http("GET", "/events?until=1e30", None, b"");
    assert_eq!(
        r.json()["message"],
        r#"invalid value for until: failed to parse value as time or duration: "1e30""#
    );

    // What Docker takes still works: seconds with a fraction, RFC 3339, a
    // duration back from now, and an `until` in the past ends the stream.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for q in [
        format!("since=0&until={now}.5"),
        "since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z".to_string(),
        "since=10m&until=1s".to_string(),
        format!("since={}&until={}", now - 60, now - 1),
    ] {
        let r = d.http("GET", &format!("/events?{q}"), None, b"");
        assert_eq!(r.status, 200, "{q}: {}", r.text());
    }
    // The largest `until` Docker accepts streams on without a panic: it is
    // past its head, and the daemon still answers while it is open.
    let sock = d.sock.clone();
    let long = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        s.write_all(b"GET /events?since=1&until=9223372036854775807 HTTP/1.1\r\nHost: p\r\n\r\n")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 256];
        let n = s.read(&mut b).unwrap();
        String::from_utf8_lossy(&b[..n]).into_owned()
    });
    let head = long.join().unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    ping_ok(&d);

    let r = d.http(
        "POST",
        &format!("/containers/{ctr}/resize?h=24&w=80"),
        None,
        b"",
    );
    assert_ne!(r.status, 400, "a valid size is not refused: {}", r.text());
    let pid = d.daemon_pid().expect("daemon pid");
    assert!(pier_tests::alive(pid), "daemon died");
    d.pier_ok(&["rm", ctr]);
    d.assert_clean();
}
