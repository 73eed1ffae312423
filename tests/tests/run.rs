//! `pier run`: output, exit codes, process settings, confinement — as Docker does it.

use pier_tests::{short, OutputExt, TestDaemon};

#[test]
fn run_rm_echo_prints_hi() {
    let d = TestDaemon::with_busybox();
    assert_eq!(d.pier_ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi\n");
    // The image's CMD is used when no command is given.
    let o = d.pier(&["run", "--rm", "busybox"]);
    assert_eq!(o.code(), 0, "sh with no stdin exits 0: {}", o.describe());
    d.assert_clean();
}

#[test]
fn exit_codes_follow_docker() {
    let d = TestDaemon::with_busybox();
    let o = d.pier(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(o.code(), 3, "{}", o.describe());

    let o = d.pier(&["run", "--rm", "busybox", "/no/such/command"]);
    assert_eq!(o.code(), 127, "missing command: {}", o.describe());
    assert!(o.err().contains("/no/such/command"), "{}", o.describe());

    let o = d.pier(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(o.code(), 126, "not executable: {}", o.describe());

    // A registry on a closed loopback port: the pull fails without leaving the host.
    let o = d.pier(&[
        "run",
        "--rm",
        "127.0.0.1:9/pier-no-such-image:latest",
        "true",
    ]);
    assert_eq!(o.code(), 125, "{}", o.describe());
    assert!(o.err().contains("Unable to find image"), "{}", o.describe());
    d.assert_clean();
}

#[test]
fn env_workdir_user_are_honoured() {
    let d = TestDaemon::with_busybox();
    let script = r#"echo "$FOO|$EMPTY|$(pwd)|$(id -u):$(id -g)|$HOME""#;
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "-e",
        "EMPTY=",
        "-w",
        "/work/dir",
        "-u",
        "app",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out, "bar||/work/dir|1000:1000|/home/app\n");

    let out = d.pier_ok(&[
        "run",
        "--rm",
        "-u",
        "1000:0",
        "busybox",
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    assert_eq!(out, "1000\n0\n");

    let out = d.pier_ok(&["run", "--rm", "busybox", "env"]);
    for want in [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME=/root",
        "HOSTNAME=",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(want)),
            "{want} not in env:\n{out}"
        );
    }
    // An unknown user name is an error, not root.
    let o = d.pier(&["run", "--rm", "-u", "nosuchuser", "busybox", "true"]);
    assert_ne!(o.code(), 0, "{}", o.describe());
    d.assert_clean();
}

#[test]
fn read_only_root() {
    let d = TestDaemon::with_busybox();
    let o = d.pier(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert_ne!(o.code(), 0, "{}", o.describe());
    assert!(
        o.err().contains("Read-only file system"),
        "{}",
        o.describe()
    );
    let mounts = d.pier_ok(&[
        "run",
        "--rm",
        "--read-only",
        "busybox",
        "cat",
        "/proc/mounts",
    ]);
    let root = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some("/"))
        .unwrap_or_else(|| panic!("no / in {mounts}"));
    assert!(
        root.split(' ')
            .nth(3)
            .unwrap_or("")
            .split(',')
            .any(|o| o == "ro"),
        "{root}"
    );
    // Without the flag the root is writable.
    d.pier_ok(&["run", "--rm", "busybox", "touch", "/x"]);
    d.assert_clean();
}

fn cap_lines(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn default_capabilities_match_docker() {
    let d = TestDaemon::with_busybox();
    const DOCKER_DEFAULT: &str = "00000000a80425fb";
    const NONE: &str = "0000000000000000";
    let caps =
        cap_lines(&d.pier_ok(&["run", "--rm", "busybox", "grep", "Cap", "/proc/self/status"]));
    let want = [
        ("CapInh", NONE),
        ("CapPrm", DOCKER_DEFAULT),
        ("CapEff", DOCKER_DEFAULT),
        ("CapBnd", DOCKER_DEFAULT),
        ("CapAmb", NONE),
    ];
    for (k, v) in want {
        assert!(
            caps.contains(&(k.into(), v.into())),
            "{k} should be {v}: {caps:?}"
        );
    }
    // A non-root user keeps the bounding set but has no effective capabilities.
    let caps = cap_lines(&d.pier_ok(&[
        "run",
        "--rm",
        "-u",
        "1000",
        "busybox",
        "grep",
        "Cap",
        "/proc/self/status",
    ]));
    assert!(caps.contains(&("CapEff".into(), NONE.into())), "{caps:?}");
    assert!(
        caps.contains(&("CapBnd".into(), DOCKER_DEFAULT.into())),
        "{caps:?}"
    );
    d.assert_clean();
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim_start_matches(':').trim().to_string())
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

/// The profile is compiled once and loaded by Pier's own executor (see
/// pier-shim's filter.rs): it must bind runs and execs alike, and leave the
/// capabilities exactly as without it.
#[test]
fn seccomp_filter_is_on_by_default() {
    let d = TestDaemon::with_busybox();
    let status = d.pier_ok(&["run", "--rm", "busybox", "cat", "/proc/self/status"]);
    assert_eq!(status_field(&status, "Seccomp"), "2", "{status}");
    assert_eq!(status_field(&status, "NoNewPrivs"), "0", "{status}");
    // Docker's profile refuses unshare without CAP_SYS_ADMIN, allows it with.
    let o = d.pier(&["run", "--rm", "busybox", "unshare", "-m", "true"]);
    assert_eq!(o.code(), 1, "{}", o.describe());
    assert!(
        o.err().contains("Operation not permitted"),
        "{}",
        o.describe()
    );
    d.pier_ok(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        "busybox",
        "unshare",
        "-m",
        "true",
    ]);
    // A dropped CAP_SETPCAP stays dropped although the loader needed it.
    let status = d.pier_ok(&[
        "run",
        "--rm",
        "--cap-drop",
        "SETPCAP",
        "busybox",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(status_field(&status, "CapBnd"), "00000000a80424fb");
    assert_eq!(status_field(&status, "CapEff"), "00000000a80424fb");

    // Execs get the same filter and the process's own capabilities.
    d.pier_ok(&["run", "-d", "--name", "sc", "busybox", "sleep", "60"]);
    let status = d.pier_ok(&["exec", "-u", "1000", "sc", "cat", "/proc/self/status"]);
    assert_eq!(status_field(&status, "Seccomp"), "2", "{status}");
    assert_eq!(status_field(&status, "CapEff"), "0000000000000000");
    assert_eq!(status_field(&status, "CapBnd"), "00000000a80425fb");
    let o = d.pier(&["exec", "sc", "unshare", "-m", "true"]);
    assert_eq!(o.code(), 1, "{}", o.describe());
    d.pier_ok(&["rm", "-f", "sc"]);

    let status = d.pier_ok(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(status_field(&status, "Seccomp"), "0", "{status}");
    // Privileged: no filter, and every capability the daemon itself holds.
    let own = status_field(
        &std::fs::read_to_string("/proc/self/status").unwrap(),
        "CapBnd",
    );
    let status = d.pier_ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(status_field(&status, "Seccomp"), "0", "{status}");
    assert_eq!(status_field(&status, "CapEff"), own, "{status}");
    d.assert_clean();
}

#[test]
fn namespaces_isolate_the_container() {
    let d = TestDaemon::with_busybox();
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo $$; ls /proc | grep -E '^[0-9]+$' | sort -n | tail -1; cat /proc/net/dev",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1"), "the command is pid 1:\n{out}");
    let max_pid: u32 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(u32::MAX);
    assert!(
        max_pid < 50,
        "fresh pid namespace expected, saw pid {max_pid}:\n{out}"
    );
    let ifaces: Vec<&str> = lines
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim()))
        .filter(|n| !n.contains('|') && !n.is_empty())
        .collect();
    assert_eq!(ifaces, ["lo"], "only loopback with --network none:\n{out}");

    // The hostname is the short container id, also in /etc/hostname.
    let id = d.pier_ok(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /etc/hostname",
    ]);
    let id = id.trim().to_string();
    assert_eq!(d.pier_ok(&["wait", &id]).trim(), "0");
    let logs = d.pier_ok(&["logs", &id]);
    assert_eq!(logs, format!("{0}\n{0}\n", short(&id)));
    d.pier_ok(&["rm", &id]);
    d.assert_clean();
}

