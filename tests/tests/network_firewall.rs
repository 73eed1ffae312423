//! Pier's networks on a host set up the way Docker leaves it (iptables' filter
//! FORWARD policy DROP, bridge netfilter on), with either iptables backend; new
//! networks that stay off ranges the namespace already routes; and two daemons
//! sharing one namespace with their own `--bridge`/`--bip`.
//!
//! Everything happens in the test daemons' namespaces and in one more namespace
//! per test standing in for "the internet" (a busybox httpd behind a veth pair).

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use pier_tests::cmd::{self, Input};
use pier_tests::{wait_until, OutputExt, TestDaemon};

/// A busybox web server answering `hello` on port 80 of the container.
const HTTPD: &str = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www";
/// The daemon namespace's end of the uplink, and the "internet" end.
const UPLINK: &str = "10.232.0.1";
const INET: &str = "10.232.0.2";
const INET_URL: &str = "http://10.232.0.2:8000/";

fn run(argv: &[&str]) -> Output {
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..]);
    cmd::run(c, Input::Null, Duration::from_secs(20))
}

fn run_ok(argv: &[&str]) -> String {
    let o = run(argv);
    assert!(o.status.success(), "{argv:?}: {}", o.describe());
    o.out()
}

/// Runs `argv` in the daemon's namespace.
fn in_ns(d: &TestDaemon, argv: &[&str]) -> Output {
    let mut c = d.in_netns(argv[0]);
    c.args(&argv[1..]);
    cmd::run(c, Input::Null, Duration::from_secs(20))
}

fn in_ns_ok(d: &TestDaemon, argv: &[&str]) -> String {
    let o = in_ns(d, argv);
    assert!(o.status.success(), "{argv:?}: {}", o.describe());
    o.out()
}

/// Another namespace wired to the daemon's by a veth pair, serving `internet`
/// over HTTP on [`INET`]:8000: what containers reach when they go out.
struct Inet {
    ns: String,
    /// The server's files (not under the daemon's root, whose processes
    /// `assert_clean` counts).
    dir: std::path::PathBuf,
    server: Child,
}

impl Inet {
    fn attach(d: &TestDaemon) -> Inet {
        let ns = format!("pier-inet-{}", d.id);
        run_ok(&["ip", "netns", "add", &ns]);
        let dns = d.netns.as_str();
        for argv in [
            &[
                "ip", "-n", dns, "link", "add", "fwup", "type", "veth", "peer", "name", "fwin",
                "netns", &ns,
            ][..],
            &[
                "ip",
                "-n",
                dns,
                "addr",
                "add",
                &format!("{UPLINK}/24"),
                "dev",
                "fwup",
            ],
            &["ip", "-n", dns, "link", "set", "fwup", "up"],
            &[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{INET}/24"),
                "dev",
                "fwin",
            ],
            &["ip", "-n", &ns, "link", "set", "fwin", "up"],
            &["ip", "-n", &ns, "link", "set", "lo", "up"],
        ] {
            run_ok(argv);
        }
        let dir = std::path::PathBuf::from(format!("/tmp/pier-inet-{}", d.id));
        std::fs::create_dir_all(&dir).expect("mkdir inet dir");
        std::fs::write(dir.join("index.html"), "internet\n").expect("write index");
        let server = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{ns}"))
            .args(["--", "busybox", "httpd", "-f", "-p", "8000", "-h"])
            .arg(&dir)
            .stdin(Stdio::null())
            .spawn()
            .expect("start busybox httpd");
        let inet = Inet { ns, dir, server };
        assert!(
            wait_until(Duration::from_secs(5), || inet.get(INET_URL).is_some()),
            "the internet's server never answered"
        );
        inet
    }

    /// `GET url` from the internet's namespace.
    fn get(&self, url: &str) -> Option<String> {
        let o = run(&[
            "nsenter",
            &format!("--net=/run/netns/{}", self.ns),
            "--",
            "curl",
            "-fsS",
            "--max-time",
            "3",
            url,
        ]);
        o.status.success().then(|| o.out())
    }
}

