//! Nonsense values are refused at create with 400 and Docker's words (issue #11,
//! item 11), before anything is made, instead of failing at start, overflowing
//! below, being ignored, or answering 500.

use pier_tests::{cgroup_value, OutputExt, TestDaemon};
use serde_json::{json, Value};

fn create(d: &TestDaemon, host_config: Value) -> pier_tests::http::HttpResponse {
    let body = json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config});
    d.http(
        "POST",
        "/v1.43/containers/create",
        Some("application/json"),
        body.to_string().as_bytes(),
    )
}

#[test]
fn nonsense_host_configs_are_a_400_with_dockers_message() {
    let d = TestDaemon::with_busybox();
    let rows: &[(Value, &str)] = &[
        (json!({"Memory": -1}), "Minimum memory limit allowed is 6MB"),
        (
            json!({"Memory": 4096}),
            "Minimum memory limit allowed is 6MB",
        ),
        (
            json!({"Memory": i64::MIN}),
            "Minimum memory limit allowed is 6MB",
        ),
        // Beyond int64: refused while decoding.
        (json!({"Memory": 1e30}), "invalid JSON"),
        (json!({"Memory": u64::MAX}), "invalid JSON"),
        (
            json!({"Memory": 10485760, "MemorySwap": 8388608}),
            "Minimum memoryswap limit should be larger than memory limit",
        ),
        (
            json!({"MemorySwap": 10485760}),
            "You should always set the Memory limit when using Memoryswap limit",
        ),
        (
            json!({"Memory": 10485760, "MemorySwap": -7}),
            "invalid memory swap limit -7",
        ),
        (json!({"ShmSize": -1}), "SHM size can not be less than 0"),
        (json!({"NanoCpus": -1}), "range of CPUs is from 0.01 to"),
        (
            json!({"NanoCpus": i64::MAX}),
            "range of CPUs is from 0.01 to",
        ),
        (
            json!({"CpuShares": -1}),
            "invalid CPU shares (-1): value must be a positive integer",
        ),
        (
            json!({"CpuPeriod": 10}),
            "CPU cfs period can not be less than 1ms",
        ),
        (
            json!({"CpuQuota": 10}),
            "CPU cfs quota can not be less than 1ms",
        ),
        (
            json!({"NanoCpus": 1000000000, "CpuQuota": 50000}),
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ),
        (
            json!({"OomScoreAdj": 5000}),
            "Invalid value 5000, range for oom score adj is [-1000, 1000]",
        ),
        (
            json!({"CapAdd": ["CAP_BOGUS"]}),
            "invalid CapAdd: unknown capability: \\\"CAP_BOGUS\\\"",
        ),
        (
            json!({"CapDrop": ["bogus"]}),
            "invalid CapDrop: unknown capability: \\\"CAP_BOGUS\\\"",
        ),
        (json!({"RestartPolicy": {"Name": "bogus"}}), "bogus"),
        (
            json!({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}),
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        ),
        (
            json!({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}}),
            "invalid restart policy: maximum retry count cannot be negative",
        ),
        (
            json!({"RestartPolicy": {"Name": "always"}, "AutoRemove": true}),
            "can't create 'AutoRemove' container with restart policy",
        ),
        (
            json!({"Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 10}]}),
            "soft limit is greater than hard limit",
        ),
        (
            json!({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}),
            "unknown ulimit name",
        ),
        (
            json!({"Binds": [format!("{}:/data", "v".repeat(300))]}),
            "invalid volume name",
        ),
    ];
    for (hc, words) in rows {
        let r = create(&d, hc.clone());
        assert_eq!(r.status, 400, "{hc}: {}", r.text());
        assert!(
            r.text().contains(words),
            "{hc}: want {words:?}, got {}",
            r.text()
        );
    }
    assert_eq!(d.pier_ok(&["ps", "-aq"]).trim(), "", "nothing was created");
    assert_eq!(d.pier_ok(&["volume", "ls", "-q"]).trim(), "");

    // The edges that are fine stay fine.
    for hc in [
        json!({"Memory": 6291456, "MemorySwap": -1}),
        json!({"CapAdd": ["net_admin"], "CapDrop": ["ALL"]}),
        json!({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}),
        json!({"Ulimits": [{"Name": "nofile", "Soft": -1, "Hard": -1}]}),
        json!({"PidsLimit": -1, "ShmSize": 0}),
    ] {
        let r = create(&d, hc.clone());
        assert_eq!(r.status, 201, "{hc}: {}", r.text());
    }
    d.pier_ok(&["container", "prune", "-f"]);
    d.assert_clean();
}

#[test]
fn the_cli_exits_125_with_the_daemons_message() {
    let d = TestDaemon::with_busybox();
    for (args, words) in [
        (
            &["--cap-add", "BOGUS"][..],
            "Error response from daemon: invalid CapAdd: unknown capability: \"CAP_BOGUS\"",
        ),
        (
            &["--restart", "always", "--rm"][..],
            "can't create 'AutoRemove' container with restart policy",
        ),
        (&["--cpus=-1"][..], "range of CPUs is from 0.01 to"),
        (
            &["--restart", "always:3"][..],
            "Error response from daemon: invalid restart policy: maximum retry count can only be used with 'on-failure'",
        ),
        (
            &["--restart", "on-failure:-2"][..],
            "Error response from daemon: invalid restart policy: maximum retry count cannot be negative",
        ),
        (
            &["--restart", "sometimes"][..],
            "invalid restart policy: unknown policy 'sometimes'",
        ),
        (
            &["--memory", "1k"][..],
            "Minimum memory limit allowed is 6MB",
        ),
    ] {
        let mut a = vec!["run"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["busybox", "true"]);
        let o = d.pier(&a);
        assert_eq!(o.code(), 125, "{args:?}: {}", o.describe());
        assert!(o.err().contains(words), "{args:?}: {}", o.describe());
    }
    assert_eq!(d.pier_ok(&["ps", "-aq"]).trim(), "");
    d.assert_clean();
}

#[test]
fn a_300_character_volume_name_is_a_400_not_a_500() {
    let d = TestDaemon::with_busybox();
    let long = "v".repeat(300);
    let r = d.http(
        "POST",
        "/v1.43/volumes/create",
        Some("application/json"),
        json!({"Name": long}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("invalid volume name"), "{}", r.text());
    let o = d.pier(&["volume", "create", &long]);
    assert_eq!(o.code(), 1, "{}", o.describe());
    assert!(o.err().contains("invalid volume name"), "{}", o.describe());
    let o = d.pier(&[
        "run",
        "--rm",
        "-v",
        &format!("{long}:/data"),
        "busybox",
        "true",
    ]);
    assert_eq!(o.code(), 125, "{}", o.describe());
    // 255 characters is the most a directory name can hold; it works.
    let ok = "v".repeat(255);
    d.pier_ok(&["volume", "create", &ok]);
    d.pier_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{ok}:/data"),
        "busybox",
        "true",
    ]);
    d.pier_ok(&["volume", "rm", &ok]);
    assert_eq!(d.pier_ok(&["volume", "ls", "-q"]).trim(), "");
    d.assert_clean();
}

