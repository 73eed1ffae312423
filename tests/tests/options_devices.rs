//! Issue #15: `--device` makes the node in the container and allows it in
//! the device cgroup; `--device-cgroup-rule` allows more; CDI names and
//! `--gpus` fail clearly. Evidence: a node with no driver behind it (major
//! 42) opens with ENXIO where the cgroup allows it and EPERM where not.

use pier_tests::{OutputExt, TestDaemon};

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
        "not supported by Pier: CDI device vendor.com/class=name",
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
