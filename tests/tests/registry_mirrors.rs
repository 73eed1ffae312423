//! Registry mirrors: containerd's `hosts.toml` per registry host (under
//! `--hosts-dir`) and dockerd's `--registry-mirror` for Docker Hub, against a
//! docker-registry on a random loopback port of the daemon's own network
//! namespace. Upstream hosts are never contacted: the namespace has only
//! loopback, and every server named here is a closed loopback port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pier_tests::{cmd, wait_until, Input, OutputExt, TestDaemon};

/// Ports nothing listens on in the daemon's namespace.
const DEAD_MIRROR: u16 = 5998;
const CLOSED_SERVER: u16 = 5999;

struct Registry {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Registry {
    fn start(d: &TestDaemon) -> Registry {
        // A port of its own per run: the namespace is private, the choice
        // only keeps runs from looking alike.
        let port = 20000 + (std::process::id() % 20000) as u16;
        let dir = d.root.join("registry");
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let log = dir.join("registry.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = d
            .in_netns("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start docker-registry");
        let up = wait_until(Duration::from_secs(20), || {
            d.in_netns("bash")
                .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(up, "the registry did not come up");
        Registry { child, port, log }
    }

    /// Requests the registry logged for `path`.
    fn hits(&self, path: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(path) && l.contains("\"GET "))
            .count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_hosts(dir: &Path, host: &str, text: &str) {
    let d = dir.join(host);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("hosts.toml"), text).unwrap();
}

#[test]
fn pulls_go_to_mirrors_in_order_and_pushes_only_where_allowed() {
    let hosts = tempfile::tempdir().unwrap();
    let hosts_dir = hosts.path().to_str().unwrap().to_string();
    // The registry's port is only known once the daemon's namespace exists,
    // and the daemon's flags are set before that: the same formula.
    let port = 20000 + (std::process::id() % 20000) as u16;
    let mirror = format!("http://127.0.0.1:{port}");
    let d = TestDaemon::start_with_args(&[
        "--hosts-dir",
        &hosts_dir,
        "--registry-mirror",
        &format!("http://127.0.0.1:{DEAD_MIRROR}"),
        "--registry-mirror",
        &mirror,
    ]);
    let reg = Registry::start(&d);
    assert_eq!(reg.port, port);
    // /info lists them as dockerd does.
    let info = d.http("GET", "/info", None, b"").json();
    assert_eq!(
        info["RegistryConfig"]["Mirrors"],
        serde_json::json!([
            format!("http://127.0.0.1:{DEAD_MIRROR}/"),
            format!("{mirror}/")
        ])
    );
    let info = d.pier_ok(&["info"]);
    let want = format!(" Registry Mirrors:\n  http://127.0.0.1:{DEAD_MIRROR}/\n  {mirror}/\n");
    assert!(info.contains(&want), "{info}");
    d.import_busybox();
    let local = format!("127.0.0.1:{port}");

    // The mirror holds x/y:tag and library/foo, pushed by their own names.
    for repo in ["x/y:tag", "library/foo:latest"] {
        let name = format!("{local}/{repo}");
        d.pier_ok(&["tag", "busybox", &name]);
        d.pier_ok(&["push", &name]);
        d.pier_ok(&["rmi", &name]);
    }
    // Nothing left locally: what comes next is downloaded.
    d.pier_ok(&["rmi", "busybox"]);

    write_hosts(
        hosts.path(),
        "registry.k8s.io",
        &format!(
            "server = \"https://127.0.0.1:{CLOSED_SERVER}\"\n\
             [host.\"http://127.0.0.1:{DEAD_MIRROR}\"]\n  capabilities = [\"pull\", \"resolve\"]\n\
             [host.\"{mirror}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        ),
    );
    // The dead mirror is skipped, the next one serves.
    d.pier_ok(&["pull", "registry.k8s.io/x/y:tag"]);
    assert!(
        reg.hits("/v2/x/y/manifests/tag") >= 1,
        "the mirror was not asked"
    );
    let id = d.inspect("registry.k8s.io/x/y:tag")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "registry.k8s.io/x/y:tag",
        "echo",
        "from-mirror",
    ]);
    assert_eq!(out.trim(), "from-mirror");

    // A pull by digest needs only "pull"; resolving a tag needs "resolve".
    write_hosts(
        hosts.path(),
        "gcr.io",
        &format!(
            "server = \"https://127.0.0.1:{CLOSED_SERVER}\"\n[host.\"{mirror}\"]\n  capabilities = [\"pull\"]\n"
        ),
    );
    let o = d.pier(&["pull", "gcr.io/x/y:tag"]);
    assert_ne!(
        o.code(),
        0,
        "a tag was resolved on a mirror without \"resolve\""
    );
    assert!(
        o.err().contains(&format!("127.0.0.1:{CLOSED_SERVER}")),
        "{}",
        o.err()
    );
    let digest = d.inspect("registry.k8s.io/x/y:tag")["RepoDigests"][0]
        .as_str()
        .unwrap()
        .split_once('@')
        .unwrap()
        .1
        .to_string();
    d.pier_ok(&["pull", &format!("gcr.io/x/y@{digest}")]);
    assert!(reg.hits(&format!("/v2/x/y/manifests/{digest}")) >= 1);

    // Docker Hub's name through --registry-mirror: dead one first, then ours.
    d.pier_ok(&["pull", "foo"]);
    assert!(reg.hits("/v2/library/foo/manifests/latest") >= 1);
    assert_eq!(d.inspect("foo")["Id"].as_str().unwrap(), id);

    // With every mirror failing, the error is the registry's own.
    let o = d.pier(&["pull", "registry.k8s.io/x/missing:tag"]);
    assert_ne!(o.code(), 0);
    assert!(
        o.err().contains(&format!("127.0.0.1:{CLOSED_SERVER}")),
        "{}",
        o.err()
    );

    // A push never goes to a mirror without "push": it goes to the server.
    let o = d.pier(&["push", "registry.k8s.io/x/y:tag"]);
    assert_ne!(o.code(), 0, "pushed somewhere: {}", o.out());
    assert!(
        o.err().contains(&format!("127.0.0.1:{CLOSED_SERVER}")),
        "{}",
        o.err()
    );
    // ...and with it, to the first mirror that has it.
    write_hosts(
        hosts.path(),
        "quay.io",
        &format!(
            "server = \"https://127.0.0.1:{CLOSED_SERVER}\"\n[host.\"{mirror}\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n"
        ),
    );
    d.pier_ok(&["tag", "foo", "quay.io/pushed/here:v1"]);
    d.pier_ok(&["push", "quay.io/pushed/here:v1"]);
    d.pier_ok(&["rmi", "quay.io/pushed/here:v1"]);
    d.pier_ok(&["pull", &format!("{local}/pushed/here:v1")]);

    // A broken hosts.toml fails the pull, naming the file and the key.
    write_hosts(
        hosts.path(),
        "ghcr.io",
        &format!("[host.\"{mirror}\"]\n  capabilities = [\"pul\"]\n"),
    );
    let o = d.pier(&["pull", "ghcr.io/x/y:tag"]);
    assert_ne!(o.code(), 0);
    let file = hosts.path().join("ghcr.io/hosts.toml");
    let want = format!(
        "{}: host.\"{mirror}\".capabilities: unknown capability \"pul\"",
        file.display()
    );
    assert!(o.err().contains(&want), "{}", o.err());
    drop(reg);
    d.assert_clean();
}

#[test]
fn an_invalid_registry_mirror_stops_the_daemon_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (mirror, want) in [
        ("ftp://mirror.invalid", "unsupported scheme"),
        (
            "http://127.0.0.1:1/some/path",
            "path (/some/path) not allowed",
        ),
    ] {
        let mut c = Command::new(pier_tests::bin_dir().join("pier"));
        c.args(["daemon", "--registry-mirror", mirror, "-H"])
            .arg(format!("unix://{}/pier.sock", dir.path().display()))
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"));
        let o = cmd::run(c, Input::Null, Duration::from_secs(30));
        assert_ne!(o.code(), 0, "{mirror}: {}", o.describe());
        assert!(
            o.err().contains("invalid mirror")
                && o.err().contains(want)
                && o.err().contains(mirror),
            "{mirror}: {}",
            o.describe()
        );
        assert!(!dir.path().join("data").exists(), "the daemon started");
    }
}
