//! `--security-opt` does what it says (issue #11, item 5): custom seccomp profiles
//! in Docker's format are applied, `seccomp=unconfined` lifts the default filter,
//! bad profiles are refused before anything is created, and AppArmor / SELinux
//! options this host cannot apply are refused instead of ignored.

use std::path::PathBuf;

use pier_tests::{OutputExt, TestDaemon};
use serde_json::{json, Value};

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("pier-seccomp-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A profile file in a fresh temp dir (the CLI reads it, as docker's does).
fn profile_file(name: &str, profile: &Value) -> (TempDir, PathBuf) {
    let dir = TempDir::new();
    let p = dir.path().join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(profile).unwrap()).unwrap();
    (dir, p)
}

fn opt(p: &std::path::Path) -> String {
    format!("seccomp={}", p.display())
}

/// Runs `sh -c script` in a throwaway container with extra `run` flags.
fn run_sh(d: &TestDaemon, flags: &[&str], script: &str) -> std::process::Output {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    d.pier(&args)
}

fn deny_mkdir(errno: u32) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}
        ]
    })
}

#[test]
fn a_custom_profile_denies_mkdir_with_its_errno() {
    let d = TestDaemon::with_busybox();
    let script = "mkdir /tmp/x; echo rc=$?; echo hello > /tmp/f && cat /tmp/f; ls /tmp";
    for (errno, text) in [
        (1, "Operation not permitted"),
        (38, "Function not implemented"),
    ] {
        let (_dir, p) = profile_file("deny-mkdir.json", &deny_mkdir(errno));
        let o = run_sh(&d, &["--security-opt", &opt(&p)], script);
        assert_eq!(o.code(), 0, "{}", o.describe());
        assert!(o.err().contains(text), "errno {errno}: {}", o.describe());
        let out = o.out();
        assert!(out.contains("rc=1") && out.contains("hello"), "{out}");
        assert!(!out.lines().any(|l| l == "x"), "mkdir went through: {out}");
    }
    // The default profile allows mkdir: the custom one really replaced it.
    let o = run_sh(&d, &[], script);
    assert!(o.out().contains("rc=0"), "{}", o.describe());
    // Execs get the container's profile too.
    let (_dir, p) = profile_file("deny-mkdir.json", &deny_mkdir(1));
    let id = d.pier_ok(&[
        "run",
        "-d",
        "--security-opt",
        &opt(&p),
        "busybox",
        "sleep",
        "1000",
    ]);
    let o = d.pier(&["exec", id.trim(), "mkdir", "/tmp/y"]);
    assert_eq!(o.code(), 1, "{}", o.describe());
    assert!(
        o.err().contains("Operation not permitted"),
        "{}",
        o.describe()
    );
    d.pier_ok(&["exec", id.trim(), "touch", "/tmp/z"]);
    d.pier_ok(&["rm", "-f", id.trim()]);
    d.assert_clean();
}

#[test]
fn argument_conditions_match_as_docker_reads_them() {
    let d = TestDaemon::with_busybox();
    // kill(pid, sig): SIGUSR1 (10) by equality; SIGUSR2 (12) by SCMP_CMP_MASKED_EQ,
    // where Docker's format has the mask in `value` and the datum in `valueTwo`.
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 1, "value": 255, "valueTwo": 12, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]
    });
    let (_dir, p) = profile_file("kill.json", &profile);
    let script = "trap '' USR1 USR2 WINCH; \
                  kill -USR1 $$; echo usr1=$?; kill -USR2 $$; echo usr2=$?; \
                  kill -WINCH $$; echo winch=$?; kill -0 $$; echo zero=$?";
    let o = run_sh(&d, &["--security-opt", &opt(&p)], script);
    let out = o.out();
    for want in ["usr1=1", "usr2=1", "winch=0", "zero=0"] {
        assert!(out.lines().any(|l| l == want), "{want}: {}", o.describe());
    }
    d.assert_clean();
}

#[test]
fn includes_and_excludes_follow_the_containers_capabilities() {
    let d = TestDaemon::with_busybox();
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
             "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["rmdir", "unlinkat"], "action": "SCMP_ACT_ERRNO",
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["chmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO",
             "includes": {"arches": ["s390x"]}},
            {"names": ["chown", "fchownat", "lchown"], "action": "SCMP_ACT_ERRNO",
             "includes": {"minKernel": "3.0"}}
        ]
    });
    let (_dir, p) = profile_file("caps.json", &profile);
    let script = "mkdir /tmp/a; echo mkdir=$?; rmdir /home/app; echo rmdir=$?; \
                  chmod 700 /tmp; echo chmod=$?; chown 1:1 /tmp; echo chown=$?";
    let o = run_sh(&d, &["--security-opt", &opt(&p)], script);
    let out = o.out();
    for want in ["mkdir=0", "rmdir=1", "chmod=0", "chown=1"] {
        assert!(out.lines().any(|l| l == want), "{want}: {}", o.describe());
    }
    let o = run_sh(
        &d,
        &["--cap-add", "SYS_ADMIN", "--security-opt", &opt(&p)],
        script,
    );
    let out = o.out();
    for want in ["mkdir=1", "rmdir=0"] {
        assert!(out.lines().any(|l| l == want), "{want}: {}", o.describe());
    }
    d.assert_clean();
}

