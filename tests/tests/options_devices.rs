//! Issue #15: `--device` makes the node in the container and allows it in
//! the device cgroup; `--device-cgroup-rule` allows more; CDI names and
//! `--gpus` fail clearly. Evidence: a node with no driver behind it (major
//! 42) opens with ENXIO where the cgroup allows it and EPERM where not.

use pier_tests::{OutputExt, TestDaemon};

/// A test-owned CDI spec directory, removed on drop.
struct CdiDir(std::path::PathBuf);

impl Drop for CdiDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn refused(d: &TestDaemon, flags: &[&str], msg: &str) {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "true"]);
    let o = d.pier(&args);
    assert_eq!(o.code(), 125, "{flags:?}: {}", o.describe());
    assert!(o.err().contains(msg), "{flags:?}: {}", o.describe());
}

/// What opening `/dev/x42` (char 42:0) says in a container run with `flags`;
/// `mknod` makes the node first when it is not given.
fn open_x42(d: &TestDaemon, flags: &[&str], mknod: bool) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    let script = if mknod {
        "mknod /dev/x42 c 42 0 && cat /dev/x42 2>&1; true"
    } else {
        "stat -c '%F %t:%T' /dev/x42; cat /dev/x42 2>&1; true"
    };
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    d.pier_ok(&args)
}

#[test]
fn device_nodes_and_cgroup_rules() {
    let d = TestDaemon::with_busybox();
    // Without a rule the cgroup refuses the open.
    let out = open_x42(&d, &[], true);
    assert!(out.contains("Operation not permitted"), "{out}");
    // A rule lets it through to the (missing) driver.
    let out = open_x42(&d, &["--device-cgroup-rule", "c 42:* rwm"], true);
    assert!(out.contains("No such device or address"), "{out}");

    // A host node given with --device is made in the container and allowed.
    let node = d.root.join("dev42");
    let st = std::process::Command::new("mknod")
        .arg(&node)
        .args(["c", "42", "0"])
        .status()
        .unwrap();
    assert!(st.success());
    let spec = format!("{}:/dev/x42", node.display());
    let out = open_x42(&d, &["--device", &spec], false);
    assert!(out.contains("character special file 2a:0"), "{out}");
    assert!(out.contains("No such device or address"), "{out}");
    // Read-only permission: a write is refused by the cgroup.
    let spec_r = format!("{}:/dev/x42:r", node.display());
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "--device",
        &spec_r,
        "busybox",
        "sh",
        "-c",
        "sh -c 'echo x > /dev/x42' 2>&1; true",
    ]);
    assert!(out.contains("Operation not permitted"), "{out}");
    // An exec does not look the host's node up again.
    let run = d
        .pier_ok(&["run", "-d", "--device", &spec, "busybox", "sleep", "1000"])
        .trim()
        .to_string();
    std::fs::remove_file(&node).unwrap();
    let out = d.pier_ok(&["exec", &run, "stat", "-c", "%t:%T", "/dev/x42"]);
    assert_eq!(out.trim(), "2a:0");
    d.pier_ok(&["rm", "-f", &run]);
    assert!(std::process::Command::new("mknod")
        .arg(&node)
        .args(["c", "42", "0"])
        .status()
        .unwrap()
        .success());
    let id = d
        .pier_ok(&["create", "--device", &spec, "busybox", "true"])
        .trim()
        .to_string();
    let dev = &d.inspect(&id)["HostConfig"]["Devices"][0];
    assert_eq!(dev["PathInContainer"], "/dev/x42");
    assert_eq!(dev["CgroupPermissions"], "rwm");
    // Docker cannot change a container's devices live; neither does Pier.
    let r = d.http(
        "POST",
        &format!("/containers/{id}/update"),
        Some("application/json"),
        br#"{"DeviceCgroupRules":["c 42:* rwm"]}"#,
    );
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, 400, "{body}");
    assert!(body.contains("DeviceCgroupRules"), "{body}");
    d.pier_ok(&["rm", &id]);
    d.assert_clean();
}

#[test]
fn bad_devices_cdi_and_gpus_are_refused() {
    let d = TestDaemon::with_busybox();
    refused(
        &d,
        &["--device", "/dev/nonexistent-pier"],
        "error gathering device information while adding custom device \"/dev/nonexistent-pier\"",
    );
    refused(
        &d,
        &["--device", "vendor.com/class=name"],
        "unresolvable CDI devices vendor.com/class=name",
    );
    refused(
        &d,
        &["--device", "/dev/null:/dev/n:rx"],
        "bad mode specified: rx",
    );
    refused(
        &d,
        &["--device-cgroup-rule", "c 1:x r"],
        "invalid device cgroup rule format: 'c 1:x r'",
    );
    refused(&d, &["--gpus", "all"], "could not select device driver");
    let r = d.http(
        "POST",
        "/containers/create",
        Some("application/json"),
        br#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"DeviceCgroupRules":["q 1:2 r"]}}"#,
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    d.assert_clean();
}

#[test]
fn cdi_devices_and_gpus_come_from_the_spec_dirs() {
    let dir = CdiDir(std::env::temp_dir().join(format!("pier-cdi-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let node = dir.0.join("node42");
    assert!(std::process::Command::new("mknod")
        .arg(&node)
        .args(["c", "42", "0"])
        .status()
        .unwrap()
        .success());
    let shared = dir.0.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("hello"), "from cdi\n").unwrap();
    let spec = serde_json::json!({
        "cdiVersion": "0.6.0",
        "kind": "example.com/dev",
        "containerEdits": {"env": ["CDI_KIND=example"]},
        "devices": [{"name": "x42", "containerEdits": {
            "env": ["CDI_DEVICE=x42"],
            "deviceNodes": [{"path": "/dev/x42", "hostPath": node.display().to_string()}],
            "mounts": [{"hostPath": shared.display().to_string(),
                        "containerPath": "/cdi", "options": ["ro"]}]
        }}]
    });
    std::fs::write(dir.0.join("example.json"), spec.to_string()).unwrap();
    let gpu = serde_json::json!({
        "cdiVersion": "0.6.0",
        "kind": "nvidia.com/gpu",
        "devices": [{"name": "all", "containerEdits": {"env": ["GPU=all"]}}]
    });
    let cdi = dir.0.display().to_string();
    let d = TestDaemon::start_with_args(&["--cdi-spec-dir", &cdi]);
    d.import_busybox();
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "--device",
        "example.com/dev=x42",
        "busybox",
        "sh",
        "-c",
        "echo $CDI_KIND $CDI_DEVICE; stat -c '%t:%T' /dev/x42; cat /dev/x42 2>&1; cat /cdi/hello; true",
    ]);
    assert!(out.contains("example x42"), "{out}");
    assert!(out.contains("2a:0"), "{out}");
    assert!(out.contains("No such device or address"), "{out}");
    assert!(out.contains("from cdi"), "{out}");
    refused(
        &d,
        &["--device", "example.com/dev=nope"],
        "unresolvable CDI devices example.com/dev=nope",
    );
    // --gpus: no NVIDIA spec, Docker's answer; with one, its devices.
    refused(&d, &["--gpus", "all"], "could not select device driver");
    std::fs::write(dir.0.join("nvidia.json"), gpu.to_string()).unwrap();
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "--gpus",
        "all",
        "busybox",
        "sh",
        "-c",
        "echo $GPU",
    ]);
    assert_eq!(out.trim(), "all");
    d.assert_clean();
}
