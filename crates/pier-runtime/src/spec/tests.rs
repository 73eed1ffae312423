use super::*;

fn host() -> seccomp::Host<'static> {
    seccomp::Host {
        rust_arch: "x86_64",
        kernel: (6, 18),
        bounding: u64::MAX,
    }
}

fn opts() -> SpecOptions {
    SpecOptions {
        args: vec!["echo".into(), "hi".into()],
        cgroups_path: "/pier/abc".into(),
        hostname: Some("abc".into()),
        ..Default::default()
    }
}

fn gen(o: &SpecOptions) -> Value {
    serde_json::to_value(build_spec_on(o, &host(), true).unwrap()).unwrap()
}

fn syscall_rules<'a>(v: &'a Value, name: &str) -> Vec<&'a Value> {
    v["linux"]["seccomp"]["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
        .collect()
}

#[test]
fn defaults_match_docker() {
    let v = gen(&opts());
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
fn seccomp_profile_shape() {
    let v = gen(&opts());
    let sc = &v["linux"]["seccomp"];
    assert_eq!(sc["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(sc["defaultErrnoRet"], 1);
    assert_eq!(
        sc["architectures"],
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    );
    // Plain allowlist entries.
    assert!(!syscall_rules(&v, "read").is_empty());
    assert!(!syscall_rules(&v, "arch_prctl").is_empty());
    // Cap-conditional: no CAP_SYS_ADMIN -> mount not allowed, clone masked, clone3 ENOSYS.
    assert!(syscall_rules(&v, "mount").is_empty());
    let clone = syscall_rules(&v, "clone");
    assert_eq!(clone.len(), 1);
    assert_eq!(clone[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
    assert_eq!(clone[0]["args"][0]["valueTwo"], CLONE_NS_MASK_FOR_TEST);
    let clone3 = syscall_rules(&v, "clone3");
    assert_eq!(clone3[0]["action"], "SCMP_ACT_ERRNO");
    assert_eq!(clone3[0]["errnoRet"], 38);
    // Arch-specific rules for other arches are left out.
    assert!(syscall_rules(&v, "s390_runtime_instr").is_empty());
    assert_eq!(syscall_rules(&v, "personality").len(), 5);
    assert_eq!(
        syscall_rules(&v, "socket")[0]["args"][0]["op"],
        "SCMP_CMP_NE"
    );
}

const CLONE_NS_MASK_FOR_TEST: u64 = 2_114_060_288;

#[test]
fn seccomp_with_sys_admin() {
    let mut o = opts();
    o.cap_add = vec!["sys_admin".into()];
    let v = gen(&o);
    assert!(!syscall_rules(&v, "mount").is_empty());
    let clone = syscall_rules(&v, "clone");
    assert_eq!(clone.len(), 1);
    assert!(clone[0].get("args").is_none_or(|a| a.is_null()));
    assert!(v["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "CAP_SYS_ADMIN"));
}

#[test]
fn caps_add_drop_all() {
    let c = compute_caps(
        &["NET_ADMIN".into()],
        &["CAP_CHOWN".into(), "kill".into()],
        false,
    )
    .unwrap();
    assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
    assert!(!c.contains(&"CAP_CHOWN".to_string()));
    assert!(!c.contains(&"CAP_KILL".to_string()));
    let c = compute_caps(&["CHOWN".into()], &["ALL".into()], false).unwrap();
    assert_eq!(c, ["CAP_CHOWN"]);
    let c = compute_caps(&["all".into()], &["SYS_ADMIN".into()], false).unwrap();
    assert_eq!(c.len(), ALL_CAPS.len() - 1);
    assert!(compute_caps(&["BOGUS".into()], &[], false).is_err());
}

#[test]
fn all_capabilities_are_those_the_host_can_grant() {
    let mut o = opts();
    o.privileged = true;
    let mut h = host();
    h.bounding = !(1u64 << 24); // no CAP_SYS_RESOURCE, as in some VMs
    let v = serde_json::to_value(build_spec_on(&o, &h, true).unwrap()).unwrap();
    let b = v["process"]["capabilities"]["bounding"].as_array().unwrap();
    assert_eq!(b.len(), ALL_CAPS.len() - 1);
    assert!(!b.iter().any(|c| c == "CAP_SYS_RESOURCE"));
    o.privileged = false;
    o.cap_add = vec!["ALL".into()];
    let v = serde_json::to_value(build_spec_on(&o, &h, true).unwrap()).unwrap();
    let b = v["process"]["capabilities"]["bounding"].as_array().unwrap();
    assert!(!b.iter().any(|c| c == "CAP_SYS_RESOURCE"));
    assert!(b.iter().any(|c| c == "CAP_SYS_ADMIN"));
}

#[test]
fn privileged_spec() {
    let mut o = opts();
    o.privileged = true;
    let v = gen(&o);
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
fn network_modes() {
    let mut o = opts();
    o.network = NetworkNs::Host;
    let v = gen(&o);
    assert!(!v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "network"));
    o.network = NetworkNs::Path("/run/pier/netns/x".into());
    let v = gen(&o);
    let net = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "network")
        .unwrap()
        .clone();
    assert_eq!(net["path"], "/run/pier/netns/x");
}

#[test]
fn resources_and_limits() {
    let mut o = opts();
    o.resources = Resources {
        memory: Some(100 << 20),
        memory_swap: None,
        nano_cpus: Some(1_500_000_000),
        cpu_shares: Some(512),
        pids_limit: Some(100),
    };
    o.ulimits = vec![
        Ulimit::parse("nofile=100:200").unwrap(),
        Ulimit::parse("nproc=50").unwrap(),
    ];
    o.oom_score_adj = Some(500);
    o.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
    o.no_new_privileges = true;
    let v = gen(&o);
    let r = &v["linux"]["resources"];
    assert_eq!(r["memory"]["limit"], 100 << 20);
    assert_eq!(r["memory"]["swap"], 200 << 20);
    assert_eq!(r["cpu"]["quota"], 150_000);
    assert_eq!(r["cpu"]["period"], 100_000);
    assert_eq!(r["cpu"]["shares"], 512);
    assert_eq!(r["pids"]["limit"], 100);
    let rl = v["process"]["rlimits"].as_array().unwrap();
    assert_eq!(rl.len(), 2);
    assert!(rl
        .iter()
        .any(|l| l["type"] == "RLIMIT_NOFILE" && l["soft"] == 100 && l["hard"] == 200));
    assert!(rl
        .iter()
        .any(|l| l["type"] == "RLIMIT_NPROC" && l["soft"] == 50));
    assert_eq!(v["process"]["oomScoreAdj"], 500);
    assert_eq!(v["process"]["noNewPrivileges"], true);
    assert_eq!(v["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
    assert!(Ulimit::parse("nofile=200:100").is_err());
    assert!(Ulimit::parse("bogus=1").is_err());
}

#[test]
fn mounts_user_override_and_order() {
    let mut o = opts();
    o.readonly_rootfs = true;
    o.tmpfs = vec![TmpfsMount {
        destination: "/run".into(),
        options: vec!["exec".into(), "size=1m".into()],
    }];
    o.binds = vec![
        BindMount {
            source: "/tmp/x/hosts".into(),
            destination: "/etc/hosts".into(),
            readonly: false,
        },
        BindMount {
            source: "/tmp/shm".into(),
            destination: "/dev/shm".into(),
            readonly: true,
        },
    ];
    let v = gen(&o);
    assert_eq!(v["root"]["readonly"], true);
    let m = v["mounts"].as_array().unwrap();
    let shm: Vec<_> = m
        .iter()
        .filter(|x| x["destination"] == "/dev/shm")
        .collect();
    assert_eq!(shm.len(), 1);
    assert_eq!(shm[0]["type"], "bind");
    assert_eq!(shm[0]["options"], json!(["rbind", "ro", "rprivate"]));
    let run = m.iter().find(|x| x["destination"] == "/run").unwrap();
    assert_eq!(
        run["options"],
        json!(["nosuid", "nodev", "exec", "size=1m"])
    );
    let pos = |d: &str| m.iter().position(|x| x["destination"] == d).unwrap();
    assert!(pos("/dev") < pos("/dev/shm"));
    assert!(pos("/sys") < pos("/sys/fs/cgroup"));
}

#[test]
fn user_and_terminal() {
    let mut o = opts();
    o.uid = 1000;
    o.gid = 1000;
    o.additional_gids = vec![10, 20];
    o.home = Some("/home/u".into());
    o.terminal = true;
    o.env = vec!["FOO=bar".into()];
    o.cwd = "/work".into();
    let v = gen(&o);
    assert_eq!(
        v["process"]["user"],
        json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20]})
    );
    assert_eq!(v["process"]["terminal"], true);
    assert_eq!(v["process"]["cwd"], "/work");
    let env = v["process"]["env"].as_array().unwrap();
    assert!(env.iter().any(|e| e == "TERM=xterm"));
    assert!(env.iter().any(|e| e == "FOO=bar"));
    assert!(env.iter().any(|e| e == "HOME=/home/u"));
    o.cwd = "rel".into();
    assert!(build_spec_on(&o, &host(), true).is_err());
}

#[test]
fn real_host_spec_builds() {
    let s = build_spec(&opts()).unwrap();
    assert!(s.linux().as_ref().unwrap().seccomp().is_some());
}
