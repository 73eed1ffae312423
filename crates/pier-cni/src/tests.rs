//! The client against stand-in plugins (shell scripts that log what they
//! were given), so the protocol is checked without root.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

struct Fixture {
    dir: tempfile::TempDir,
    cni: Cni,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        let cni = Cni::new(CniOptions {
            conf_dir: dir.path().join("net.d"),
            // The first dir does not exist: the search goes on.
            bin_dirs: vec![dir.path().join("nobin"), dir.path().join("bin")],
            cache_dir: dir.path().join("cache"),
            plugin_timeout: Duration::from_secs(10),
            output_limit: 4096,
        });
        Fixture { dir, cni }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// A plugin that logs `<name> <command> <env> <stdin>` and prints `answer` on ADD.
    fn plugin(&self, name: &str, answer: &str) {
        self.script(
            name,
            &format!(
                "in=$(cat)\nprintf '%s %s %s|%s|%s|%s\\n' {name} \"$CNI_COMMAND\" \"$CNI_CONTAINERID\" \"$CNI_IFNAME\" \"$CNI_ARGS\" \"$in\" >> {log}\n[ \"$CNI_COMMAND\" = ADD ] && printf '%s' '{answer}'\nexit 0\n",
                log = self.log().display()
            ),
        );
    }

    fn script(&self, name: &str, body: &str) {
        let p = self.dir.path().join("bin").join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// (plugin, command, stdin JSON) of each logged call.
    fn calls(&self) -> Vec<(String, String, String, Value)> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let mut w = l.splitn(3, ' ');
                let (name, cmd, rest) = (w.next().unwrap(), w.next().unwrap(), w.next().unwrap());
                let (env, stdin) = rest.rsplit_once('|').unwrap();
                (
                    name.to_string(),
                    cmd.to_string(),
                    env.to_string(),
                    serde_json::from_str(stdin).unwrap(),
                )
            })
            .collect()
    }
}

fn list(text: &str) -> NetworkConfigList {
    NetworkConfigList::from_conflist(text.as_bytes()).unwrap()
}

const RESULT_A: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"br0"},{"name":"eth0","sandbox":"/ns"}],"ips":[{"address":"10.9.0.2/24","gateway":"10.9.0.1","interface":1}]}"#;
const RESULT_B: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"br0"},{"name":"eth0","sandbox":"/ns"}],"ips":[{"address":"10.9.0.2/24","gateway":"10.9.0.1","interface":1}],"dns":{"nameservers":["10.9.0.1"]}}"#;

fn two_plugins() -> NetworkConfigList {
    list(
        r#"{"cniVersion":"1.0.0","name":"net1","plugins":[
            {"type":"a","ipam":{"type":"x"},"capabilities":{"ipRanges":true}},
            {"type":"b","capabilities":{"portMappings":true,"bandwidth":false}}]}"#,
    )
}

fn rt() -> RuntimeConf {
    let mut rt = RuntimeConf::new("ctr1", "/var/run/netns/x", "eth0");
    rt.args = vec![
        ("K8S_POD_NAME".into(), "p".into()),
        ("IgnoreUnknown".into(), "1".into()),
    ];
    rt.runtime_config.port_mappings = vec![PortMapping {
        host_port: 8080,
        container_port: 80,
        protocol: "tcp".into(),
        host_ip: String::new(),
    }];
    rt.runtime_config.bandwidth = Some(Bandwidth {
        ingress_rate: 1,
        ..Default::default()
    });
    rt.runtime_config.ip_ranges = vec![vec![IpRange {
        subnet: "10.9.0.0/24".into(),
        ..Default::default()
    }]];
    rt
}

