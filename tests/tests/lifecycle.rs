//! Detached containers: ps, logs, stop, wait, rm, exec.

use std::time::{Duration, Instant};

use pier_tests::{short, wait_until, OutputExt, TestDaemon};

fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

#[test]
fn detached_ps_logs_stop_rm() {
    let d = TestDaemon::with_busybox();
    let id = d.pier_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]);
    let id = id.trim().to_string();
    assert!(is_full_id(&id), "run -d prints the full id, got {id:?}");

    let ps = d.pier_ok(&["ps"]);
    let row = ps
        .lines()
        .find(|l| l.starts_with(short(&id)))
        .unwrap_or_else(|| panic!("{} not in ps:\n{ps}", short(&id)));
    assert!(
        row.contains("Up") && row.ends_with("web") && row.contains("busybox"),
        "{row}"
    );
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    assert_eq!(d.pier_ok(&["ps", "-q"]).trim(), short(&id));
    assert_eq!(d.pier_ok(&["ps", "-q", "--no-trunc"]).trim(), id);

    assert!(
        wait_until(Duration::from_secs(5), || d.pier_ok(&["logs", "web"])
            == "started\n"),
        "logs: {:?}",
        d.pier(&["logs", "web"]).describe()
    );
    let v = d.inspect("web");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["Name"], "/web");
    assert_eq!(v["State"]["Running"], true);

    // A running container cannot be removed without -f.
    let o = d.pier(&["rm", "web"]);
    assert_ne!(o.code(), 0, "{}", o.describe());

    // sleep as pid 1 ignores SIGTERM: stop kills it after the timeout.
    let t = Instant::now();
    assert_eq!(d.pier_ok(&["stop", "-t", "2", "web"]).trim(), "web");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "{took:?}"
    );
    let v = d.inspect(&id);
    assert_eq!(v["State"]["Running"], false);
    assert_eq!(v["State"]["ExitCode"], 137);
    assert!(!d.pier_ok(&["ps"]).contains(short(&id)));
    let all = d.pier_ok(&["ps", "-a"]);
    assert!(
        all.lines()
            .any(|l| l.starts_with(short(&id)) && l.contains("Exited (137)")),
        "{all}"
    );

    // A process that handles SIGTERM stops at once, with its own exit code.
    let id2 = d.pier_ok(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done",
    ]);
    let id2 = id2.trim().to_string();
    assert!(wait_until(Duration::from_secs(5), || d
        .pier_ok(&["logs", &id2])
        .contains("ready")));
    let t = Instant::now();
    d.pier_ok(&["stop", "-t", "30", &id2]);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(d.inspect(&id2)["State"]["ExitCode"], 0);

    assert_eq!(d.pier_ok(&["rm", "web"]).trim(), "web");
    d.pier_ok(&["rm", &id2]);
    assert!(d.pier_ok(&["ps", "-aq"]).trim().is_empty());
    let o = d.pier(&["logs", "web"]);
    assert_ne!(o.code(), 0, "logs of a removed container: {}", o.describe());
    d.assert_clean();
}

#[test]
fn wait_and_start_and_rm_force() {
    let d = TestDaemon::with_busybox();
    let id = d.pier_ok(&["run", "-d", "busybox", "sh", "-c", "echo once; exit 5"]);
    let id = id.trim().to_string();
    assert_eq!(d.pier_ok(&["wait", &id]).trim(), "5");
    // Restarting an exited container runs it again and appends to its log.
    d.pier_ok(&["start", &id]);
    assert_eq!(d.pier_ok(&["wait", &id]).trim(), "5");
    assert_eq!(d.pier_ok(&["logs", &id]), "once\nonce\n");

    // Death by signal reads as 128 + the signal number.
    let k = d.pier_ok(&["run", "-d", "busybox", "sleep", "1000"]);
    let k = k.trim().to_string();
    d.pier_ok(&["kill", &k]);
    assert_eq!(d.pier_ok(&["wait", &k]).trim(), "137");
    d.pier_ok(&["rm", &k]);

    let run = d.pier_ok(&["run", "-d", "busybox", "sleep", "1000"]);
    let run = run.trim().to_string();
    let pid = d.container_pid(&run);
    d.pier_ok(&["rm", "-f", &run]);
    assert!(wait_until(Duration::from_secs(5), || !pier_tests::alive(
        pid
    )));
    d.pier_ok(&["rm", &id]);
    d.assert_clean();
}