#[test]
fn etc_files_are_provided() {
    let d = TestDaemon::with_busybox();
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "--hostname",
        "box1",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hostname; grep -E '^127\\.0\\.0\\.1[[:space:]]+localhost' /etc/hosts; \
         test -f /etc/resolv.conf && echo resolv-ok",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"box1"), "{out}");
    assert!(lines.iter().any(|l| l.starts_with("127.0.0.1")), "{out}");
    assert!(lines.contains(&"resolv-ok"), "{out}");
    // Writing /etc/hosts in one container must not change the next one's.
    d.pier_ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo 10.9.9.9 marker >> /etc/hosts",
    ]);
    let hosts = d.pier_ok(&["run", "--rm", "busybox", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("marker"), "{hosts}");
    d.assert_clean();
}

#[test]
fn loopback_is_up_in_every_container() {
    let d = TestDaemon::with_busybox();
    // A server and a client on the container's own loopback (busybox httpd forks
    // into the background without -f).
    let script =
        "httpd -p 127.0.0.1:8080 -h /etc && wget -qO- http://127.0.0.1:8080/group | head -1";
    for net in [&["--network", "none"][..], &[][..]] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(net);
        args.extend_from_slice(&["busybox", "sh", "-c", script]);
        let o = d.pier(&args);
        assert_eq!(
            (o.code(), o.out().as_str()),
            (0, "root:x:0:\n"),
            "{net:?}: {}",
            o.describe()
        );
    }
    d.assert_clean();
}