impl Drop for Inet {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GET url` from a new container with extra `run` arguments.
fn ctr_get(d: &TestDaemon, run_args: &[&str], url: &str) -> Option<String> {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(run_args);
    // Under `sh`, so that wget is not pid 1 (which ignores the timeout's SIGTERM).
    let script = format!("timeout 3 wget -qO- {url}; exit $?");
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    let o = d.pier(&args);
    o.status.success().then(|| o.out())
}

fn eventually_gets(d: &TestDaemon, run_args: &[&str], url: &str, want: &str) {
    assert!(
        wait_until(Duration::from_secs(15), || ctr_get(d, run_args, url)
            .as_deref()
            == Some(want)),
        "a container ({run_args:?}) never got {want:?} from {url}\n{}",
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

fn network(d: &TestDaemon, net: &str) -> serde_json::Value {
    let out = d.pier_ok(&["network", "inspect", net]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("network inspect is JSON");
    v[0].clone()
}

fn subnet_of(d: &TestDaemon, net: &str) -> String {
    let v = network(d, net);
    v["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap_or_else(|| panic!("{net} has no subnet: {v}"))
        .to_string()
}

/// Whether two `a.b.c.d/n` ranges overlap.
fn overlaps(a: &str, b: &str) -> bool {
    let parse = |s: &str| {
        let (ip, p) = s.split_once('/').expect("CIDR");
        let ip: std::net::Ipv4Addr = ip.parse().expect("IPv4");
        (u32::from(ip), p.parse::<u32>().expect("prefix"))
    };
    let ((x, p), (y, q)) = (parse(a), parse(b));
    let m = u32::MAX.checked_shl(32 - p.min(q)).unwrap_or(0);
    x & m == y & m
}

/// Whether the namespace has a filter table in iptables-nft's (nf_tables) or
/// legacy iptables' sense, asked without creating one.
fn filter_tables(d: &TestDaemon) -> (bool, bool) {
    let nft = in_ns(d, &["nft", "list", "table", "ip", "filter"])
        .status
        .success();
    let legacy = in_ns_ok(d, &["cat", "/proc/net/ip_tables_names"])
        .lines()
        .any(|l| l == "filter");
    (nft, legacy)
}

/// What Docker does to a host: FORWARD policy DROP in `iptables`' filter table
/// and bridge netfilter on, so that even traffic between two containers on one
/// bridge goes through that FORWARD chain.
fn docker_like(d: &TestDaemon, iptables: &str) {
    if !Path::new("/proc/sys/net/bridge").exists() {
        eprintln!("loading br_netfilter for bridge netfilter");
        run_ok(&["modprobe", "br_netfilter"]);
    }
    in_ns_ok(d, &[iptables, "-w", "-P", "FORWARD", "DROP"]);
    in_ns_ok(d, &["sysctl", "-w", "net.bridge.bridge-nf-call-iptables=1"]);
    let on = in_ns_ok(d, &["cat", "/proc/sys/net/bridge/bridge-nf-call-iptables"]);
    assert_eq!(on.trim(), "1");
}

/// FORWARD's rules, first one first.
fn forward_rules(d: &TestDaemon, iptables: &str) -> Vec<String> {
    in_ns_ok(d, &[iptables, "-w", "-S", "FORWARD"])
        .lines()
        .filter(|l| l.starts_with("-A "))
        .map(str::to_string)
        .collect()
}

/// Same-bridge, egress, published-port and isolation checks on a namespace that
/// drops forwarded traffic by default (`iptables` names the backend).
fn traffic_flows_through_forward_drop(iptables: &str) {
    let mut d = TestDaemon::with_busybox();
    assert_eq!(
        filter_tables(&d),
        (false, false),
        "Pier made an iptables filter table on a host that had none"
    );
    let inet = Inet::attach(&d);
    docker_like(&d, iptables);
    // Made after Docker's policy: the change of bridges syncs PIER-FORWARD.
    d.pier_ok(&["network", "create", "n1"]);
    d.pier_ok(&["network", "create", "n2"]);
    for (name, args) in [
        ("web1", &["--network", "n1", "-p", "8081:80"][..]),
        ("web2", &["--network", "n2"]),
        ("webd", &[]),
    ] {
        let mut argv = vec!["run", "-d", "--name", name];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["busybox", "sh", "-c", HTTPD]);
        d.pier_ok(&argv);
    }
    let n1 = ["--network", "n1"];
    // Container to container on one user network (bridged, so through FORWARD).
    eventually_gets(&d, &n1, "http://web1/", "hello\n");
    // ... and on the default bridge.
    let webd = ip_on(&d, "webd", "bridge");
    eventually_gets(&d, &[], &format!("http://{webd}/"), "hello\n");
    // Out to the internet from both.
    eventually_gets(&d, &n1, INET_URL, "internet\n");
    eventually_gets(&d, &[], INET_URL, "internet\n");
    // In from the internet to a published port (DNAT'ed, then forwarded).
    assert!(
        wait_until(Duration::from_secs(10), || inet
            .get(&format!("http://{UPLINK}:8081/"))
            .as_deref()
            == Some("hello\n")),
        "the published port never answered from the internet"
    );
    // Networks stay apart.
    let web1 = ip_on(&d, "web1", "n1");
    let web2 = ip_on(&d, "web2", "n2");
    assert_eq!(
        ctr_get(&d, &["--network", "n2"], &format!("http://{web1}/")),
        None
    );
    assert_eq!(ctr_get(&d, &n1, &format!("http://{web2}/")), None);
    assert_eq!(ctr_get(&d, &[], &format!("http://{web1}/")), None);
    let rules = forward_rules(&d, iptables);
    assert_eq!(
        rules.first().map(String::as_str),
        Some("-A FORWARD -j PIER-FORWARD"),
        "{rules:?}"
    );

    // The jump is what lets it through: without it the policy drops the
    // traffic; a daemon start puts it back on top.
    in_ns_ok(&d, &[iptables, "-w", "-D", "FORWARD", "-j", "PIER-FORWARD"]);
    in_ns_ok(&d, &[iptables, "-w", "-N", "OTHER"]);
    in_ns_ok(&d, &[iptables, "-w", "-I", "FORWARD", "-j", "OTHER"]);
    // (iptables-nft's changes wake Pier's watcher, which puts the jump
    // back at once; legacy iptables' do not.)
    if iptables == "iptables-legacy" {
        assert_eq!(
            ctr_get(&d, &n1, "http://web1/"),
            None,
            "not dropped without the jump"
        );
    }
    d.restart();
    let rules = forward_rules(&d, iptables);
    assert_eq!(
        rules,
        ["-A FORWARD -j PIER-FORWARD", "-A FORWARD -j OTHER"],
        "after a daemon restart"
    );
    eventually_gets(&d, &n1, "http://web1/", "hello\n");
    eventually_gets(&d, &n1, INET_URL, "internet\n");

    d.pier_ok(&["rm", "-f", "web1", "web2", "webd"]);
    d.pier_ok(&["network", "rm", "n1", "n2"]);
    let chain = in_ns_ok(&d, &[iptables, "-w", "-S", "PIER-FORWARD"]);
    assert!(
        !chain.contains("br-"),
        "removed networks' rules stay:\n{chain}"
    );
    assert!(
        chain.contains("-A PIER-FORWARD -i pier0 -j ACCEPT"),
        "{chain}"
    );
    // The other backend's table was never made.
    let (nft, legacy) = filter_tables(&d);
    assert_eq!(
        (nft, legacy),
        (iptables == "iptables-nft", iptables == "iptables-legacy")
    );
    d.assert_clean();
}

#[test]
fn forward_drop_with_bridge_netfilter_nft_backend() {
    traffic_flows_through_forward_drop("iptables-nft");
}

#[test]
fn forward_drop_with_bridge_netfilter_legacy_backend() {
    traffic_flows_through_forward_drop("iptables-legacy");
}

#[test]
fn new_networks_stay_off_routed_ranges() {
    let d = TestDaemon::start_with_args(&["--default-address-pool", "base=10.126.0.0/16,size=24"]);
    // The default bridge comes from the configured pool too, as Docker's.
    assert_eq!(subnet_of(&d, "bridge"), "10.126.0.0/24");
    // Another engine's bridge on the pool's next subnet, and a route into
    // the one after (a veth pair: the dummy driver may be missing).
    for argv in [
        &[
            "ip", "link", "add", "rt0", "type", "veth", "peer", "name", "rt1",
        ][..],
        &["ip", "addr", "add", "10.126.1.1/24", "dev", "rt0"],
        &["ip", "link", "set", "rt0", "up"],
        &["ip", "link", "set", "rt1", "up"],
        &["ip", "route", "add", "10.126.2.128/25", "dev", "rt0"],
    ] {
        in_ns_ok(&d, argv);
    }
    d.pier_ok(&["network", "create", "a"]);
    assert_eq!(subnet_of(&d, "a"), "10.126.3.0/24");
    d.pier_ok(&["network", "create", "b"]);
    assert_eq!(subnet_of(&d, "b"), "10.126.4.0/24");
    // An explicit subnet may not overlap another network's.
    let o = d.pier(&["network", "create", "--subnet", "10.126.4.128/25", "c"]);
    assert_ne!(o.code(), 0, "{}", o.describe());
    assert!(
        o.err()
            .contains("Pool overlaps with other one on this address space"),
        "{}",
        o.describe()
    );
    d.pier_ok(&["network", "rm", "a", "b"]);
}

#[test]
fn default_pools_skip_another_engines_bridge() {
    let d = TestDaemon::start();
    // 172.19.0.0/16 is the first default-pool subnet Pier would take.
    for argv in [
        &[
            "ip", "link", "add", "other0", "type", "veth", "peer", "name", "other1",
        ][..],
        &["ip", "addr", "add", "172.19.0.1/16", "dev", "other0"],
        &["ip", "link", "set", "other0", "up"],
        &["ip", "link", "set", "other1", "up"],
    ] {
        in_ns_ok(&d, argv);
    }
    d.pier_ok(&["network", "create", "a"]);
    let a = subnet_of(&d, "a");
    assert!(!overlaps(&a, "172.19.0.0/16"), "{a}");
    assert!(!overlaps(&a, "172.18.0.0/16"), "{a}");
    assert_eq!(a, "172.20.0.0/16");
    d.pier_ok(&["network", "rm", "a"]);
}

#[test]
fn two_daemons_share_a_namespace_with_their_own_bridges() {
    let a = TestDaemon::with_busybox();
    let _inet = Inet::attach(&a);
    a.pier_ok(&["network", "create", "na"]);
    let b = TestDaemon::start_in_netns_of(&a, &["--bridge", "pierb", "--bip", "10.124.0.1/24"]);
    b.import_busybox();
    let bridge = network(&b, "bridge");
    assert_eq!(
        bridge["IPAM"]["Config"][0]["Subnet"], "10.124.0.0/24",
        "{bridge}"
    );
    assert_eq!(
        bridge["IPAM"]["Config"][0]["Gateway"], "10.124.0.1",
        "{bridge}"
    );
    assert_eq!(bridge["Options"]["com.docker.network.bridge.name"], "pierb");
    // B's new network stays off A's (the bug: both took 172.19.0.0/16).
    b.pier_ok(&["network", "create", "nb"]);
    let (na, nb) = (subnet_of(&a, "na"), subnet_of(&b, "nb"));
    for other in [&na, "172.18.0.0/16", "10.124.0.0/24"] {
        assert!(!overlaps(&nb, other), "{nb} overlaps {other}");
    }
    // A third with only --bridge: its default bridge avoids everyone's.
    let c = TestDaemon::start_in_netns_of(&a, &["--bridge", "pierc"]);
    let cb = subnet_of(&c, "bridge");
    for other in [&na, &nb, "172.18.0.0/16", "10.124.0.0/24"] {
        assert!(!overlaps(&cb, other), "{cb} overlaps {other}");
    }
    // Each keeps its own rules in the namespace.
    let tables = in_ns_ok(&a, &["nft", "list", "tables"]);
    for t in [
        "table ip pier\n",
        "table ip pier-pierb\n",
        "table ip pier-pierc\n",
    ] {
        assert!(tables.contains(t), "{t:?} missing:\n{tables}");
    }
    drop(c);
    // Containers of both, on default and user networks, reach out.
    eventually_gets(&a, &[], INET_URL, "internet\n");
    eventually_gets(&a, &["--network", "na"], INET_URL, "internet\n");
    eventually_gets(&b, &[], INET_URL, "internet\n");
    eventually_gets(&b, &["--network", "nb"], INET_URL, "internet\n");
    let ip = b.pier_ok(&[
        "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
    ]);
    assert!(ip.contains("inet 10.124.0."), "{ip}");
    // host-gateway means the default bridge's gateway, also off the bridge.
    let hosts = b.pier_ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--add-host",
        "gw:host-gateway",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert!(hosts.contains("10.124.0.1\tgw"), "{hosts}");
    b.pier_ok(&["network", "rm", "nb"]);
    b.assert_clean();
    drop(b);
    a.pier_ok(&["network", "rm", "na"]);
    a.assert_clean();
}

#[test]
fn a_docker_started_after_pier_is_noticed() {
    let d = TestDaemon::with_busybox();
    let _inet = Inet::attach(&d);
    d.pier_ok(&["run", "-d", "--name", "web", "busybox", "sh", "-c", HTTPD]);
    let web = ip_on(&d, "web", "bridge");
    let url = format!("http://{web}/");
    eventually_gets(&d, &[], &url, "hello\n");
    let jumped = |iptables: &str| {
        wait_until(Duration::from_secs(10), || {
            forward_rules(&d, iptables).first().map(String::as_str)
                == Some("-A FORWARD -j PIER-FORWARD")
        })
    };
    // Docker (iptables-nft) starts while Pier runs: no restart needed.
    docker_like(&d, "iptables-nft");
    assert!(
        jumped("iptables-nft"),
        "{:?}",
        forward_rules(&d, "iptables-nft")
    );
    eventually_gets(&d, &[], &url, "hello\n");
    eventually_gets(&d, &[], INET_URL, "internet\n");
    // A firewall reload that flushes FORWARD.
    in_ns_ok(&d, &["iptables-nft", "-w", "-F", "FORWARD"]);
    assert!(jumped("iptables-nft"), "after a flush");
    // The same with legacy iptables (polled: it sends no notifications).
    docker_like(&d, "iptables-legacy");
    assert!(
        jumped("iptables-legacy"),
        "{:?}",
        forward_rules(&d, "iptables-legacy")
    );
    eventually_gets(&d, &[], &url, "hello\n");
    eventually_gets(&d, &[], INET_URL, "internet\n");
    d.pier_ok(&["rm", "-f", "web"]);
    d.assert_clean();
}

#[test]
fn the_daemon_refuses_bad_network_flags() {
    for (flags, want) in [
        (
            &["--bridge", "none"][..],
            "not supported by Pier: --bridge none",
        ),
        (&["--bridge", "bad/name"], "invalid bridge name"),
        (&["--bip", "10.9.0.0/24"], "invalid --bip"),
        (
            &["--default-address-pool", "base=10.0.0.0/8"],
            "both base and size are needed",
        ),
        (
            &["--default-address-pool", "base=10.0.0.0/16,size=8"],
            "invalid default address pool",
        ),
    ] {
        let root = format!("/tmp/pier-netfw-flags-{}", std::process::id());
        let mut c = Command::new(pier_tests::pier_bin());
        c.args(["daemon", "--data-root", &root, "-H"])
            .arg(format!("unix://{root}.sock"))
            .args(flags);
        let o = cmd::run(c, Input::Null, Duration::from_secs(20));
        assert_ne!(o.code(), 0, "{flags:?}: {}", o.describe());
        assert!(o.err().contains(want), "{flags:?}: {}", o.describe());
        assert!(!Path::new(&root).exists(), "{flags:?} made {root}");
    }
}
