//! Issue #15: `--pid`, `--ipc`, `--uts`, `--cgroupns`, `--domainname`,
//! `--annotation`, `--cgroup-parent`, `--runtime`, `--userns` and
//! `--storage-opt` either do what they say, seen from inside the container
//! (namespace links compared with the host's or another container's), or
//! are refused with exit 125 / HTTP 400.

use std::path::Path;

use pier_tests::{OutputExt, TestDaemon};

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

/// The namespace link of `kind` seen by a fresh container run with `flags`.
fn ns_in_run(d: &TestDaemon, flags: &[&str], kind: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    let link = format!("/proc/self/ns/{kind}");
    args.extend_from_slice(&["busybox", "readlink", &link]);
    d.pier_ok(&args).trim().to_string()
}

fn ns_in_exec(d: &TestDaemon, ctr: &str, kind: &str) -> String {
    let link = format!("/proc/self/ns/{kind}");
    d.pier_ok(&["exec", ctr, "readlink", &link])
        .trim()
        .to_string()
}

fn refused(d: &TestDaemon, flags: &[&str], msg: &str) {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "true"]);
    let o = d.pier(&args);
    assert_eq!(o.code(), 125, "{flags:?}: {}", o.describe());
    assert!(o.err().contains(msg), "{flags:?}: {}", o.describe());
}

fn sleeper(d: &TestDaemon, name: &str, flags: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sleep", "1000"]);
    d.pier_ok(&args).trim().to_string()
}

#[test]
fn pid_host_and_container_share_the_namespace() {
    let d = TestDaemon::with_busybox();
    assert_eq!(ns_in_run(&d, &["--pid", "host"], "pid"), host_ns("pid"));
    assert_ne!(ns_in_run(&d, &[], "pid"), host_ns("pid"));

    let a = sleeper(&d, "pid-donor", &[]);
    let a_ns = ns_in_exec(&d, &a, "pid");
    assert_ne!(a_ns, host_ns("pid"));
    assert_eq!(
        ns_in_run(&d, &["--pid", "container:pid-donor"], "pid"),
        a_ns
    );
    // The joiner sees the donor's process.
    let ps = d.pier_ok(&[
        "run",
        "--rm",
        "--pid",
        "container:pid-donor",
        "busybox",
        "ps",
        "-o",
        "args",
    ]);
    assert!(ps.contains("sleep 1000"), "{ps}");
    assert_eq!(d.inspect(&a)["HostConfig"]["PidMode"], "");

    d.pier_ok(&["stop", "-t", "0", &a]);
    let o = d.pier(&[
        "run",
        "--rm",
        "--pid",
        "container:pid-donor",
        "busybox",
        "true",
    ]);
    assert_ne!(o.code(), 0, "{}", o.describe());
    assert!(o.err().contains("is not running"), "{}", o.describe());
    d.pier_ok(&["rm", "-f", &a]);

    refused(&d, &["--pid", "bogus"], "invalid PID mode: bogus");
    refused(
        &d,
        &["--pid", "container:nothere"],
        "No such container: nothere",
    );
    d.assert_clean();
}