#[test]
fn cpu_period_and_quota_reach_the_cgroup_and_update_checks_them() {
    let d = TestDaemon::with_busybox();
    let body = json!({
        "Image": "busybox", "Cmd": ["sleep", "1000"],
        "HostConfig": {"CpuPeriod": 50000, "CpuQuota": 25000},
    });
    let r = d.http(
        "POST",
        "/v1.43/containers/create",
        Some("application/json"),
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_string();
    d.pier_ok(&["start", &id]);
    let pid = d.container_pid(&id);
    let v2 = cgroup_value(pid, "cpu", "cpu.cfs_quota_us", "cpu.max");
    let v1_period = cgroup_value(pid, "cpu", "cpu.cfs_period_us", "cpu.max");
    assert!(
        v2.as_deref() == Some("25000 50000")
            || (v2.as_deref() == Some("25000") && v1_period.as_deref() == Some("50000")),
        "quota {v2:?}, period {v1_period:?}"
    );
    for (u, words) in [
        (json!({"CpuShares": -5}), "invalid CPU shares (-5)"),
        (
            json!({"Memory": 100}),
            "Minimum memory limit allowed is 6MB",
        ),
        (
            json!({"CpuPeriod": 5}),
            "CPU cfs period can not be less than 1ms",
        ),
        (
            json!({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}}),
            "maximum retry count can only be used with 'on-failure'",
        ),
    ] {
        let r = d.http(
            "POST",
            &format!("/v1.43/containers/{id}/update"),
            Some("application/json"),
            u.to_string().as_bytes(),
        );
        assert_eq!(r.status, 400, "{u}: {}", r.text());
        assert!(r.text().contains(words), "{u}: {}", r.text());
    }
    d.pier_ok(&["rm", "-f", &id]);
    d.assert_clean();
}
