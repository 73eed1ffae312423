//! What the CLI prints against a running daemon, as snapshots (`insta`):
//! only columns that do not change from run to run (names, images, commands,
//! states, ports, sizes of known files), and error messages with their exit
//! codes. The renderers themselves are snapshot-tested without root in
//! `crates/pier/src/cli/snapshot_tests.rs`.

use insta::assert_snapshot;
use pier_tests::{OutputExt, TestDaemon};

/// A command's stdout, stderr and exit code in one block.
fn run(d: &TestDaemon, args: &[&str]) -> String {
    let o = d.pier(args);
    let mut s = format!("$ pier {}\n", args.join(" "));
    s.push_str(&o.out());
    if !o.err().is_empty() {
        s.push_str("[stderr]\n");
        s.push_str(&o.err());
    }
    s.push_str(&format!("[exit {}]\n", o.code()));
    s
}

#[test]
fn ps_images_and_inspect_of_a_live_daemon() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&["tag", "busybox", "example.com/tools/busybox:1.36"]);
    d.pier_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1:18080:80",
        "--expose",
        "443",
        "-l",
        "tier=front",
        "busybox",
        "sh",
        "-c",
        "while true; do sleep 1; done",
    ]);
    d.pier_ok(&["run", "--name", "done", "busybox", "true"]);
    d.pier_ok(&[
        "create",
        "--name",
        "fresh",
        "example.com/tools/busybox:1.36",
        "echo",
        "hi",
    ]);

    let mut out = String::new();
    for args in [
        &[
            "ps",
            "--format",
            "table {{.Names}}\\t{{.Image}}\\t{{.Command}}\\t{{.State}}\\t{{.Ports}}",
        ][..],
        &[
            "ps",
            "-a",
            "--format",
            "table {{.Names}}\\t{{.Image}}\\t{{.Command}}\\t{{.State}}\\t{{.Label \"tier\"}}",
        ],
        &[
            "ps",
            "-a",
            "--filter",
            "status=created",
            "--format",
            "{{.Names}} {{.Status}}",
        ],
        &["ps", "-a", "-n", "1", "--format", "{{.Names}}"],
        &[
            "images",
            "--format",
            "table {{.Repository}}\\t{{.Tag}}\\t{{.Size}}",
        ],
        &[
            "images",
            "example.com/tools/busybox",
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ],
        &[
            "inspect",
            "-f",
            "{{.Name}} {{.State.Status}} {{.Config.Cmd}} {{.HostConfig.PortBindings}}",
            "web",
        ],
        &[
            "inspect",
            "-f",
            "{{json .Config.Labels}} {{.State.ExitCode}}",
            "web",
            "done",
        ],
        &[
            "inspect",
            "--type",
            "image",
            "-f",
            "{{.RepoTags}}",
            "busybox",
        ],
    ] {
        out.push_str(&run(&d, args));
    }
    assert_snapshot!(out);
    d.pier_ok(&["rm", "-f", "web", "done", "fresh"]);
    d.assert_clean();
}

#[test]
fn error_messages_and_exit_codes() {
    let d = TestDaemon::with_busybox();
    let mut out = String::new();
    for args in [
        &["rm", "nothere"][..],
        &["inspect", "nothere"],
        &["inspect", "--type", "volume", "nothere"],
        &["start", "nothere"],
        &["ps", "--no-such-flag"],
        &["ps", "--format", "{{.Nope}}"],
        &["rm"],
        &["nosuchverb"],
        &["run", "--rm", "busybox", "/no/such/binary"],
        &["images", "ls"],
        &["swarm", "init"],
    ] {
        out.push_str(&run(&d, args));
    }
    assert_snapshot!(out);
    d.assert_clean();
}

#[test]
fn daemon_not_running() {
    let o = std::process::Command::new(pier_tests::pier_bin())
        .args(["-H", "unix:///nonexistent/pier-cli-output.sock", "ps"])
        .output()
        .unwrap();
    assert_snapshot!(format!("{}[exit {}]", o.err(), o.code()));
}

#[test]
fn system_df_counts_volumes_and_the_build_cache() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&["volume", "create", "used"]);
    d.pier_ok(&["volume", "create", "idle"]);
    d.pier_ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "used:/data",
        "busybox",
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /data/blob",
    ]);
    let dir = d.root.join("df-context");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nRUN head -c 200000 /dev/zero > /cached\n",
    )
    .unwrap();
    d.pier_ok(&["build", "-q", "-t", "cached", dir.to_str().unwrap()]);
    d.pier_ok(&["rmi", "cached"]);

    let v = d.http("GET", "/v1.47/system/df", None, b"").json();
    let vol = |name: &str| {
        v["Volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["Name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing: {v}"))
    };
    assert_eq!(vol("used")["UsageData"]["RefCount"], 1, "{v}");
    assert_eq!(vol("used")["UsageData"]["Size"], 300_000, "{v}");
    assert_eq!(vol("idle")["UsageData"]["RefCount"], 0, "{v}");
    let cache = v["BuildCache"].as_array().unwrap();
    assert!(
        cache
            .iter()
            .any(|c| c["Shared"] == false && c["Size"].as_u64().unwrap() > 0),
        "the RUN step's layer, no image's any more: {v}"
    );

    let summary = d.pier_ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert_snapshot!(summary);
    let verbose = d.pier_ok(&[
        "system",
        "df",
        "-v",
        "--format",
        "{{range .Volumes}}{{.Name}} {{.Links}} {{.Size}}\n{{end}}",
    ]);
    assert_snapshot!(verbose);
    d.pier_ok(&["rm", "writer"]);
    d.pier_ok(&["builder", "prune", "-f"]);
    d.assert_clean();
}
