use pier_api::models::{HostConfig, ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum as P};
use serde_json::json;

use super::*;

fn hc(v: serde_json::Value) -> HostConfig {
    serde_json::from_value(v).unwrap()
}

/// Each row: a host config and the error it must get (None = accepted).
#[test]
fn host_config_table() {
    let rows: Vec<(serde_json::Value, Option<&str>)> = vec![
        (json!({}), None),
        (json!({"Memory": 6291456, "MemorySwap": -1}), None),
        (
            json!({"Memory": -1}),
            Some("Minimum memory limit allowed is 6MB"),
        ),
        (
            json!({"Memory": 1024}),
            Some("Minimum memory limit allowed is 6MB"),
        ),
        (
            json!({"Memory": i64::MIN}),
            Some("Minimum memory limit allowed is 6MB"),
        ),
        (json!({"Memory": i64::MAX}), None),
        (
            json!({"Memory": 10485760, "MemorySwap": 7340032}),
            Some("Minimum memoryswap limit should be larger than memory limit, see usage"),
        ),
        (
            json!({"MemorySwap": 10485760}),
            Some("You should always set the Memory limit when using Memoryswap limit, see usage"),
        ),
        (
            json!({"Memory": 10485760, "MemorySwap": -5}),
            Some("invalid memory swap limit -5"),
        ),
        (
            json!({"MemorySwappiness": 101}),
            Some("Invalid value: 101, valid memory swappiness range is 0-100"),
        ),
        (json!({"MemorySwappiness": -1}), None),
        (
            json!({"MemoryReservation": 5}),
            Some("Minimum memory reservation allowed is 6MB"),
        ),
        (
            json!({"NanoCpus": -1}),
            Some("range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
        ),
        (
            json!({"NanoCpus": 3_000_000_000i64}),
            Some("range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
        ),
        (json!({"NanoCpus": 1_500_000_000i64}), None),
        (
            json!({"NanoCpus": 1_000_000_000i64, "CpuPeriod": 100000}),
            Some("Conflicting options: Nano CPUs and CPU Period cannot both be set"),
        ),
        (
            json!({"NanoCpus": 1_000_000_000i64, "CpuQuota": 50000}),
            Some("Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
        ),
        (
            json!({"CpuShares": -2}),
            Some("invalid CPU shares (-2): value must be a positive integer"),
        ),
        (json!({"CpuShares": 512}), None),
        (
            json!({"CpuPeriod": 999}),
            Some("CPU cfs period can not be less than 1ms"),
        ),
        (
            json!({"CpuPeriod": 1_000_001}),
            Some("CPU cfs period can not be less than 1ms"),
        ),
        (
            json!({"CpuQuota": 999}),
            Some("CPU cfs quota can not be less than 1ms (i.e. 1000)"),
        ),
        (json!({"CpuQuota": -1, "CpuPeriod": 100000}), None),
        (
            json!({"BlkioWeight": 5}),
            Some("Range of blkio weight is from 10 to 1000"),
        ),
        (
            json!({"ShmSize": -1}),
            Some("SHM size can not be less than 0"),
        ),
        (
            json!({"OomScoreAdj": 1001}),
            Some("Invalid value 1001, range for oom score adj is [-1000, 1000]"),
        ),
        (
            json!({"CapAdd": ["CAP_BOGUS"]}),
            Some("invalid CapAdd: unknown capability: \"CAP_BOGUS\""),
        ),
        (
            json!({"CapDrop": ["bogus"]}),
            Some("invalid CapDrop: unknown capability: \"CAP_BOGUS\""),
        ),
        (
            json!({"CapAdd": ["net_admin", "ALL"], "CapDrop": ["CAP_CHOWN"]}),
            None,
        ),
        (
            json!({"RestartPolicy": {"Name": "bogus"}}),
            Some("unknown variant"),
        ),
        (
            json!({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}),
            Some("invalid restart policy: maximum retry count can only be used with 'on-failure'"),
        ),
        (
            json!({"RestartPolicy": {"Name": "no", "MaximumRetryCount": -3}}),
            Some("can only be used with 'on-failure' and cannot be negative"),
        ),
        (
            json!({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}}),
            Some("invalid restart policy: maximum retry count cannot be negative"),
        ),
        (
            json!({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 5}}),
            None,
        ),
        (
            json!({"RestartPolicy": {"Name": "", "MaximumRetryCount": 5}}),
            None,
        ),
        (
            json!({"RestartPolicy": {"Name": "always"}, "AutoRemove": true}),
            Some("can't create 'AutoRemove' container with restart policy"),
        ),
        (
            json!({"RestartPolicy": {"Name": "no"}, "AutoRemove": true}),
            None,
        ),
        (
            json!({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]}),
            Some("soft limit is greater than hard limit"),
        ),
        (
            json!({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}),
            Some("unknown ulimit name"),
        ),
        (
            json!({"Ulimits": [{"Name": "nofile", "Soft": -5, "Hard": -5}]}),
            Some("not a number"),
        ),
        (
            json!({"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]}),
            None,
        ),
        (
            json!({"SecurityOpt": ["bogus=1"]}),
            Some("invalid --security-opt 2: \"bogus=1\""),
        ),
        (
            json!({"SecurityOpt": ["bogus"]}),
            Some("invalid --security-opt 1: \"bogus\""),
        ),
    ];
    for (v, want) in rows {
        let parsed: std::result::Result<HostConfig, _> = serde_json::from_value(v.clone());
        let got = match parsed {
            Ok(h) => host_config(&h, 2).err().map(|e| e.to_string()),
            // Unknown enum values fail at decoding, which the API maps to 400 too.
            Err(e) => Some(e.to_string()),
        };
        match (want, &got) {
            (None, None) => {}
            (Some(w), Some(g)) if g.contains(w) => {}
            _ => panic!("{v}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn security_opts_table() {
    let s = |o: &[&str]| security_opts(&o.iter().map(|x| x.to_string()).collect::<Vec<_>>());
    assert_eq!(s(&[]).unwrap(), Security::default());
    assert!(s(&["no-new-privileges"]).unwrap().no_new_privileges);
    assert!(s(&["no-new-privileges=true"]).unwrap().no_new_privileges);
    assert!(s(&["no-new-privileges:true"]).unwrap().no_new_privileges);
    assert!(!s(&["no-new-privileges=false"]).unwrap().no_new_privileges);
    assert!(s(&["no-new-privileges=maybe"]).is_err());
    assert_eq!(
        s(&["seccomp=unconfined"]).unwrap().seccomp,
        Seccomp::Unconfined
    );
    assert_eq!(
        s(&["seccomp:unconfined"]).unwrap().seccomp,
        Seccomp::Unconfined
    );
    assert_eq!(s(&["seccomp=builtin"]).unwrap().seccomp, Seccomp::Default);
    let p = r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#;
    assert_eq!(
        s(&[&format!("seccomp={p}")]).unwrap().seccomp,
        Seccomp::Profile(p.into())
    );
    let e = s(&["seccomp=/tmp/profile.json"]).unwrap_err().to_string();
    assert!(e.contains("decoding seccomp profile failed"), "{e}");
    assert!(s(&["apparmor=unconfined", "label=disable", "disable"]).is_ok());
    let e = s(&["apparmor=docker-default"]).unwrap_err().to_string();
    assert!(e.contains("AppArmor"), "{e}");
    let e = s(&["label=type:svirt_apache_t"]).unwrap_err().to_string();
    assert!(e.contains("SELinux"), "{e}");
    assert!(s(&["writable-cgroups"]).is_err());
}

#[test]
fn ulimit_and_restart_helpers() {
    let u = ResourcesUlimits {
        name: Some("nofile".into()),
        soft: Some(-1),
        hard: Some(-1),
    };
    assert_eq!(ulimit(&u).unwrap().soft, u64::MAX);
    let h = HostConfig {
        restart_policy: Some(RestartPolicy {
            name: Some(P::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        ..Default::default()
    };
    assert!(host_config(&h, 1).is_ok());
    assert!(hc(json!({"Memory": 7340032})).memory.is_some());
}
