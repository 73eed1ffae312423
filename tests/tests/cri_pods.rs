//! The CRI server (`pier-cri`) driven with crictl, as a node operator or the
//! kubelet would: pods and their containers, ExecSync, CRI-format logs,
//! images shared with `pier build`, and idempotent stops of unknown ids.
//!
//! crictl comes from `../shared/conformance/cri/crictl.gz` (cri-tools built
//! for this project) or `$PIER_CRICTL`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use pier_tests::{alive, repo_root, wait_until, OutputExt, TestDaemon};

/// Unpacks crictl once per test process.
fn crictl_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("PIER_CRICTL") {
            return PathBuf::from(p);
        }
        // shared/ sits beside the checkout (or beside a worktree's parent).
        let gz = ["..", "../.."]
            .iter()
            .map(|up| {
                repo_root()
                    .join(up)
                    .join("shared/conformance/cri/crictl.gz")
            })
            .find(|p| p.is_file())
            .expect("crictl.gz not found in ../shared/conformance/cri/ (or set PIER_CRICTL)");
        let out = PathBuf::from(format!("/tmp/pier-test-crictl-{}", std::process::id()));
        let f = std::fs::File::open(&gz).unwrap_or_else(|e| panic!("{}: {e}", gz.display()));
        let o = Command::new("gzip")
            .args(["-dc"])
            .stdin(f)
            .output()
            .expect("gzip");
        assert!(o.status.success(), "gunzip crictl: {}", o.describe());
        std::fs::write(&out, &o.stdout).expect("write crictl");
        std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod crictl");
        out
    })
    .clone()
}

struct Crictl<'a> {
    d: &'a TestDaemon,
}

impl Crictl<'_> {
    fn run(&self, args: &[&str]) -> Output {
        let ep = format!("unix://{}", self.d.exec_root.join("cri.sock").display());
        Command::new(crictl_bin())
            .args(["-r", &ep, "-i", &ep, "-t", "30s"])
            .args(args)
            .output()
            .expect("run crictl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "crictl {args:?}: {}\n--- daemon log ---\n{}",
            o.describe(),
            self.d.log_tail(30)
        );
        o.out().trim().to_string()
    }
}

fn write(dir: &Path, name: &str, v: serde_json::Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).expect("write config");
    p.display().to_string()
}

#[test]
fn pod_lifecycle_through_crictl() {
    // Loopback-only pods, whatever /etc/cni/net.d holds: networks have their
    // own test below.
    let d = TestDaemon::start_with_args(&["--cni-conf-dir", ""]);
    d.import_busybox();
    let c = Crictl { d: &d };
    // An image from `pier build` is a pod's image too: one image store.
    let ctx = d.root.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo built-by-pier > /built.txt\n",
    )
    .unwrap();
    d.pier_ok(&["build", "-q", "-t", "cri-built:1", ctx.to_str().unwrap()]);
    let images = c.ok(&["images"]);
    assert!(
        images.contains("docker.io/library/cri-built")
            && images.contains("docker.io/library/busybox"),
        "{images}"
    );

    let logs = d.root.join("pod-logs");
    let pod = write(
        &d.root,
        "pod.json",
        serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "uid-1", "attempt": 0},
            "hostname": "webhost",
            "log_directory": logs,
            "dns_config": {"servers": ["10.9.9.9"], "searches": ["example.test"]},
            "linux": {}
        }),
    );
    let ctr = write(
        &d.root,
        "ctr.json",
        serde_json::json!({
            "metadata": {"name": "app"},
            "image": {"image": "cri-built:1"},
            "command": ["sh", "-c", "cat /built.txt; echo to-stderr >&2; echo $GREETING; exec sleep 1000"],
            "envs": [{"key": "GREETING", "value": "hi-there"}],
            "log_path": "app.log",
            "linux": {}
        }),
    );
    let pod_id = c.ok(&["runp", &pod]);
    let info: serde_json::Value = serde_json::from_str(&c.ok(&["inspectp", &pod_id])).unwrap();
    assert_eq!(info["status"]["state"], "SANDBOX_READY", "{info}");
    let holder = info["info"]["pid"].as_i64().expect("holder pid") as i32;
    assert!(alive(holder));

    let ctr_id = c.ok(&["create", &pod_id, &ctr, &pod]);
    c.ok(&["start", &ctr_id]);
    // Pod containers are not Docker containers.
    assert_eq!(d.pier_ok(&["ps", "-aq"]), "");
    let ps = c.ok(&["ps", "-a", "-q", "--pod", &pod_id]);
    assert_eq!(ps, ctr_id);

    // The kubelet's log format at the kubelet's path.
    let log = logs.join("app.log");
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(&log)
            .is_ok_and(|s| s.contains("hi-there"))),
        "no log at {}",
        log.display()
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.splitn(4, ' ').collect()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l[1..] == ["stdout", "F", "built-by-pier"]),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l[1..] == ["stderr", "F", "to-stderr"]),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l[0].ends_with('Z') && l[0].contains('T')),
        "{text}"
    );
    let shown = c.run(&["logs", &ctr_id]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("built-by-pier"));

    // ExecSync in the pod's namespaces: its hostname, its resolv.conf.
    let out = c.ok(&[
        "exec",
        "-s",
        &ctr_id,
        "sh",
        "-c",
        "hostname; cat /etc/resolv.conf",
    ]);
    assert!(out.contains("webhost"), "{out}");
    assert!(
        out.contains("10.9.9.9") && out.contains("example.test"),
        "{out}"
    );
    let failed = c.run(&["exec", "-s", &ctr_id, "sh", "-c", "exit 3"]);
    assert!(!failed.status.success());
    assert!(
        failed.err().contains("exited with 3"),
        "{}",
        failed.describe()
    );

    let st: serde_json::Value = serde_json::from_str(&c.ok(&["inspect", &ctr_id])).unwrap();
    assert_eq!(st["status"]["state"], "CONTAINER_RUNNING", "{st}");
    assert_eq!(st["status"]["metadata"]["name"], "app");

    c.ok(&["stop", "-t", "0", &ctr_id]);
    let st: serde_json::Value = serde_json::from_str(&c.ok(&["inspect", &ctr_id])).unwrap();
    assert_eq!(st["status"]["state"], "CONTAINER_EXITED", "{st}");
    c.ok(&["rm", &ctr_id]);
    c.ok(&["stopp", &pod_id]);
    assert!(wait_until(Duration::from_secs(5), || !alive(holder)));
    let info: serde_json::Value = serde_json::from_str(&c.ok(&["inspectp", &pod_id])).unwrap();
    assert_eq!(info["status"]["state"], "SANDBOX_NOTREADY", "{info}");
    c.ok(&["rmp", &pod_id]);
    assert_eq!(c.ok(&["pods", "-q"]), "");
    assert_eq!(c.ok(&["ps", "-a", "-q"]), "");
    d.assert_clean();
}

