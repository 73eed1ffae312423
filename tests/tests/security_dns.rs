//! Issue #11, item 3: what a container sends the daemon's embedded DNS
//! server cannot stop it serving the others. One container floods it with
//! queries to forward (the upstream is unreachable from the test's network
//! namespace, so each would wait), with garbage over TCP and with idle TCP
//! connections; another container on the network still resolves names.

use std::time::{Duration, Instant};

use pier_tests::TestDaemon;

fn w(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

#[test]
fn a_flooding_container_does_not_stop_name_resolution_for_another() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&["network", "create", "dnsnet"]);
    d.pier_ok(&w("run -d --name web --network dnsnet busybox sleep 300"));
    let web_ip = d
        .inspect("web")
        .pointer("/NetworkSettings/Networks/dnsnet/IPAddress")
        .and_then(|v| v.as_str())
        .expect("web's address")
        .to_string();
    let flood = r#"
        gw=$(sed -n 's/^nameserver //p' /etc/resolv.conf | head -n1)
        for i in $(seq 40); do
            (while true; do nslookup "x$i-$RANDOM.example" >/dev/null 2>&1; done) &
        done
        for i in $(seq 20); do
            (while true; do head -c 65536 /dev/urandom | nc "$gw" 53 >/dev/null 2>&1; done) &
            (sleep 300 | nc "$gw" 53 >/dev/null 2>&1) &
        done
        wait
    "#;
    d.pier_ok(&[
        "run",
        "-d",
        "--name",
        "flood",
        "--network",
        "dnsnet",
        "busybox",
        "sh",
        "-c",
        flood,
    ]);
    // Let the flood build up.
    std::thread::sleep(Duration::from_secs(3));
    let script = "for i in 1 2 3 4 5; do nslookup web || exit 1; done";
    let t = Instant::now();
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "--network",
        "dnsnet",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    let took = t.elapsed();
    assert_eq!(
        out.matches(&web_ip).count(),
        5,
        "web not resolved each time during the flood:\n{out}"
    );
    // A container start is part of this; five lookups must not wait for
    // the flooded forwards.
    assert!(took < Duration::from_secs(15), "lookups took {took:?}");
    let ping = d.http("GET", "/_ping", None, b"");
    assert_eq!(ping.status, 200);
    d.pier_ok(&w("rm -f flood web"));
    d.pier_ok(&w("network rm dnsnet"));
    d.assert_clean();
}
