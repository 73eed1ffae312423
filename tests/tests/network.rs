//! Networking end to end, inside each test daemon's own network namespace: user
//! networks with names and aliases, isolation between networks, published ports from
//! the namespace and from containers, network modes, and that rules and links go with
//! their containers and networks and come back after a daemon restart.

use std::time::Duration;

use pier_tests::cmd::{self, Input};
mod network_util;

use network_util::{sh_c, w};
use pier_tests::{wait_until, OutputExt, TestDaemon};

/// A busybox web server answering `hello` on port 80 of the container.
const HTTPD: &str = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www";

/// A non-loopback address of the daemon's namespace (the "host address" the
/// published ports are reached on, through DNAT rather than the proxy).
const HOST_ADDR: &str = "10.231.0.1";

fn run_in_ns(d: &TestDaemon, argv: &[&str]) -> std::process::Output {
    let mut c = d.in_netns(argv[0]);
    c.args(&argv[1..]);
    cmd::run(c, Input::Null, Duration::from_secs(20))
}

/// Gives the namespace an interface with [`HOST_ADDR`] (one end of a veth pair:
/// the dummy driver may be missing).
fn add_host_addr(d: &TestDaemon) {
    for argv in [
        &w("ip link add pt0 type veth peer name pt1")[..],
        &w("ip link set pt1 up"),
        &[
            "ip",
            "addr",
            "add",
            &format!("{HOST_ADDR}/24"),
            "dev",
            "pt0",
        ],
        &w("ip link set pt0 up"),
    ] {
        let o = run_in_ns(d, argv);
        assert!(o.status.success(), "{argv:?}: {}", o.describe());
    }
}

/// `GET url` from the daemon's namespace.
fn host_get(d: &TestDaemon, url: &str) -> Option<String> {
    let o = run_in_ns(d, &["curl", "-fsS", "--max-time", "3", url]);
    o.status.success().then(|| o.out())
}

/// `GET url` from a new container with extra `run` arguments (busybox's `wget -T`
/// crashes, hence `timeout`).
fn ctr_get(d: &TestDaemon, run_args: &[&str], url: &str) -> Option<String> {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(run_args);
    // Under `sh`, so that wget is not pid 1 (which ignores the timeout's SIGTERM).
    let script = format!("timeout 3 wget -qO- {url}; exit $?");
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    let o = d.pier(&args);
    o.status.success().then(|| o.out())
}

/// Waits for a server to answer `hello` at `url`, asked from the namespace.
fn wait_host_hello(d: &TestDaemon, url: &str) {
    assert!(
        wait_until(Duration::from_secs(10), || host_get(d, url).as_deref()
            == Some("hello\n")),
        "{url} never answered from the namespace\n{}",
        d.log_tail(30)
    );
}