#[test]
fn stopping_unknown_ids_succeeds() {
    let d = TestDaemon::start();
    let c = Crictl { d: &d };
    let unknown = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    // The Idempotence specs: stopping what is gone succeeds. (crictl's rm
    // and rmp ask for the status first, so they do fail on an unknown id.)
    c.ok(&["stopp", unknown]);
    c.ok(&["stop", unknown]);
    let o = c.run(&["inspectp", unknown]);
    assert!(!o.status.success());
    assert!(
        o.err().contains("NotFound") || o.err().contains("not found"),
        "{}",
        o.describe()
    );
    d.assert_clean();
}

#[test]
fn pod_network_through_cni() {
    // A bridge network of this test's own (its name, bridge and subnet), whose
    // plugins run in the daemon's namespace: nothing of it reaches the host.
    assert!(
        ["/opt/cni/bin", "/usr/lib/cni"]
            .iter()
            .any(|d| Path::new(d).join("bridge").is_file()),
        "CNI plugins (Debian's containernetworking-plugins) not installed"
    );
    let tag = format!("{:x}", std::process::id() % 0xfff);
    let root = PathBuf::from(format!("/tmp/pier-test-cni-{tag}"));
    let netd = root.join("net.d");
    std::fs::create_dir_all(&netd).unwrap();
    let net = format!("piercri{tag}");
    std::fs::write(
        netd.join("10-pier-test.conflist"),
        serde_json::json!({
            "cniVersion": "1.0.0",
            "name": net,
            "plugins": [{
                "type": "bridge", "bridge": format!("pcri{tag}"), "isGateway": true,
                "ipam": {"type": "host-local", "dataDir": root.join("ipam"),
                         "ranges": [[{"subnet": "10.213.7.0/24"}]]}
            }]
        })
        .to_string(),
    )
    .unwrap();
    let d = TestDaemon::start_with_args(&["--cni-conf-dir", netd.to_str().unwrap()]);
    d.import_busybox();
    let c = Crictl { d: &d };
    let pod = write(
        &d.root,
        "pod.json",
        serde_json::json!({
            "metadata": {"name": "netpod", "namespace": "default", "uid": "uid-n", "attempt": 0},
            "linux": {}
        }),
    );
    let ctr = write(
        &d.root,
        "ctr.json",
        serde_json::json!({
            "metadata": {"name": "c"}, "image": {"image": "busybox:latest"},
            "command": ["sh", "-c", "while true; do echo pong | nc -l -p 8080; done"],
            "linux": {}
        }),
    );
    let pod_id = c.ok(&["runp", &pod]);
    let info: serde_json::Value = serde_json::from_str(&c.ok(&["inspectp", &pod_id])).unwrap();
    let ip = info["status"]["network"]["ip"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(ip.starts_with("10.213.7."), "{info}");
    let ctr_id = c.ok(&["create", &pod_id, &ctr, &pod]);
    c.ok(&["start", &ctr_id]);
    // The container is in the pod's network: eth0 has the pod's address,
    // and the daemon's namespace reaches it over the bridge.
    let addrs = c.ok(&["exec", "-s", &ctr_id, "ip", "-4", "addr", "show", "eth0"]);
    assert!(addrs.contains(&ip), "{addrs}");
    let reached = wait_until(Duration::from_secs(10), || {
        d.in_netns("timeout")
            .args(["2", "bash", "-c", &format!("cat < /dev/tcp/{ip}/8080")])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("pong"))
    });
    assert!(
        reached,
        "{ip}:8080 not reachable from the daemon's namespace"
    );
    c.ok(&["stop", "-t", "0", &ctr_id]);
    c.ok(&["rm", &ctr_id]);
    c.ok(&["stopp", &pod_id]);
    c.ok(&["rmp", &pod_id]);
    // The address went back to the pool at the DEL.
    let leases: Vec<_> = std::fs::read_dir(root.join("ipam").join(&net))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        leases
            .iter()
            .all(|n| !n.to_string_lossy().starts_with("10.")),
        "{leases:?}"
    );
    d.assert_clean();
    drop(d);
    let _ = std::fs::remove_dir_all(&root);
}