#[tokio::test]
async fn add_chains_results_and_del_runs_in_reverse_with_the_cache() {
    let f = Fixture::new();
    f.plugin("a", RESULT_A);
    f.plugin("b", RESULT_B);
    let net = two_plugins();
    let r = f.cni.add(&net, &rt()).await.unwrap();
    assert_eq!(r.ips[0].ip(), Some("10.9.0.2".parse().unwrap()));
    assert_eq!(r.dns.nameservers, ["10.9.0.1"]);
    let calls = f.calls();
    assert_eq!(calls.len(), 2);
    let (a, b) = (&calls[0], &calls[1]);
    assert_eq!((a.0.as_str(), a.1.as_str()), ("a", "ADD"));
    assert_eq!(a.2, "ctr1|eth0|K8S_POD_NAME=p;IgnoreUnknown=1");
    // Name and version injected, no prevResult for the first, and only the
    // capabilities each declares.
    assert_eq!(a.3["name"], "net1");
    assert_eq!(a.3["cniVersion"], "1.0.0");
    assert_eq!(a.3["ipam"]["type"], "x");
    assert!(a.3.get("prevResult").is_none());
    assert_eq!(
        a.3["runtimeConfig"],
        json!({"ipRanges": [[{"subnet": "10.9.0.0/24"}]]})
    );
    assert_eq!(
        b.3["prevResult"],
        serde_json::from_str::<Value>(RESULT_A).unwrap()
    );
    assert_eq!(
        b.3["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]})
    );
    let cached = f
        .cni
        .cached_result(&net, "ctr1", "eth0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cached, r);
    // libcni's layout and kind, so its tools can read ours.
    let entry: Value = serde_json::from_slice(
        &std::fs::read(f.dir.path().join("cache/results/net1-ctr1-eth0")).unwrap(),
    )
    .unwrap();
    assert_eq!(entry["kind"], "cniCacheV1");
    assert_eq!(entry["networkName"], "net1");

    f.cni.check(&net, &rt()).await.unwrap();
    f.cni.del(&net, &rt()).await.unwrap();
    let calls = f.calls();
    let order: Vec<_> = calls[2..]
        .iter()
        .map(|c| format!("{} {}", c.0, c.1))
        .collect();
    assert_eq!(order, ["a CHECK", "b CHECK", "b DEL", "a DEL"]);
    let result_b: Value = serde_json::from_str(RESULT_B).unwrap();
    for c in &calls[2..] {
        assert_eq!(c.3["prevResult"], result_b, "{} {}", c.0, c.1);
    }
    assert!(f
        .cni
        .cached_result(&net, "ctr1", "eth0")
        .await
        .unwrap()
        .is_none());

    // A second DEL still succeeds, without prevResult; CHECK now has nothing to check.
    f.cni.del(&net, &rt()).await.unwrap();
    assert!(f.calls()[6..]
        .iter()
        .all(|c| c.3.get("prevResult").is_none()));
    let e = f.cni.check(&net, &rt()).await.unwrap_err();
    assert!(e.to_string().contains("no cached result"), "{e}");
}

#[tokio::test]
async fn plugin_errors_name_plugin_and_network_and_undo_the_add() {
    let f = Fixture::new();
    f.plugin("a", RESULT_A);
    f.script(
        "b",
        "cat >/dev/null\n[ \"$CNI_COMMAND\" = DEL ] && exit 0\necho '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"no more addresses\",\"details\":\"range full\"}'\nexit 1\n",
    );
    let net = two_plugins();
    let e = f.cni.add(&net, &rt()).await.unwrap_err();
    assert_eq!(e.plugin_code(), Some(11));
    let text = e.to_string();
    assert_eq!(
        text,
        "network net1: plugin b ADD failed (code 11): no more addresses; range full"
    );
    // What ADD set up is deleted again, and nothing is cached.
    let order: Vec<_> = f
        .calls()
        .iter()
        .map(|c| format!("{} {}", c.0, c.1))
        .collect();
    assert_eq!(order, ["a ADD", "a DEL"]);
    assert!(f
        .cni
        .cached_result(&net, "ctr1", "eth0")
        .await
        .unwrap()
        .is_none());

    // No error object: stderr is the message.
    f.script("b", "cat >/dev/null\necho 'iptables: locked' >&2\nexit 2\n");
    let e = f.cni.add(&net, &rt()).await.unwrap_err().to_string();
    assert!(
        e.contains("plugin b ADD failed") && e.contains("iptables: locked"),
        "{e}"
    );

    let missing = list(r#"{"cniVersion":"1.0.0","name":"net2","plugins":[{"type":"nope"}]}"#);
    let e = f.cni.add(&missing, &rt()).await.unwrap_err().to_string();
    assert!(
        e.starts_with("network net2: plugin \"nope\" not found in "),
        "{e}"
    );
    assert!(e.contains("/nobin, ") && e.ends_with("/bin"), "{e}");
}

#[tokio::test]
async fn a_hanging_plugin_is_killed_and_output_is_bounded() {
    let mut f = Fixture::new();
    f.cni.opts.plugin_timeout = Duration::from_millis(500);
    let pidfile = f.dir.path().join("child.pid");
    // The plugin and a child of its own (as iptables would be) both hang.
    f.script(
        "a",
        &format!("sleep 60 &\necho $! > {}\nwait\n", pidfile.display()),
    );
    let net = list(r#"{"cniVersion":"1.0.0","name":"slow","plugins":[{"type":"a"}]}"#);
    let t = Instant::now();
    let e = f.cni.add(&net, &rt()).await.unwrap_err();
    assert!(matches!(e, CniError::Timeout { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let gone = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        !Path::new(&format!("/proc/{}", pid.trim())).exists()
            || std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
                .is_ok_and(|s| s.contains(") Z "))
    });
    assert!(gone, "the plugin's child was not killed");

    f.script("a", "head -c 100000000 /dev/zero\n");
    let e = f.cni.add(&net, &rt()).await.unwrap_err().to_string();
    assert!(e.contains("output exceeds 4096 bytes"), "{e}");
}

#[tokio::test]
async fn invalid_names_are_refused_before_any_plugin_runs() {
    let f = Fixture::new();
    f.plugin("a", RESULT_A);
    let net = list(r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a"}]}"#);
    for (id, ifname) in [
        ("../x", "eth0"),
        ("", "eth0"),
        ("c", "eth0/1"),
        ("c", "averyveryverylongname"),
    ] {
        let rt = RuntimeConf::new(id, "/x", ifname);
        assert!(f.cni.add(&net, &rt).await.is_err(), "{id} {ifname}");
    }
    assert!(f.calls().is_empty());
    let old = list(r#"{"cniVersion":"0.3.1","name":"n","plugins":[{"type":"a"}]}"#);
    let e = f.cni.check(&old, &rt()).await.unwrap_err().to_string();
    assert!(e.contains("does not support the CHECK command"), "{e}");
}

#[tokio::test]
async fn validate_asks_each_plugin_for_its_versions() {
    let f = Fixture::new();
    let answer = r#"{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}"#;
    f.script(
        "a",
        &format!("cat >/dev/null\n[ \"$CNI_COMMAND\" = VERSION ] && echo '{answer}'\n"),
    );
    f.script("b", &format!("cat >/dev/null\necho '{answer}'\n"));
    f.cni.validate(&two_plugins()).await.unwrap();
    let newer = list(r#"{"cniVersion":"1.1.0","name":"n","plugins":[{"type":"a"}]}"#);
    let e = f.cni.validate(&newer).await.unwrap_err().to_string();
    assert_eq!(
        e,
        "network n: plugin a does not support config version \"1.1.0\" (it supports 0.3.1, 0.4.0, 1.0.0)"
    );
    let missing =
        list(r#"{"cniVersion":"1.0.0","name":"m","plugins":[{"type":"a"},{"type":"gone"}]}"#);
    let e = f.cni.validate(&missing).await.unwrap_err();
    assert!(matches!(e, CniError::PluginNotFound { .. }), "{e}");
}

#[tokio::test]
async fn the_default_network_is_the_first_file() {
    let f = Fixture::new();
    let e = f.cni.default_network().await.unwrap_err().to_string();
    assert!(
        e.starts_with("no network config found in ") && e.ends_with("/net.d"),
        "{e}"
    );
    let dir = f.dir.path().join("net.d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("20-b.conflist"),
        r#"{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"a"}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("10-a.conf"),
        r#"{"cniVersion":"1.0.0","name":"a","type":"a"}"#,
    )
    .unwrap();
    assert_eq!(f.cni.default_network().await.unwrap().name, "a");
    assert_eq!(f.cni.network("b").await.unwrap().name, "b");
    assert!(matches!(
        f.cni.network("c").await,
        Err(CniError::NoNetwork(_))
    ));
    let lo = NetworkConfigList::loopback();
    assert_eq!(
        (lo.name.as_str(), lo.plugins[0].plugin_type.as_str()),
        ("cni-loopback", "loopback")
    );
}

#[tokio::test]
async fn a_pod_gets_lo_then_eth0_and_loses_them_by_the_cached_configs() {
    let f = Fixture::new();
    f.plugin(
        "loopback",
        r#"{"cniVersion":"1.0.0","interfaces":[{"name":"lo","sandbox":"/ns"}]}"#,
    );
    f.plugin("a", RESULT_A);
    f.plugin("b", RESULT_B);
    let dir = f.dir.path().join("net.d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("10-net1.conflist"),
        r#"{"cniVersion":"1.0.0","name":"net1","plugins":[{"type":"a"},{"type":"b","capabilities":{"portMappings":true}}]}"#,
    )
    .unwrap();
    let rc = rt().runtime_config;
    let args = vec![("K8S_POD_NAME".to_string(), "p".to_string())];
    let pod = f
        .cni
        .setup_pod("pod1", Path::new("/ns"), &args, &rc)
        .await
        .unwrap();
    assert_eq!(pod.network, "net1");
    assert_eq!(pod.result.dns.nameservers, ["10.9.0.1"]);
    let calls: Vec<_> = f
        .calls()
        .iter()
        .map(|c| format!("{} {} {}", c.0, c.1, c.2))
        .collect();
    assert_eq!(
        calls,
        [
            "loopback ADD pod1|lo|K8S_POD_NAME=p",
            "a ADD pod1|eth0|K8S_POD_NAME=p",
            "b ADD pod1|eth0|K8S_POD_NAME=p"
        ]
    );
    // The loopback gets no port mappings.
    assert!(f.calls()[0].3.get("runtimeConfig").is_none());
    let mut cached: Vec<_> = f
        .cni
        .cached_attachments("pod1")
        .await
        .unwrap()
        .into_iter()
        .map(|a| format!("{} {}", a.network.name, a.ifname))
        .collect();
    cached.sort();
    assert_eq!(cached, ["cni-loopback lo", "net1 eth0"]);

    // The conf dir changes under the pod: teardown still runs net1's plugins.
    std::fs::remove_file(dir.join("10-net1.conflist")).unwrap();
    f.cni
        .teardown_pod("pod1", Path::new("/ns"), &args, &rc)
        .await
        .unwrap();
    let calls: Vec<_> = f.calls()[3..]
        .iter()
        .map(|c| format!("{} {} {}", c.0, c.1, c.2))
        .collect();
    assert_eq!(
        calls,
        [
            "b DEL pod1|eth0|K8S_POD_NAME=p",
            "a DEL pod1|eth0|K8S_POD_NAME=p",
            "loopback DEL pod1|lo|K8S_POD_NAME=p"
        ]
    );
    assert!(f.cni.cached_attachments("pod1").await.unwrap().is_empty());
    // Again, with nothing cached and no network left: loopback only, success.
    f.cni
        .teardown_pod("pod1", Path::new("/ns"), &args, &rc)
        .await
        .unwrap();
    let calls: Vec<_> = f.calls()[6..]
        .iter()
        .map(|c| format!("{} {}", c.0, c.1))
        .collect();
    assert_eq!(calls, ["loopback DEL"]);

    // A failed setup leaves nothing attached.
    std::fs::write(
        dir.join("10-net1.conflist"),
        r#"{"cniVersion":"1.0.0","name":"net1","plugins":[{"type":"a"},{"type":"nope"}]}"#,
    )
    .unwrap();
    let e = f
        .cni
        .setup_pod("pod2", Path::new("/ns"), &args, &rc)
        .await
        .unwrap_err();
    assert!(matches!(e, CniError::PluginNotFound { .. }), "{e}");
    assert!(f.cni.cached_attachments("pod2").await.unwrap().is_empty());
    // Every plugin got its DEL, though the missing one's failed.
    let calls: Vec<_> = f.calls()[7..]
        .iter()
        .map(|c| format!("{} {} {}", c.0, c.1, c.2))
        .collect();
    assert_eq!(
        calls,
        [
            "loopback ADD pod2|lo|K8S_POD_NAME=p",
            "a ADD pod2|eth0|K8S_POD_NAME=p",
            "a DEL pod2|eth0|K8S_POD_NAME=p",
            "loopback DEL pod2|lo|K8S_POD_NAME=p"
        ]
    );
}