/// `ps` and `volume ls` filters as Docker applies them: label values add up
/// (Compose finds a service's containers by project and service labels
/// together), other keys' values are alternatives.
#[test]
fn list_filters_like_docker() {
    let d = TestDaemon::with_busybox();
    let run = |args: &[&str]| d.pier_ok(args).trim().to_string();
    run(&[
        "run", "-d", "--name", "f1", "-l", "a=1", "-l", "b=2", "busybox", "sleep", "1000",
    ]);
    run(&[
        "run", "-d", "--name", "f2", "-l", "a=1", "-l", "b=3", "busybox", "sleep", "1000",
    ]);
    run(&["create", "--name", "f3", "-l", "a=1", "busybox", "true"]);
    let names =
        |args: &[&str]| d.pier_sorted(&[&["ps", "-a", "--format", "{{.Names}}"], args].concat());
    assert_eq!(
        names(&["--filter", "label=a=1", "--filter", "label=b=2"]),
        "f1"
    );
    assert_eq!(names(&["--filter", "label=a=1"]), "f1,f2,f3");
    assert_eq!(
        names(&["--filter", "label=a=1", "--filter", "label=b"]),
        "f1,f2"
    );
    assert_eq!(
        names(&["--filter", "name=f2", "--filter", "name=f3"]),
        "f2,f3"
    );
    assert_eq!(names(&["--filter", "status=created"]), "f3");
    assert_eq!(
        names(&["--filter", "label=a=1", "--filter", "status=running"]),
        "f1,f2"
    );

    // f2 was created after f1 and before f3.
    assert_eq!(names(&["--filter", "since=f1"]), "f2,f3");
    assert_eq!(
        names(&["--filter", "before=f3", "--filter", "since=f1"]),
        "f2"
    );
    assert_eq!(
        names(&["--filter", "health=none", "--filter", "label=b=3"]),
        "f2"
    );
    // Docker's CLI exits 1 on a daemon error outside run/create.
    let o = d.pier(&["ps", "--filter", "colour=blue"]);
    assert_eq!(o.code(), 1, "{}", o.describe());
    assert!(
        o.err().contains("Invalid filter 'colour'"),
        "{}",
        o.describe()
    );
    for cmd in [
        &["volume", "ls"][..],
        &["network", "ls"],
        &["container", "prune", "-f"],
    ] {
        let o = d.pier(&[cmd, &["--filter", "colour=blue"]].concat());
        assert!(
            o.code() == 1 && o.err().contains("Invalid filter 'colour'"),
            "{cmd:?}: {}",
            o.describe()
        );
    }
    let o = d.pier(&["ps", "--filter", "status=asleep"]);
    assert!(
        o.err().contains("Invalid filter 'status=asleep'"),
        "{}",
        o.describe()
    );

    // Attachments: network, published and exposed ports, volumes.
    run(&["network", "create", "fnet"]);
    run(&[
        "run",
        "-d",
        "--name",
        "f4",
        "--network",
        "fnet",
        "-p",
        "127.0.0.1::8080",
        "--expose",
        "9000/udp",
        "-v",
        "fdata:/data",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(names(&["--filter", "network=fnet"]), "f4");
    assert_eq!(names(&["--filter", "publish=8080"]), "f4");
    assert_eq!(names(&["--filter", "publish=9000/udp"]), "");
    assert_eq!(names(&["--filter", "expose=9000/udp"]), "f4");
    assert_eq!(names(&["--filter", "expose=8000-8100"]), "f4");
    assert_eq!(names(&["--filter", "volume=fdata"]), "f4");
    assert_eq!(names(&["--filter", "volume=/data"]), "f4");
    run(&["rm", "-f", "-v", "f4"]);
    run(&["volume", "rm", "fdata"]);
    run(&["network", "rm", "fnet"]);

    run(&[
        "volume", "create", "--label", "a=1", "--label", "b=2", "fv1",
    ]);
    run(&["volume", "create", "--label", "a=1", "fv2"]);
    let vols = |args: &[&str]| d.pier_sorted(&[&["volume", "ls", "-q"], args].concat());
    assert_eq!(
        vols(&["--filter", "label=a=1", "--filter", "label=b=2"]),
        "fv1"
    );
    assert_eq!(vols(&["--filter", "label=a=1"]), "fv1,fv2");

    run(&["rm", "-f", "f1", "f2", "f3"]);
    run(&["volume", "rm", "fv1", "fv2"]);
    d.assert_clean();
}

/// Clients start a quick command and read its logs at once (docker-py's build
/// tests do); Docker's answer holds the output, and so must ours.
#[test]
fn logs_right_after_start_hold_a_quick_commands_output() {
    let d = TestDaemon::with_busybox();
    for i in 0..5 {
        let body = format!(r#"{{"Image":"busybox","Cmd":["echo","quick{i}"]}}"#);
        let r = d.http(
            "POST",
            "/v1.43/containers/create",
            Some("application/json"),
            body.as_bytes(),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["Id"].as_str().unwrap().to_string();
        let r = d.http("POST", &format!("/v1.43/containers/{id}/start"), None, b"");
        assert_eq!(r.status, 204, "{}", r.text());
        let r = d.http(
            "GET",
            &format!("/v1.43/containers/{id}/logs?stdout=1"),
            None,
            b"",
        );
        assert!(
            r.text().contains(&format!("quick{i}")),
            "run {i}: {:?}",
            r.text()
        );
        d.pier_ok(&["rm", "-f", &id]);
    }
    d.assert_clean();
}

#[test]
fn exec_output_exit_code_and_settings() {
    let d = TestDaemon::with_busybox();
    let id = d.pier_ok(&["run", "-d", "busybox", "sleep", "1000"]);
    let id = id.trim().to_string();

    let o = d.pier(&["exec", &id, "sh", "-c", "echo out; echo err >&2; exit 4"]);
    assert_eq!(o.code(), 4, "{}", o.describe());
    assert_eq!(o.out(), "out\n");
    assert_eq!(o.err(), "err\n");

    let out = d.pier_ok(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "-u",
        "app",
        &id,
        "sh",
        "-c",
        "echo $X $(pwd) $(id -u)",
    ]);
    assert_eq!(out, "1 /tmp 1000\n");

    // exec joins the container's namespaces: it sees pid 1 as the container's sleep.
    assert_eq!(d.pier_ok(&["exec", &id, "cat", "/proc/1/comm"]), "sleep\n");
    // Input reaches an exec started with -i.
    let o = d.pier_input(
        &["exec", "-i", &id, "cat"],
        pier_tests::Input::Bytes(b"piped\n"),
    );
    assert_eq!(o.out(), "piped\n", "{}", o.describe());

    d.pier_ok(&["stop", "-t", "0", &id]);
    let o = d.pier(&["exec", &id, "true"]);
    assert_ne!(o.code(), 0, "{}", o.describe());
    assert!(o.err().contains("is not running"), "{}", o.describe());
    d.pier_ok(&["rm", &id]);
    d.assert_clean();
}

#[test]
fn legacy_links_and_the_old_mac_address() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&[
        "run", "-d", "--name", "db", "-e", "FOO=1", "--expose", "80", "busybox", "sleep", "60",
    ]);
    // The parent sees the child under its alias: variables and /etc/hosts.
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "--name",
        "app",
        "--link",
        "db:my-db",
        "busybox",
        "sh",
        "-c",
        "echo $MY_DB_NAME $MY_DB_ENV_FOO $MY_DB_PORT_80_TCP_PORT; grep -c 'my-db .* db$' /etc/hosts",
    ]);
    assert_eq!(out, "/app/my-db 1 80\n1\n");

    // Inspect and ps show the link as Docker does; rm --link drops it.
    d.pier_ok(&[
        "create", "--name", "web", "--link", "db:dbx", "busybox", "true",
    ]);
    let links = |d: &TestDaemon| d.inspect("web")["HostConfig"]["Links"].clone();
    assert_eq!(links(&d), serde_json::json!(["/db:/web/dbx"]));
    let names = d.pier_ok(&["ps", "--no-trunc", "--format", "{{.Names}}"]);
    assert!(names.lines().any(|l| l == "db,web/dbx"), "{names}");
    d.pier_ok(&["rm", "--link", "web/dbx"]);
    assert!(links(&d).is_null());
    d.pier_ok(&["rm", "web"]);

    // API < 1.44 sends MacAddress at the top level of the create body.
    let body = br#"{"Image":"busybox","Cmd":["sleep","60"],"MacAddress":"02:42:ac:11:00:0a"}"#;
    let r = d.http(
        "POST",
        "/v1.41/containers/create",
        Some("application/json"),
        body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap_or_default().to_string();
    d.pier_ok(&["start", &id]);
    let c = d.inspect(&id);
    assert_eq!(c["NetworkSettings"]["MacAddress"], "02:42:ac:11:00:0a");
    assert_eq!(c["Config"]["MacAddress"], "02:42:ac:11:00:0a");
    d.pier_ok(&["rm", "-f", &id, "db"]);
    d.assert_clean();
}