#[test]
fn unconfined_lifts_the_default_filter() {
    let d = TestDaemon::with_busybox();
    // unshare(2) needs CAP_SYS_ADMIN under the default profile, even for a user
    // namespace, which the kernel itself lets anyone make.
    let script = "unshare -U true; echo rc=$?";
    let o = run_sh(&d, &[], script);
    assert!(o.out().contains("rc=1"), "{}", o.describe());
    assert!(
        o.err().contains("Operation not permitted"),
        "{}",
        o.describe()
    );
    let o = run_sh(&d, &["--security-opt", "seccomp=unconfined"], script);
    assert!(o.out().contains("rc=0"), "{}", o.describe());
    // `builtin` names the default profile.
    let o = run_sh(&d, &["--security-opt", "seccomp=builtin"], script);
    assert!(o.out().contains("rc=1"), "{}", o.describe());
    d.assert_clean();
}

#[test]
fn no_new_privileges_is_set_on_the_process() {
    let d = TestDaemon::with_busybox();
    let script = "grep NoNewPrivs /proc/self/status";
    for (flags, want) in [
        (&[][..], "0"),
        (&["--security-opt", "no-new-privileges"][..], "1"),
        (&["--security-opt", "no-new-privileges=true"][..], "1"),
        (&["--security-opt", "no-new-privileges=false"][..], "0"),
    ] {
        let o = run_sh(&d, flags, script);
        let v = o.out().split_whitespace().last().unwrap_or("").to_string();
        assert_eq!(v, want, "{flags:?}: {}", o.describe());
    }
    // The exec'd process keeps it too.
    let id = d.pier_ok(&[
        "run",
        "-d",
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "sleep",
        "1000",
    ]);
    let o = d.pier(&["exec", id.trim(), "grep", "NoNewPrivs", "/proc/self/status"]);
    assert!(o.out().contains('1'), "{}", o.describe());
    d.pier_ok(&["rm", "-f", id.trim()]);
    d.assert_clean();
}

#[test]
fn bad_profiles_fail_with_125_and_create_nothing() {
    let d = TestDaemon::with_busybox();
    let o = d.pier(&[
        "run",
        "--security-opt",
        "seccomp=/nonexistent/profile.json",
        "busybox",
        "true",
    ]);
    assert_eq!(o.code(), 125, "{}", o.describe());
    assert!(
        o.err()
            .contains("opening seccomp profile (/nonexistent/profile.json) failed"),
        "{}",
        o.describe()
    );

    let dir = TempDir::new();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"defaultAction\": ").unwrap();
    let o = d.pier(&["create", "--security-opt", &opt(&bad), "busybox", "true"]);
    assert_eq!(o.code(), 125, "{}", o.describe());
    assert!(
        o.err().contains("compacting json for seccomp profile"),
        "{}",
        o.describe()
    );

    // Valid JSON, but not a profile: the daemon refuses it at create.
    for (profile, words) in [
        (
            json!({"defaultAction": "SCMP_ACT_BOGUS"}),
            "decoding seccomp profile failed",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "mkdir"}]}),
            "decoding seccomp profile failed",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"name": "a", "names": ["b"], "action": "SCMP_ACT_ERRNO"}]}),
            "use either 'name' or 'names'",
        ),
    ] {
        let (_d, p) = profile_file("p.json", &profile);
        let o = d.pier(&["run", "--security-opt", &opt(&p), "busybox", "true"]);
        assert_eq!(o.code(), 125, "{}", o.describe());
        assert!(
            o.err().contains("Error response from daemon") && o.err().contains(words),
            "{words}: {}",
            o.describe()
        );
    }
    assert_eq!(d.pier_ok(&["ps", "-aq"]).trim(), "");
    d.assert_clean();
}

fn create_api(d: &TestDaemon, security_opt: &[String]) -> pier_tests::http::HttpResponse {
    let body = json!({
        "Image": "busybox",
        "Cmd": ["sh", "-c", "mkdir /tmp/x; echo rc=$?"],
        "HostConfig": {"SecurityOpt": security_opt},
    });
    d.http(
        "POST",
        "/v1.43/containers/create",
        Some("application/json"),
        body.to_string().as_bytes(),
    )
}

