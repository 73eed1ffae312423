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

/// Networks are IPv4 only: `--ipv6` or an IPv6 subnet is refused, not
/// recorded and shown as if the network had IPv6 (it never got an address).
#[test]
fn ipv6_networks_are_refused_not_faked() {
    let d = TestDaemon::start();
    let o = d.pier(&["network", "create", "--ipv6", "v6a"]);
    assert!(!o.status.success(), "{}", o.describe());
    assert!(
        o.err().contains("not supported by Pier: IPv6 networks"),
        "{}",
        o.describe()
    );

    let body = br#"{"Name":"v6b","IPAM":{"Config":[{"Subnet":"2001:389::/64"}]}}"#;
    let r = d.http("POST", "/networks/create", Some("application/json"), body);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("IPv6 networks"), "{}", r.text());

    let names = d.pier_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!names.contains("v6a") && !names.contains("v6b"), "{names}");
    d.assert_clean();
}