fn ip_on(d: &TestDaemon, ctr: &str, net: &str) -> String {
    let v = d.inspect(ctr);
    let ip = v["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!ip.is_empty(), "{ctr} has no address on {net}: {v}");
    ip
}

fn gateway(d: &TestDaemon, net: &str) -> String {
    let out = d.pier_ok(&["network", "inspect", net]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("network inspect is JSON");
    let gw = v[0]["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!gw.is_empty(), "{net} has no gateway: {out}");
    gw
}

/// Interface names in the daemon's namespace.
fn links(d: &TestDaemon) -> Vec<String> {
    let o = run_in_ns(d, &w("ip -o link show"));
    assert!(o.status.success(), "{}", o.describe());
    o.out()
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

fn veths(d: &TestDaemon) -> Vec<String> {
    links(d)
        .into_iter()
        .filter(|n| n.starts_with("veth") || n.starts_with("pier-"))
        .collect()
}

/// Host veth ends are deleted in the background after a container goes, so a check
/// for "nothing left" waits for them (the kernel tears namespaces down lazily too).
fn assert_no_veths_but(d: &TestDaemon, keep: &[String]) {
    let gone = wait_until(Duration::from_secs(5), || {
        veths(d).iter().all(|v| keep.contains(v))
    });
    assert!(gone, "veths left: {:?} (expected only {keep:?})", veths(d));
}

/// The `pier` nftables table of the daemon's namespace ("" when there is none).
fn nft_table(d: &TestDaemon) -> String {
    let o = run_in_ns(d, &w("nft list table ip pier"));
    if o.status.success() {
        o.out()
    } else {
        String::new()
    }
}

#[test]
fn user_networks_resolve_names_and_aliases_and_stay_apart() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&["network", "create", "net1"]);
    d.pier_ok(&["network", "create", "net2"]);
    sh_c(
        &d,
        "run -d --name web --network net1 --network-alias www busybox",
        HTTPD,
    );
    let on1 = ["--network", "net1"];
    assert!(
        wait_until(Duration::from_secs(10), || ctr_get(&d, &on1, "http://web/")
            .as_deref()
            == Some("hello\n")),
        "web never answered by name on net1"
    );
    assert_eq!(
        ctr_get(&d, &on1, "http://www/").as_deref(),
        Some("hello\n"),
        "by alias"
    );
    let o = d.pier(&w("run --rm --network net1 busybox ping -c1 -W2 www"));
    assert_eq!(o.code(), 0, "ping by alias: {}", o.describe());

    // Another network neither resolves the name nor reaches the address.
    let web_ip = ip_on(&d, "web", "net1");
    let on2 = ["--network", "net2"];
    assert_eq!(ctr_get(&d, &on2, &format!("http://{web_ip}/")), None);
    let o = d.pier(&w("run --rm --network net2 busybox ping -c1 -W1 web"));
    assert_ne!(
        o.code(),
        0,
        "web must not resolve on net2: {}",
        o.describe()
    );

    // Connected to net2 as well: reachable there by name, and its /etc/hosts
    // gains the new address (as Docker's does); disconnect undoes both.
    d.pier_ok(&w("network connect net2 web"));
    let web_ip2 = ip_on(&d, "web", "net2");
    assert_eq!(
        ctr_get(&d, &on2, "http://web/").as_deref(),
        Some("hello\n"),
        "after connect"
    );
    let hosts = d.pier_ok(&w("exec web cat /etc/hosts"));
    assert!(hosts.contains(&web_ip2), "hosts after connect:\n{hosts}");
    assert!(hosts.contains(&web_ip), "hosts after connect:\n{hosts}");
    d.pier_ok(&w("network disconnect net2 web"));
    assert_eq!(ctr_get(&d, &on2, "http://web/"), None, "after disconnect");
    let hosts = d.pier_ok(&w("exec web cat /etc/hosts"));
    assert!(
        !hosts.contains(&web_ip2),
        "hosts after disconnect:\n{hosts}"
    );

    // Everything goes with the container and the networks.
    d.pier_ok(&["rm", "-f", "web"]);
    assert_no_veths_but(&d, &[]);
    d.pier_ok(&w("network rm net1 net2"));
    let left: Vec<String> = links(&d)
        .into_iter()
        .filter(|n| n.starts_with("br-"))
        .collect();
    assert!(left.is_empty(), "bridges left: {left:?}");
    let t = nft_table(&d);
    assert!(!t.contains("br-"), "rules of removed networks left:\n{t}");
    d.assert_clean();
}

#[test]
fn published_ports_answer_from_the_host_and_from_containers() {
    let d = TestDaemon::with_busybox();
    add_host_addr(&d);
    d.pier_ok(&["network", "create", "other"]);
    sh_c(
        &d,
        "run -d --name web -p 8080:80 -p 127.0.0.1::80 busybox",
        HTTPD,
    );
    // 127.0.0.1 through the userland proxy, the namespace's own address by DNAT.
    wait_host_hello(&d, "http://127.0.0.1:8080/");
    assert_eq!(
        host_get(&d, &format!("http://{HOST_ADDR}:8080/")).as_deref(),
        Some("hello\n")
    );
    let web_ip = ip_on(&d, "web", "bridge");
    let t = nft_table(&d);
    assert!(
        t.contains(&format!("dnat to {web_ip}:80")),
        "no DNAT rule for 8080:\n{t}"
    );
    // The random loopback port, as `pier port` reports it.
    let port = d.pier_ok(&["port", "web", "80/tcp"]);
    let lo = port
        .lines()
        .find(|l| l.starts_with("127.0.0.1:"))
        .unwrap_or_else(|| panic!("no loopback mapping in:\n{port}"))
        .to_string();
    assert!(port.contains("0.0.0.0:8080"), "{port}");
    assert_eq!(
        host_get(&d, &format!("http://{lo}/")).as_deref(),
        Some("hello\n")
    );

    // Containers reach it through the host address: from the same bridge and
    // from another network.
    let url = format!("http://{HOST_ADDR}:8080/");
    assert_eq!(ctr_get(&d, &[], &url).as_deref(), Some("hello\n"));
    assert_eq!(
        ctr_get(&d, &["--network", "other"], &url).as_deref(),
        Some("hello\n")
    );

    // A taken port fails the start clearly and leaves nothing running or wired.
    let before = veths(&d);
    let o = d.pier(&w("run -d --name clash -p 8080:80 busybox sleep 60"));
    assert_eq!(o.code(), 125, "{}", o.describe());
    assert!(
        o.err().contains("port is already allocated"),
        "{}",
        o.describe()
    );
    let v = d.inspect("clash");
    assert_eq!(v["State"]["Running"], false, "{}", v["State"]);
    assert_eq!(v["State"]["Pid"], 0, "{}", v["State"]);
    // Earlier --rm containers' veths may still be going; the failed start adds none.
    assert_no_veths_but(&d, &before);
    assert!(
        !d.exec_root
            .join("netns")
            .join(v["Id"].as_str().unwrap())
            .exists(),
        "the failed start left a namespace"
    );
    assert_eq!(
        nft_table(&d).matches("dport 8080").count(),
        2,
        "{}",
        nft_table(&d)
    );
    // The first container still serves.
    wait_host_hello(&d, "http://127.0.0.1:8080/");

    d.pier_ok(&w("rm -f web clash"));
    // The host ends of an exited container's veths go in the background.
    assert_no_veths_but(&d, &[]);
    let t = nft_table(&d);
    assert!(!t.contains("dnat"), "port rules left:\n{t}");
    assert_eq!(host_get(&d, "http://127.0.0.1:8080/"), None, "proxy left");
    d.pier_ok(&["network", "rm", "other"]);
    d.assert_clean();
}

#[test]
fn network_modes_none_host_and_container() {
    let d = TestDaemon::with_busybox();
    add_host_addr(&d);
    let ifaces = d.pier_ok(&w("run --rm --network none busybox ls /sys/class/net"));
    assert_eq!(ifaces.split_whitespace().collect::<Vec<_>>(), ["lo"]);

    // host: the daemon's namespace, dummy interface included.
    let ifaces = d.pier_ok(&w("run --rm --network host busybox ls /sys/class/net"));
    assert!(ifaces.split_whitespace().any(|i| i == "pt0"), "{ifaces}");
    let id = d.pier_ok(&w("create --network host busybox"));
    let v = d.inspect(id.trim());
    assert_eq!(v["HostConfig"]["NetworkMode"], "host");
    d.pier_ok(&["rm", v["Id"].as_str().unwrap()]);

    // container:<name>: the other container's loopback and interfaces.
    sh_c(
        &d,
        "run -d --name srv busybox",
        "mkdir /www && echo shared > /www/index.html && exec httpd -f -p 127.0.0.1:81 -h /www",
    );
    let got = wait_until(Duration::from_secs(10), || {
        ctr_get(&d, &["--network", "container:srv"], "http://127.0.0.1:81/").as_deref()
            == Some("shared\n")
    });
    assert!(got, "container:srv does not share srv's loopback");
    let mac_a = d.pier_ok(&w("exec srv cat /sys/class/net/eth0/address"));
    let mac_b = d.pier_ok(&w(
        "run --rm --network container:srv busybox cat /sys/class/net/eth0/address",
    ));
    assert_eq!(mac_a, mac_b);
    let o = d.pier(&w("run --rm --network container:srv -p 81:81 busybox true"));
    assert_eq!(o.code(), 125, "{}", o.describe());
    assert!(o.err().contains("conflicting options"), "{}", o.describe());
    d.pier_ok(&["rm", "-f", "srv"]);
    assert_no_veths_but(&d, &[]);
    d.assert_clean();
}

/// Rules, proxies, names and volumes are rebuilt from the records when the daemon
/// comes back, after a clean stop and after `kill -9`.
#[test]
fn networks_ports_and_volumes_survive_daemon_restarts() {
    let mut d = TestDaemon::with_busybox();
    add_host_addr(&d);
    d.pier_ok(&["network", "create", "net1"]);
    sh_c(&d, "run --rm -v data:/data busybox", "echo kept > /data/f");
    sh_c(
        &d,
        "run -d --name web --network net1 -p 8080:80 -v data:/data busybox",
        HTTPD,
    );
    wait_host_hello(&d, "http://127.0.0.1:8080/");
    let rules = nft_table(&d);
    for (how, restart) in [
        (
            "stop",
            &mut (|d: &mut TestDaemon| d.restart()) as &mut dyn FnMut(&mut TestDaemon),
        ),
        ("kill -9", &mut |d: &mut TestDaemon| {
            d.kill9();
            d.restart();
        }),
    ] {
        restart(&mut d);
        wait_host_hello(&d, "http://127.0.0.1:8080/");
        assert_eq!(
            host_get(&d, &format!("http://{HOST_ADDR}:8080/")).as_deref(),
            Some("hello\n"),
            "DNAT after {how}"
        );
        assert_eq!(nft_table(&d), rules, "rules after {how}");
        assert_eq!(
            ctr_get(&d, &["--network", "net1"], "http://web/").as_deref(),
            Some("hello\n"),
            "name after {how}"
        );
        assert_eq!(
            d.pier_ok(&w("run --rm -v data:/data busybox cat /data/f")),
            "kept\n",
            "volume after {how}"
        );
    }
    // Removing after a restart still cleans everything.
    d.pier_ok(&["rm", "-f", "web"]);
    d.pier_ok(&["network", "rm", "net1"]);
    assert_no_veths_but(&d, &[]);
    let t = nft_table(&d);
    assert!(
        !t.contains("dnat") && !t.contains("br-"),
        "rules left:\n{t}"
    );
    assert_eq!(
        d.pier_ok(&w("run --rm -v data:/data busybox cat /data/f")),
        "kept\n"
    );
    d.assert_clean();
}

#[test]
fn dns_servers_of_a_user_network_container_are_upstreams() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&["network", "create", "net1"]);
    d.pier_ok(&["network", "create", "net2"]);
    // A name only net2's embedded server knows: the upstream to test with.
    d.pier_ok(&w(
        "run -d --name svc --network net2 --network-alias svc.test busybox sleep 60",
    ));
    let svc_ip = ip_on(&d, "svc", "net2");
    let (gw1, gw2) = (gateway(&d, "net1"), gateway(&d, "net2"));
    // The embedded server stays the resolver; the given one is its upstream.
    let script = "grep ^nameserver /etc/resolv.conf; nslookup svc.test";
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "--network",
        "net1",
        "--dns",
        &gw2,
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(format!("nameserver {gw1}").as_str()),
        "{out}"
    );
    assert!(!out.contains(&format!("nameserver {gw2}")), "{out}");
    assert!(
        out.contains(&svc_ip),
        "svc.test not forwarded to --dns:\n{out}"
    );
    // Names on the container's own network still resolve.
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "--name",
        "me",
        "--network",
        "net1",
        "--dns",
        &gw2,
        "busybox",
        "nslookup",
        "me",
    ]);
    assert!(out.contains("Address"), "{out}");
    // Without --dns the name is not known upstream.
    let o = d.pier(&w("run --rm --network net1 busybox nslookup svc.test"));
    assert!(!o.out().contains(&svc_ip), "{}", o.describe());
    // On the default bridge --dns is written as is.
    let out = d.pier_ok(&w("run --rm --dns 127.0.0.9 busybox cat /etc/resolv.conf"));
    assert!(out.contains("nameserver 127.0.0.9"), "{out}");
    // --add-host with host-gateway: the container's gateway.
    let out = d.pier_ok(&w("run --rm --network net1 --add-host gw:host-gateway --add-host x.test:10.1.2.3 busybox cat /etc/hosts"));
    assert!(out.contains(&format!("{gw1}\tgw")), "{out}");
    assert!(out.contains("10.1.2.3\tx.test"), "{out}");
    d.pier_ok(&["rm", "-f", "svc"]);
    d.pier_ok(&w("network rm net1 net2"));
    d.assert_clean();
}