#[test]
fn health_checks_run_while_the_container_runs() {
    let d = TestDaemon::with_busybox();
    let run = |name: &str, cmd: &str| {
        d.pier_ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--health-cmd",
            cmd,
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            "busybox",
            "sleep",
            "60",
        ]);
    };
    run("good", "echo fine");
    run("bad", "exit 3");
    let status = |n: &str| d.inspect(n)["State"]["Health"]["Status"].clone();
    assert_eq!(status("good"), "starting");
    assert!(
        wait_until(Duration::from_secs(10), || status("good") == "healthy"
            && status("bad") == "unhealthy"),
        "good {} bad {}",
        status("good"),
        status("bad")
    );
    let h = d.inspect("good")["State"]["Health"].clone();
    assert_eq!(h["Log"][0]["Output"], "fine\n", "{h}");
    assert_eq!(d.inspect("bad")["State"]["Health"]["Log"][0]["ExitCode"], 3);
    let ps = d.pier_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with("good Up") && l.ends_with("(healthy)")),
        "{ps}"
    );
    d.pier_ok(&["rm", "-f", "good", "bad"]);
    d.assert_clean();
}

/// Prune endpoints honour `until`, `label` and `label!` like Docker's.
#[test]
fn prune_filters_like_docker() {
    let d = TestDaemon::with_busybox();
    for (name, labels) in [
        ("p1", &["p=1"][..]),
        ("p2", &["p=1", "keep"][..]),
        ("p3", &[][..]),
    ] {
        let mut args = vec!["create", "--name", name];
        for l in labels {
            args.extend(["-l", l]);
        }
        args.extend(["busybox", "true"]);
        d.pier_ok(&args);
    }
    let names = || d.pier_sorted(&["ps", "-a", "--format", "{{.Names}}"]);
    // Made just now: nothing is older than an hour.
    d.pier_ok(&["container", "prune", "-f", "--filter", "until=1h"]);
    assert_eq!(names(), "p1,p2,p3");
    d.pier_ok(&[
        "container",
        "prune",
        "-f",
        "--filter",
        "label=p=1",
        "--filter",
        "label!=keep",
    ]);
    assert_eq!(names(), "p2,p3");
    let o = d.pier(&["container", "prune", "-f", "--filter", "until=soon"]);
    assert_ne!(o.code(), 0, "{}", o.describe());
    assert_eq!(names(), "p2,p3");
    d.pier_ok(&["container", "prune", "-f", "--filter", "label=p"]);
    assert_eq!(names(), "p3");

    d.pier_ok(&["volume", "create", "--label", "tmp=1", "pv1"]);
    d.pier_ok(&["volume", "create", "pv2"]);
    d.pier_ok(&["volume", "prune", "-f", "-a", "--filter", "label=tmp=1"]);
    assert_eq!(d.pier_ok(&["volume", "ls", "-q"]).trim(), "pv2");
    d.pier_ok(&["rm", "p3"]);
    d.pier_ok(&["volume", "rm", "pv2"]);
    d.assert_clean();
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `pier events` from `since` until a moment from now, one line per event.
fn events_since(d: &TestDaemon, since: f64, args: &[&str]) -> Vec<String> {
    let (since, until) = (format!("{since:.3}"), format!("{:.3}", unix_now() + 0.3));
    let w = [
        "events",
        "--since",
        since.as_str(),
        "--until",
        until.as_str(),
    ];
    d.pier_ok(&[&w[..], args].concat())
        .lines()
        .map(str::to_string)
        .collect()
}

/// `/events` replays a container's life in Docker's order (as Docker 20.10
/// prints it on this machine), network endpoints included, and label filters
/// add up.
#[test]
fn events_tell_a_containers_life() {
    let d = TestDaemon::with_busybox();
    // Not the busybox import the harness made just before.
    let fmt = [
        "--filter",
        "type=container",
        "--filter",
        "type=network",
        "--format",
        "{{.Type}} {{.Action}}",
    ];

    let t0 = unix_now() - 0.5;
    d.pier_ok(&["run", "--rm", "-l", "ev=1", "-l", "k=x", "busybox", "true"]);
    assert_eq!(
        events_since(&d, t0, &fmt),
        [
            "container create",
            "container attach",
            "network connect",
            "container start",
            "container die",
            "network disconnect",
            "container destroy",
        ],
    );

    // A stop that has to kill: SIGTERM, then SIGKILL when the timeout is up.
    let t1 = unix_now() - 0.1;
    d.pier_ok(&[
        "run", "-d", "--name", "ev2", "-l", "ev=1", "busybox", "sleep", "100",
    ]);
    d.pier_ok(&["stop", "-t", "1", "ev2"]);
    d.pier_ok(&["rm", "ev2"]);
    assert_eq!(
        events_since(&d, t1, &fmt),
        [
            "container create",
            "network connect",
            "container start",
            "container kill",
            "container kill",
            "container die",
            "network disconnect",
            "container stop",
            "container destroy",
        ],
    );

    // Both labels: only the first container's events.
    let both = [
        "--filter",
        "label=ev=1",
        "--filter",
        "label=k=x",
        "--filter",
        "event=destroy",
        "--format",
        "{{.Action}}",
    ];
    assert_eq!(events_since(&d, t0, &both), ["destroy"]);
    d.assert_clean();
}

/// A removed container's layer directory may go back to the spare pool (when
/// the container changed nothing); nothing of any container reaches the next.
#[test]
fn nothing_of_a_removed_container_reaches_the_next() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&["run", "--rm", "busybox", "chmod", "700", "/"]);
    d.pier_ok(&["run", "--rm", "busybox", "touch", "/left"]);
    d.pier_ok(&["run", "--rm", "busybox", "true"]);
    for _ in 0..6 {
        let out = d.pier_ok(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "stat -c %a /; ls /left 2>&1; true",
        ]);
        assert!(
            out.starts_with("755\n") && out.contains("No such file"),
            "{out}"
        );
    }
    d.assert_clean();
}

