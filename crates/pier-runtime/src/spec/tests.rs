use serde_json::Value;

use super::process::own_nofile;
use super::*;

pub(super) fn host() -> seccomp::Host<'static> {
    seccomp::Host {
        rust_arch: "x86_64",
        kernel: (6, 18),
        bounding: u64::MAX,
    }
}

pub(super) fn opts() -> SpecOptions {
    SpecOptions {
        args: vec!["echo".into(), "hi".into()],
        cgroups_path: "/pier/abc".into(),
        hostname: Some("abc".into()),
        ..Default::default()
    }
}

pub(super) fn r#gen(o: &SpecOptions) -> Value {
    serde_json::to_value(build_spec_on(o, &host(), true).unwrap()).unwrap()
}

#[test]
fn defaults_match_docker() {
    let v = r#gen(&opts());
    let caps: Vec<&str> = v["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(caps.len(), DEFAULT_CAPS.len());
    for c in DEFAULT_CAPS {
        assert!(caps.contains(c), "{c}");
    }
    assert_eq!(
        v["process"]["capabilities"]["effective"]
            .as_array()
            .unwrap()
            .len(),
        14
    );
    assert!(v["process"]["capabilities"]
        .get("inheritable")
        .is_none_or(|x| x.is_null()));
    assert_eq!(v["hostname"], "abc");
    assert_eq!(v["linux"]["cgroupsPath"], "/pier/abc");
    assert_eq!(
        v["linux"]["maskedPaths"].as_array().unwrap().len(),
        MASKED_PATHS.len()
    );
    assert_eq!(v["linux"]["readonlyPaths"][3], "/proc/sys");
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(ns, ["mount", "pid", "uts", "ipc", "cgroup", "network"]);
    let env = v["process"]["env"].as_array().unwrap();
    assert_eq!(env[0], format!("PATH={DEFAULT_PATH}"));
    assert_eq!(env[1], "HOSTNAME=abc");
    assert!(env.iter().any(|e| e == "HOME=/"));
    let dests: Vec<&str> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    for d in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
    ] {
        assert!(dests.contains(&d), "{d}");
    }
    let shm = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/dev/shm")
        .unwrap();
    assert!(shm["options"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o == "size=67108864"));
    let sys = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys")
        .unwrap();
    assert!(sys["options"].as_array().unwrap().iter().any(|o| o == "ro"));
    let nofile = &v["process"]["rlimits"][0];
    assert_eq!(nofile["type"], "RLIMIT_NOFILE");
    assert_eq!(nofile["hard"], own_nofile().1);
    assert_eq!(v["linux"]["resources"]["devices"][0]["allow"], false);
}

#[test]
fn privileged_spec() {
    let mut o = opts();
    o.privileged = true;
    let v = r#gen(&o);
    assert_eq!(
        v["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .len(),
        ALL_CAPS.len()
    );
    assert!(v["linux"].get("seccomp").is_none_or(|x| x.is_null()));
    assert!(v["linux"].get("maskedPaths").is_none_or(|x| x.is_null()));
    assert!(v["linux"].get("readonlyPaths").is_none_or(|x| x.is_null()));
    assert!(v["linux"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["path"] == "/dev/null"));
    let sys = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys")
        .unwrap();
    assert!(!sys["options"].as_array().unwrap().iter().any(|o| o == "ro"));
}

#[test]
fn real_host_spec_builds() {
    let s = build_spec(&opts()).unwrap();
    assert!(s.linux().as_ref().unwrap().seccomp().is_some());
}
