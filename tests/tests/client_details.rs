//! Details real clients trip on (#14): `images REPO`, `FinishedAt` after a
//! restart, swarm endpoints, the API version range and what API 1.44-1.47
//! added.

use std::time::Duration;

use pier_tests::{wait_until, OutputExt, TestDaemon};
use serde_json::{json, Value};

fn create(d: &TestDaemon, body: &Value) -> pier_tests::HttpResponse {
    d.http(
        "POST",
        "/v1.47/containers/create",
        Some("application/json"),
        body.to_string().as_bytes(),
    )
}

fn repositories(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .map(|l| {
            let mut cols = l.split_whitespace();
            format!(
                "{}:{}",
                cols.next().unwrap_or(""),
                cols.next().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn images_repo_lists_only_that_repository() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&["tag", "busybox", "busybox:v2"]);
    d.pier_ok(&["tag", "busybox", "other/tool:1"]);
    d.pier_ok(&["tag", "busybox", "busybox-extra:1"]);

    let mut all = repositories(&d.pier_ok(&["images"]));
    all.sort();
    assert_eq!(
        all,
        [
            "busybox-extra:1",
            "busybox:latest",
            "busybox:v2",
            "other/tool:1"
        ]
    );
    // One image, four names: only the rows of the named repository.
    let mut repo = repositories(&d.pier_ok(&["images", "busybox"]));
    repo.sort();
    assert_eq!(repo, ["busybox:latest", "busybox:v2"]);
    assert_eq!(
        repositories(&d.pier_ok(&["images", "busybox:v2"])),
        ["busybox:v2"]
    );
    assert_eq!(
        repositories(&d.pier_ok(&["images", "other/tool"])),
        ["other/tool:1"]
    );
    assert_eq!(
        repositories(&d.pier_ok(&["images", "nothing-here"])),
        Vec::<String>::new()
    );
    assert_eq!(
        d.pier_ok(&["images", "-q", "busybox"]).lines().count(),
        1,
        "one ID per image"
    );
    // The API answers the same way: RepoTags are those the filter matched.
    let r = d.http(
        "GET",
        "/v1.47/images/json?filters=%7B%22reference%22%3A%7B%22busybox%3Av2%22%3Atrue%7D%7D",
        None,
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["RepoTags"], json!(["busybox:v2"]), "{list}");
    d.assert_clean();
}

#[test]
fn restart_records_when_the_run_it_ended_finished() {
    let d = TestDaemon::with_busybox();
    let id = d.pier_ok(&["run", "-d", "busybox", "sleep", "300"]);
    let id = id.trim();
    let first = d.inspect(id);
    assert_eq!(first["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    d.pier_ok(&["restart", "-t", "0", id]);
    let second = d.inspect(id);
    let finished = second["State"]["FinishedAt"].as_str().unwrap().to_string();
    let started1 = first["State"]["StartedAt"].as_str().unwrap().to_string();
    let started2 = second["State"]["StartedAt"].as_str().unwrap().to_string();
    assert_ne!(finished, "0001-01-01T00:00:00Z", "{}", second["State"]);
    // RFC 3339 in UTC with the same layout sorts as time does.
    assert!(
        started1 < finished && finished <= started2,
        "first run {started1}, ended {finished}, second run {started2}"
    );
    assert_eq!(second["State"]["Running"], true);
    // A stop then records the end of the second run.
    d.pier_ok(&["stop", "-t", "0", id]);
    let third = d.inspect(id);
    assert!(
        third["State"]["FinishedAt"].as_str().unwrap() >= started2.as_str(),
        "{}",
        third["State"]
    );
    d.pier_ok(&["rm", id]);
    d.assert_clean();
}

const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

#[test]
fn swarm_endpoints_answer_like_a_node_outside_a_swarm() {
    let d = TestDaemon::start();
    let big = vec![b'x'; 256 * 1024];
    for (method, path, body) in [
        ("GET", "/v1.47/swarm", &b""[..]),
        ("POST", "/v1.47/swarm/update?version=1", &b"{}"[..]),
        ("GET", "/v1.47/swarm/unlockkey", &b""[..]),
        ("GET", "/services", &b""[..]),
        ("POST", "/v1.47/services/create", &big[..]),
        ("GET", "/v1.47/services/web/logs?stdout=1", &b""[..]),
        ("DELETE", "/v1.47/services/web", &b""[..]),
        ("GET", "/v1.47/nodes", &b""[..]),
        ("GET", "/v1.47/nodes/self", &b""[..]),
        ("GET", "/v1.47/secrets", &b""[..]),
        ("POST", "/v1.47/secrets/create", &b"{\"Name\":\"s\"}"[..]),
        ("GET", "/v1.47/configs", &b""[..]),
        ("GET", "/v1.47/tasks", &b""[..]),
        ("GET", "/v1.47/tasks/abc/logs", &b""[..]),
    ] {
        let r = d.http(method, path, Some("application/json"), body);
        assert_eq!(r.status, 503, "{method} {path}: {}", r.text());
        assert_eq!(
            r.json(),
            json!({"message": NOT_A_MANAGER}),
            "{method} {path}"
        );
    }
    let r = d.http("POST", "/v1.47/swarm/leave", None, b"");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["message"], "This node is not part of a swarm");
    let r = d.http(
        "POST",
        "/v1.47/swarm/init",
        Some("application/json"),
        br#"{"ListenAddr":"0.0.0.0:2377"}"#,
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.json()["message"].as_str().unwrap().contains("Kubernetes"),
        "{}",
        r.text()
    );
    let info = d.http("GET", "/v1.47/info", None, b"").json();
    assert_eq!(info["Swarm"]["LocalNodeState"], "inactive");

    for args in [
        &["swarm", "init"][..],
        &["swarm"],
        &["swarm", "join", "--token", "x", "h:2377"],
    ] {
        let o = d.pier(args);
        assert_eq!(o.code(), 1, "{args:?}: {}", o.describe());
        assert!(
            o.err().contains("its cluster path is Kubernetes"),
            "{}",
            o.err()
        );
    }
    d.assert_clean();
}

#[test]
fn api_versions_above_the_maximum_are_refused_like_docker() {
    let d = TestDaemon::start();
    let v = d.http("GET", "/version", None, b"").json();
    assert_eq!(v["ApiVersion"], "1.47", "{v}");
    assert_eq!(v["MinAPIVersion"], "1.24", "{v}");
    let ping = d.http("GET", "/_ping", None, b"");
    assert_eq!(ping.header("Api-Version"), Some("1.47"));

    for too_new in ["1.99", "1.48", "2.0"] {
        let r = d.http("GET", &format!("/v{too_new}/version"), None, b"");
        assert_eq!(r.status, 400, "{too_new}: {}", r.text());
        assert_eq!(
            r.json(),
            json!({"message": format!("client version {too_new} is too new. Maximum supported API version is 1.47")})
        );
    }
    let r = d.http("GET", "/v1.23/version", None, b"");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("client version 1.23 is too old"),
        "{}",
        r.text()
    );
    for ok in ["1.24", "1.43", "1.44", "1.47"] {
        let r = d.http("GET", &format!("/v{ok}/_ping"), None, b"");
        assert_eq!(r.status, 200, "{ok}: {}", r.text());
    }
    d.assert_clean();
}

#[test]
fn options_of_newer_api_versions_are_honoured_or_refused() {
    let d = TestDaemon::with_busybox();
    // 1.45: a volume subpath is honoured (tests/volume_subpath.rs); one
    // leaving the volume is refused at create.
    let r = create(
        &d,
        &json!({"Image": "busybox", "HostConfig": {"Mounts": [
            {"Type": "volume", "Source": "v1", "Target": "/v", "VolumeOptions": {"Subpath": "../sub"}}
        ]}}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("subpath must be a relative path within the volume"),
        "{}",
        r.text()
    );
    // 1.44: read-only binds are always recursive; asking otherwise is refused.
    let r = create(
        &d,
        &json!({"Image": "busybox", "HostConfig": {"Mounts": [
            {"Type": "bind", "Source": "/tmp", "Target": "/h", "ReadOnly": true,
             "BindOptions": {"ReadOnlyNonRecursive": true}}
        ]}}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("ReadOnlyNonRecursive"), "{}", r.text());
    // 1.46: per-interface sysctls are not implemented.
    let r = create(
        &d,
        &json!({"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {"bridge": {
            "DriverOpts": {"com.docker.network.endpoint.sysctls": "net.ipv4.conf.IFNAME.log_martians=1"}
        }}}}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("endpoint.sysctls"), "{}", r.text());
    // 1.44: a duplicate network name fails whatever CheckDuplicate says.
    let net = |check: bool| {
        d.http(
            "POST",
            "/v1.41/networks/create",
            Some("application/json"),
            json!({"Name": "dup-net", "CheckDuplicate": check})
                .to_string()
                .as_bytes(),
        )
    };
    assert_eq!(net(true).status, 201);
    let r = net(false);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        r.text()
            .contains("network with name dup-net already exists"),
        "{}",
        r.text()
    );
    d.pier_ok(&["network", "rm", "dup-net"]);
    // 1.47: image indexes are not listed.
    let r = d.http("GET", "/v1.47/images/json?manifests=1", None, b"");
    assert_eq!(r.status, 400, "{}", r.text());
    // 1.46: platform on push.
    let r = d.http(
        "POST",
        "/v1.47/images/busybox/push?tag=latest&platform=%7B%22os%22%3A%22linux%22%7D",
        None,
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("platform on push"), "{}", r.text());

    // 1.46: tmpfs flags in TmpfsOptions.Options reach the mount.
    let r = create(
        &d,
        &json!({"Image": "busybox", "Cmd": ["grep", " /t ", "/proc/mounts"], "HostConfig": {"Mounts": [
            {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"Options": [["exec"], ["nr_inodes", "1000"]]}}
        ], "Annotations": {"org.example.note": "kept"}}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_string();
    // 1.46: the container list carries annotations.
    let list = d
        .http("GET", "/v1.47/containers/json?all=1", None, b"")
        .json();
    let me = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Id"] == id.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        me["HostConfig"]["Annotations"],
        json!({"org.example.note": "kept"}),
        "{me}"
    );
    d.pier_ok(&["start", &id]);
    assert_eq!(d.pier_ok(&["wait", &id]).trim(), "0");
    let line = d.pier_ok(&["logs", &id]);
    assert!(line.contains(" /t tmpfs "), "{line}");
    assert!(!line.contains("noexec"), "exec was asked for: {line}");
    assert!(line.contains("nr_inodes=1000"), "{line}");
    d.pier_ok(&["rm", &id]);
    d.assert_clean();
}

#[test]
fn health_start_interval_probes_quickly_during_the_start_period() {
    let d = TestDaemon::with_busybox();
    // Interval 60 s: only the start interval can make it healthy in time.
    let r = create(
        &d,
        &json!({"Image": "busybox", "Cmd": ["sleep", "300"], "Healthcheck": {
            "Test": ["CMD", "true"], "Interval": 60_000_000_000i64,
            "StartPeriod": 60_000_000_000i64, "StartInterval": 300_000_000i64
        }}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_string();
    d.pier_ok(&["start", &id]);
    assert!(
        wait_until(Duration::from_secs(10), || d.inspect(&id)["State"]
            ["Health"]["Status"]
            == "healthy"),
        "{}",
        d.inspect(&id)["State"]
    );
    d.pier_ok(&["rm", "-f", &id]);
    d.assert_clean();
}

#[test]
fn read_only_binds_are_read_only_below_too() {
    let d = TestDaemon::with_busybox();
    let dir = d.root.join("rro-src");
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "rro-test", sub.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(mounted.success());
    let v = format!("{}:/h:ro", dir.display());
    let m = format!("type=bind,source={},target=/m,readonly", dir.display());
    let o = d.pier(&[
        "run",
        "--rm",
        "-v",
        &v,
        "--mount",
        &m,
        "busybox",
        "sh",
        "-c",
        "touch /h/top 2>&1; touch /h/sub/x 2>&1; touch /m/sub/y 2>&1; echo done",
    ]);
    let _ = std::process::Command::new("umount").arg(&sub).status();
    let out = o.out();
    assert_eq!(o.code(), 0, "{}", o.describe());
    assert_eq!(
        out.matches("Read-only file system").count(),
        3,
        "the top and the submount are read-only through -v and --mount: {out}"
    );
    assert!(!sub.join("x").exists() && !sub.join("y").exists());
    d.assert_clean();
}