/// A created container gets its shim, namespace and root ahead of start
/// (prestart.rs); `cp` into it at once, start and removal all see one root,
/// and removing a container that never started leaves nothing behind.
#[test]
fn work_begun_at_create_is_taken_over_or_undone() {
    let d = TestDaemon::with_busybox();
    let id = d.pier_ok(&["create", "busybox", "cat", "/hello"]);
    let id = id.trim().to_string();
    let file = d.root.join("hello");
    std::fs::write(&file, "from cp\n").unwrap();
    d.pier_ok(&["cp", file.to_str().unwrap(), &format!("{id}:/hello")]);
    d.pier_ok(&["start", &id]);
    assert_eq!(d.pier_ok(&["wait", &id]).trim(), "0");
    assert_eq!(d.pier_ok(&["logs", &id]), "from cp\n");
    d.pier_ok(&["rm", &id]);

    // Created and removed without a start: the waiting shim, the namespace
    // and the mounted root all go.
    let never = d.pier_ok(&["create", "busybox", "true"]);
    let never = never.trim().to_string();
    assert!(wait_until(Duration::from_secs(5), || !d
        .leftover_procs()
        .is_empty()
        && d.roots()
            .iter()
            .any(|r| !pier_tests::cleanup::mounts_under(r).is_empty())));
    d.pier_ok(&["rm", &never]);
    d.assert_clean();
}

/// A daemon that stops gracefully undoes the work it began for created
/// containers; after a restart they start as usual.
#[test]
fn a_stopping_daemon_undoes_work_begun_at_create() {
    let mut d = TestDaemon::serial_with_busybox();
    let id = d.pier_ok(&["create", "busybox", "echo", "later"]);
    let id = id.trim().to_string();
    let mounted = |d: &TestDaemon| {
        d.roots()
            .iter()
            .any(|r| !pier_tests::cleanup::mounts_under(r).is_empty())
    };
    assert!(wait_until(Duration::from_secs(5), || mounted(&d)));
    d.stop();
    assert!(!mounted(&d), "a root stays mounted after a graceful stop");
    assert!(
        wait_until(Duration::from_secs(5), || d.leftover_procs().is_empty()),
        "a waiting shim outlives the daemon: {:?}",
        d.leftover_procs()
    );
    d.restart();
    d.pier_ok(&["start", &id]);
    assert_eq!(d.pier_ok(&["wait", &id]).trim(), "0");
    assert_eq!(d.pier_ok(&["logs", &id]), "later\n");
    d.pier_ok(&["rm", &id]);
    d.assert_clean();
}