#[test]
fn ipc_modes_host_none_and_shareable() {
    let d = TestDaemon::with_busybox();
    assert_eq!(ns_in_run(&d, &["--ipc", "host"], "ipc"), host_ns("ipc"));
    assert_ne!(ns_in_run(&d, &["--ipc", "private"], "ipc"), host_ns("ipc"));
    // `none`: a private namespace without /dev/shm.
    assert_ne!(ns_in_run(&d, &["--ipc", "none"], "ipc"), host_ns("ipc"));
    let shm = d.pier_ok(&[
        "run",
        "--rm",
        "--ipc",
        "none",
        "busybox",
        "cat",
        "/proc/mounts",
    ]);
    assert!(!shm.contains(" /dev/shm "), "{shm}");

    let a = sleeper(&d, "ipc-donor", &["--ipc", "shareable"]);
    assert_eq!(d.inspect(&a)["HostConfig"]["IpcMode"], "shareable");
    d.pier_ok(&["exec", &a, "sh", "-c", "echo shared > /dev/shm/note"]);
    let b_ns = ns_in_run(&d, &["--ipc", "container:ipc-donor"], "ipc");
    assert_eq!(b_ns, ns_in_exec(&d, &a, "ipc"));
    let note = d.pier_ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:ipc-donor",
        "busybox",
        "cat",
        "/dev/shm/note",
    ]);
    assert_eq!(note.trim(), "shared");

    // Docker's default IPC mode is private, which cannot be joined.
    let p = sleeper(&d, "ipc-private", &[]);
    assert_eq!(d.inspect(&p)["HostConfig"]["IpcMode"], "private");
    let o = d.pier(&[
        "run",
        "--rm",
        "--ipc",
        "container:ipc-private",
        "busybox",
        "true",
    ]);
    assert_ne!(o.code(), 0, "{}", o.describe());
    assert!(o.err().contains("non-shareable IPC"), "{}", o.describe());
    d.pier_ok(&["rm", "-f", &a, &p]);
    refused(&d, &["--ipc", "bogus"], "invalid IPC mode: bogus");
    d.assert_clean();
}

#[test]
fn uts_host_domainname_and_cgroupns() {
    let d = TestDaemon::with_busybox();
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = d.pier_ok(&["run", "--rm", "--uts", "host", "busybox", "hostname"]);
    assert_eq!(out.trim(), host_name.trim());
    assert_eq!(ns_in_run(&d, &["--uts", "host"], "uts"), host_ns("uts"));
    refused(
        &d,
        &["--uts", "host", "-h", "x"],
        "conflicting options: hostname and the UTS mode",
    );
    refused(&d, &["--uts", "bogus"], "invalid UTS mode: bogus");

    let dn = d.pier_ok(&[
        "run",
        "--rm",
        "--domainname",
        "example.org",
        "busybox",
        "cat",
        "/proc/sys/kernel/domainname",
    ]);
    assert_eq!(dn.trim(), "example.org");

    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let host = ns_in_run(&d, &["--cgroupns", "host"], "cgroup");
    assert_eq!(host, host_ns("cgroup"));
    let private = ns_in_run(&d, &["--cgroupns", "private"], "cgroup");
    assert_ne!(private, host_ns("cgroup"));
    // Docker's default follows the host's cgroup version.
    let id = d.pier_ok(&["create", "busybox", "true"]).trim().to_string();
    let want = if v2 { "private" } else { "host" };
    assert_eq!(d.inspect(&id)["HostConfig"]["CgroupnsMode"], want);
    d.pier_ok(&["rm", &id]);
    assert_eq!(
        ns_in_run(&d, &[], "cgroup") == host_ns("cgroup"),
        !v2,
        "default cgroup namespace"
    );
    let o = d.pier(&["run", "--rm", "--cgroupns", "bogus", "busybox", "true"]);
    assert_eq!(o.code(), 125, "{}", o.describe());
    d.assert_clean();
}

#[test]
fn annotations_reach_the_oci_spec_and_inspect() {
    let d = TestDaemon::with_busybox();
    let id = sleeper(
        &d,
        "annotated",
        &["--annotation", "org.example.a=1", "--annotation", "b=x=y"],
    );
    let a = &d.inspect(&id)["HostConfig"]["Annotations"];
    assert_eq!(a["org.example.a"], "1");
    assert_eq!(a["b"], "x=y");
    let bundle = d.exec_root.join("containers").join(&id).join("config.json");
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    assert_eq!(spec["annotations"]["org.example.a"], "1");
    assert_eq!(spec["annotations"]["b"], "x=y");
    d.pier_ok(&["rm", "-f", &id]);
    let o = d.pier(&["run", "--rm", "--annotation", "novalue", "busybox", "true"]);
    assert_eq!(o.code(), 125, "{}", o.describe());
    d.assert_clean();
}