#[test]
fn the_api_takes_the_profile_itself_in_security_opt() {
    let d = TestDaemon::with_busybox();
    let opt = format!("seccomp={}", deny_mkdir(1));
    let r = create_api(&d, std::slice::from_ref(&opt));
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_string();
    assert_eq!(
        d.inspect(&id)["HostConfig"]["SecurityOpt"][0].as_str(),
        Some(opt.as_str())
    );
    let o = d.pier(&["start", "-a", &id]);
    assert!(o.out().contains("rc=1"), "{}", o.describe());
    assert!(
        o.err().contains("Operation not permitted"),
        "{}",
        o.describe()
    );
    d.pier_ok(&["rm", "-f", &id]);

    for (opts, words) in [
        (
            vec!["seccomp={\"defaultAction\": 7}".to_string()],
            "decoding seccomp profile failed",
        ),
        // A path is not a profile: the client sends the file's content.
        (
            vec!["seccomp=/etc/profile.json".into()],
            "decoding seccomp profile failed",
        ),
        (vec!["apparmor=docker-default".into()], "AppArmor"),
        (vec!["label=type:container_t".into()], "SELinux"),
        (
            vec!["bogus=1".into()],
            "invalid --security-opt 2: \\\"bogus=1\\\"",
        ),
        (
            vec!["bogus".into()],
            "invalid --security-opt 1: \\\"bogus\\\"",
        ),
        (
            vec!["no-new-privileges=maybe".into()],
            "invalid --security-opt 2",
        ),
    ] {
        let r = create_api(&d, &opts);
        assert_eq!(r.status, 400, "{opts:?}: {}", r.text());
        assert!(r.text().contains(words), "{opts:?}: {}", r.text());
    }
    assert_eq!(d.pier_ok(&["ps", "-aq"]).trim(), "");
    d.assert_clean();
}

#[test]
fn apparmor_and_selinux_options_this_host_cannot_apply_are_refused() {
    let d = TestDaemon::with_busybox();
    for (o, words) in [
        ("apparmor=docker-default", "AppArmor"),
        ("label=level:s0:c100,c200", "SELinux"),
        ("label=user:USER", "SELinux"),
    ] {
        let out = d.pier(&["run", "--rm", "--security-opt", o, "busybox", "true"]);
        assert_eq!(out.code(), 125, "{o}: {}", out.describe());
        assert!(
            out.err().contains("Error response from daemon") && out.err().contains(words),
            "{o}: {}",
            out.describe()
        );
    }
    // Options that ask for no confinement are fine.
    let out = d.pier(&[
        "run",
        "--rm",
        "--security-opt",
        "apparmor=unconfined",
        "--security-opt",
        "label=disable",
        "busybox",
        "true",
    ]);
    assert_eq!(out.code(), 0, "{}", out.describe());
    // The client itself refuses an option without a value, as docker's does.
    let out = d.pier(&["create", "--security-opt", "apparmor", "busybox", "true"]);
    assert_eq!(out.code(), 125, "{}", out.describe());
    assert!(
        out.err().contains("invalid --security-opt: \"apparmor\""),
        "{}",
        out.describe()
    );
    assert_eq!(d.pier_ok(&["ps", "-aq"]).trim(), "");
    d.assert_clean();
}

/// The allowlist of Pier's built-in profile, read from its source: an allowlist
/// profile in Docker's shape needs one, and this one is known to run busybox.
fn base_allowlist() -> Vec<String> {
    let src = std::fs::read_to_string(
        pier_tests::repo_root().join("crates/pier-runtime/src/spec/seccomp.rs"),
    )
    .unwrap();
    let start = src.find("const BASE_ALLOW: &str = \"").unwrap() + 26;
    let len = src[start..].find('"').unwrap();
    src[start..start + len]
        .split(|c: char| c.is_whitespace() || c == '\\')
        .filter(|n| !n.is_empty() && *n != "clone" && *n != "clone3")
        .map(str::to_string)
        .collect()
}

#[test]
fn an_allowlist_profile_shaped_like_dockers_default_runs_busybox() {
    let d = TestDaemon::with_busybox();
    // Docker's default.json in miniature: errno by default, an archMap, clone
    // allowed only without namespace flags (the mask alone in `value`), clone3
    // answered ENOSYS, namespace calls for CAP_SYS_ADMIN only.
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64",
             "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
        ],
        "syscalls": [
            {"names": base_allowlist(), "action": "SCMP_ACT_ALLOW"},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": null},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
             "includes": {"arches": ["amd64", "x32"]}},
            {"names": ["clone", "clone3", "unshare"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["process_vm_readv"], "action": "SCMP_ACT_ALLOW",
             "includes": {"minKernel": "4.8"}}
        ]
    });
    let (_dir, p) = profile_file("allowlist.json", &profile);
    let script = "echo hi | cat; (sleep 0; echo sub); unshare -U true; echo rc=$?";
    let o = run_sh(&d, &["--security-opt", &opt(&p)], script);
    let out = o.out();
    for want in ["hi", "sub", "rc=1"] {
        assert!(out.lines().any(|l| l == want), "{want}: {}", o.describe());
    }
    let o = run_sh(
        &d,
        &["--cap-add", "SYS_ADMIN", "--security-opt", &opt(&p)],
        script,
    );
    assert!(o.out().lines().any(|l| l == "rc=0"), "{}", o.describe());
    d.assert_clean();
}
