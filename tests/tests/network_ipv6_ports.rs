//! Published ports on IPv6 as Docker publishes them: a port without a host
//! address binds `[::]` beside `0.0.0.0` when the host has IPv6, and
//! `-p [::1]:PORT:PORT` binds that address. The container itself has only
//! IPv4: the userland proxy carries IPv6 clients. Checked over loopback in
//! the test daemon's own network namespace.

use std::time::Duration;

use pier_tests::{cmd, wait_until, Input, OutputExt, TestDaemon, CMD_TIMEOUT};

const HTTPD: &str = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www";

/// `curl` of `url` from inside the daemon's namespace; the body, if any.
fn get(d: &TestDaemon, url: &str) -> Option<String> {
    let mut c = d.in_netns("curl");
    c.args(["-sS", "--max-time", "3", url]);
    let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
    o.status.success().then(|| o.out())
}

fn answers(d: &TestDaemon, url: &str) -> bool {
    wait_until(Duration::from_secs(10), || {
        get(d, url).as_deref() == Some("hello\n")
    })
}

#[test]
fn ports_bind_ipv6_too_and_an_ipv6_host_address_works() {
    let mut d = TestDaemon::with_busybox();
    // The namespace's loopback has ::1: the host "has IPv6".
    let mut c = d.in_netns("ip");
    c.args(["-6", "addr", "show", "dev", "lo"]);
    let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
    assert!(o.out().contains("::1"), "{}", o.describe());

    d.pier_ok(&[
        "run", "-d", "--name", "web", "-p", "8080:80", "busybox", "sh", "-c", HTTPD,
    ]);
    d.pier_ok(&[
        "run",
        "-d",
        "--name",
        "web6",
        "-p",
        "[::1]:8081:80",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    d.pier_ok(&[
        "run", "-d", "--name", "any", "-p", "80", "busybox", "sh", "-c", HTTPD,
    ]);

    // As Docker: both families, the same host port.
    let port = d.pier_ok(&["port", "web", "80/tcp"]);
    let lines: Vec<&str> = port.lines().collect();
    assert_eq!(lines, ["0.0.0.0:8080", "[::]:8080"], "{port}");
    let ports = &d.inspect("web")["NetworkSettings"]["Ports"]["80/tcp"];
    assert_eq!(
        ports,
        &serde_json::json!([
            {"HostIp": "0.0.0.0", "HostPort": "8080"},
            {"HostIp": "::", "HostPort": "8080"},
        ]),
    );
    assert!(answers(&d, "http://127.0.0.1:8080/"));
    assert!(answers(&d, "http://[::1]:8080/"));

    // An IPv6 host address: that one only.
    let port = d.pier_ok(&["port", "web6"]);
    assert!(port.contains("80/tcp -> [::1]:8081"), "{port}");
    assert!(!port.contains("0.0.0.0"), "{port}");
    assert!(answers(&d, "http://[::1]:8081/"));
    assert_eq!(get(&d, "http://127.0.0.1:8081/"), None);

    // A port the kernel picks is the same on both families.
    let port = d.pier_ok(&["port", "any", "80/tcp"]);
    let picked: Vec<&str> = port
        .lines()
        .map(|l| l.rsplit(':').next().unwrap())
        .collect();
    assert_eq!(picked.len(), 2, "{port}");
    assert_eq!(picked[0], picked[1], "{port}");
    assert!(answers(&d, &format!("http://[::1]:{}/", picked[0])));

    // A taken IPv6 port is refused with Docker's words.
    let o = d.pier(&["run", "-d", "-p", "[::1]:8081:80", "busybox", "sleep", "9"]);
    assert!(!o.status.success());
    assert!(
        o.err()
            .contains("Bind for [::1]:8081 failed: port is already allocated"),
        "{}",
        o.err()
    );

    // A daemon restart binds both families again for the running container.
    d.restart();
    assert!(answers(&d, "http://127.0.0.1:8080/"));
    assert!(answers(&d, "http://[::1]:8080/"));
    assert!(answers(&d, "http://[::1]:8081/"));

    // Gone with the container.
    d.pier_ok(&["rm", "-f", "web", "web6", "any"]);
    assert!(wait_until(Duration::from_secs(5), || get(
        &d,
        "http://[::1]:8080/"
    )
    .is_none()));
    d.pier(&["container", "prune", "-f"]);
    d.assert_clean();
}