/// The directories of cgroup `rel` in every hierarchy that has it.
fn cgroup_dirs(rel: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut out = Vec::new();
    if root.join(rel).is_dir() {
        out.push(root.join(rel));
    }
    for e in std::fs::read_dir(root).unwrap().flatten() {
        let p = e.path().join(rel);
        if p.is_dir() {
            out.push(p);
        }
    }
    out
}

#[test]
fn cgroup_parent_per_container() {
    let d = TestDaemon::with_busybox();
    let parent = format!("/{}/custom", d.cgroup_parent);
    let id = sleeper(&d, "parented", &["--cgroup-parent", &parent]);
    let pid = d.container_pid(&id);
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = format!("{parent}/{id}");
    let mem = cg
        .lines()
        .find(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == "memory"))
                || l.starts_with("0::")
        })
        .unwrap();
    assert!(mem.ends_with(&want), "{cg}");
    assert_eq!(
        d.inspect(&id)["HostConfig"]["CgroupParent"],
        parent.as_str()
    );
    d.pier_ok(&["rm", "-f", &id]);
    // Docker leaves a cgroup parent it did not make for itself; so does Pier.
    let rel = parent.trim_start_matches('/');
    for dir in cgroup_dirs(rel) {
        std::fs::remove_dir(&dir).unwrap_or_else(|e| panic!("rmdir {}: {e}", dir.display()));
    }
    refused(&d, &["--cgroup-parent", "/a/../b"], "invalid cgroup parent");
    d.assert_clean();
}

#[test]
fn runtime_userns_storage_opt_and_gpus() {
    let d = TestDaemon::with_busybox();
    let id = d.pier_ok(&["create", "busybox", "true"]).trim().to_string();
    assert_eq!(d.inspect(&id)["HostConfig"]["Runtime"], "runc");
    d.pier_ok(&["rm", &id]);
    d.pier_ok(&["run", "--rm", "--runtime", "runc", "busybox", "true"]);
    refused(
        &d,
        &["--runtime", "kata"],
        "unknown or invalid runtime name: kata",
    );
    assert_eq!(
        ns_in_run(&d, &["--userns", "host"], "user"),
        host_ns("user")
    );
    refused(
        &d,
        &["--userns", "private"],
        "not supported by Pier: --userns=private",
    );
    refused(
        &d,
        &["--storage-opt", "size=1G"],
        "not supported by Pier: --storage-opt",
    );
    refused(
        &d,
        &["--gpus", "all"],
        "could not select device driver \"\" with capabilities: [[gpu]]",
    );

    // The same refusals through the API.
    for (hc, msg) in [
        (r#"{"StorageOpt":{"size":"1G"}}"#, "--storage-opt"),
        (r#"{"UsernsMode":"private"}"#, "--userns"),
        (r#"{"Runtime":"kata"}"#, "unknown or invalid runtime name"),
        (r#"{"PidMode":"bogus"}"#, "invalid PID mode"),
        (r#"{"IpcMode":"bogus"}"#, "invalid IPC mode"),
        (r#"{"CgroupnsMode":"bogus"}"#, ""),
        (
            r#"{"DeviceRequests":[{"Count":-1,"Capabilities":[["gpu"]]}]}"#,
            "could not select device driver",
        ),
    ] {
        let body = format!(r#"{{"Image":"busybox","Cmd":["true"],"HostConfig":{hc}}}"#);
        let r = d.http(
            "POST",
            "/containers/create",
            Some("application/json"),
            body.as_bytes(),
        );
        let text = String::from_utf8_lossy(&r.body);
        assert_eq!(r.status, 400, "{hc}: {text}");
        assert!(text.contains(msg), "{hc}: {text}");
    }
    d.assert_clean();
}
