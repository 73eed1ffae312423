//! More of `pier compose` against a real daemon: `create`, `top`, `port`,
//! `images`, `events --json`, `cp`, `wait`, `push`, `watch`'s refusal; `up`
//! with `--abort-on-container-exit`, `--exit-code-from`, `--attach`,
//! `--no-attach`; `run -p/-v/--name/--entrypoint/-e`; `exec --index`; and
//! `down -p NAME` with no compose file.

mod compose_util;

use compose_util::*;
use pier_tests::registry::Registry;
use pier_tests::{wait_until, OutputExt, TestDaemon};
use std::io::BufRead;
use std::process::Stdio;
use std::time::Duration;

const SLEEPER: &str = "services:\n  web:\n    image: busybox\n    command: [sh, -c, 'echo $$HOSTNAME > /id; exec httpd -f -p 80']\n    ports: ['127.0.0.1:18470:80']\n    stop_grace_period: 1s\n  worker:\n    image: busybox\n    command: [sleep, '1000']\n    scale: 2\n    stop_grace_period: 1s\n";

#[test]
fn create_top_port_images_cp_exec_index_and_wait() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new("mc", &[("compose.yaml", SLEEPER)]);

    // `create` makes the containers and starts none.
    let o = compose_ok(&d, &dir, &["create"]);
    assert!(
        stderr(&o).contains(" Container mc-web-1  Created"),
        "{}",
        stderr(&o)
    );
    assert_eq!(names(&d), "mc-web-1,mc-worker-1,mc-worker-2");
    assert_eq!(d.inspect("mc-web-1")["State"]["Status"], "created");
    compose_ok(&d, &dir, &["start"]);

    // `top`: one table, SERVICE and # first, CMD last.
    let top = compose_ok(&d, &dir, &["top"]).out();
    let mut lines = top.lines();
    let head = lines.next().unwrap();
    assert!(head.starts_with("SERVICE  #   UID"), "{top}");
    assert!(head.ends_with("CMD"), "{top}");
    let rows: Vec<&str> = lines.collect();
    assert!(
        rows.iter()
            .any(|r| r.starts_with("web      1   ") && r.ends_with("httpd -f -p 80")),
        "{top}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("worker   2   ") && r.ends_with("sleep 1000")),
        "{top}"
    );
    let only = compose_ok(&d, &dir, &["top", "worker"]).out();
    assert_eq!(only.lines().count(), 3, "{only}");

    // `port`: the binding of a private port; a missing one names what there is.
    assert_eq!(
        compose_ok(&d, &dir, &["port", "web", "80"]).out(),
        "127.0.0.1:18470\n"
    );
    let o = compose(&d, &dir, &["port", "web", "81"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "no port 81/tcp for container mc-web-1: 80/tcp\n"
    );
    let o = compose(&d, &dir, &["port", "--protocol", "udp", "web", "80"]);
    assert_eq!(o.status.code(), Some(1));

    // `images`: each container's image.
    let id = d.inspect("busybox")["Id"].as_str().unwrap().to_string();
    let short = &id["sha256:".len().."sha256:".len() + 12];
    let images = compose_ok(&d, &dir, &["images"]).out();
    let mut lines = images.lines();
    let head = lines.next().unwrap();
    assert!(
        head.starts_with(
            "CONTAINER           REPOSITORY          TAG                 PLATFORM            IMAGE ID            SIZE"
        ),
        "{images}"
    );
    let web = lines.next().unwrap();
    assert!(
        web.starts_with("mc-web-1            busybox             latest              linux/"),
        "{images}"
    );
    assert!(web.contains(short), "{images}");
    assert_eq!(lines.count(), 2, "{images}");
    assert_eq!(
        compose_ok(&d, &dir, &["images", "-q"]).out(),
        format!("{}\n", &id[7..])
    );
    let j: serde_json::Value =
        serde_json::from_str(&compose_ok(&d, &dir, &["images", "--format", "json"]).out()).unwrap();
    assert_eq!(j.as_array().unwrap().len(), 3);
    assert_eq!(j[0]["ContainerName"], "mc-web-1");
    assert_eq!(j[0]["ID"], id.as_str());

    // `cp` out of a service (replica 1) and into every replica.
    let host = dir.path().join("id.txt");
    compose_ok(&d, &dir, &["cp", "web:/id", host.to_str().unwrap()]);
    let hostname = d.inspect("mc-web-1")["Config"]["Hostname"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        std::fs::read_to_string(&host).unwrap(),
        format!("{hostname}\n")
    );
    dir.write("note.txt", "hello\n");
    compose_ok(&d, &dir, &["cp", "./note.txt", "worker:/note.txt"]);
    for c in ["mc-worker-1", "mc-worker-2"] {
        assert_eq!(d.pier_ok(&["exec", c, "cat", "/note.txt"]), "hello\n");
    }
    let o = compose(&d, &dir, &["cp", "--index", "3", "worker:/note.txt", "-"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "service \"worker\" is not running container #3\n"
    );

    // `exec --index` reaches the replica asked for.
    let o = compose_ok(
        &d,
        &dir,
        &["exec", "-T", "--index", "2", "worker", "hostname"],
    );
    let h2 = d.inspect("mc-worker-2")["Config"]["Hostname"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(o.out(), format!("{h2}\n"));

    // `wait` blocks until the service's containers stop; their exit code is its own.
    let mut c = d.pier_cmd();
    c.args(["compose", "wait", "web"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    d.pier_ok(&["kill", "mc-web-1"]);
    let o = child.wait_with_output().unwrap();
    let web_id = id_of(&d, "mc-web-1");
    assert_eq!(
        o.out(),
        format!("container \"{web_id}\" exited with status code 137\n"),
        "{}",
        o.describe()
    );
    assert_eq!(o.status.code(), Some(137));

    // `watch` needs develop.watch, which Pier refuses by name.
    let o = compose(&d, &dir, &["watch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("none of the selected services is configured for watch"),
        "{}",
        stderr(&o)
    );

    compose_ok(&d, &dir, &["down"]);
    d.assert_clean();
}

#[test]
fn events_stream_the_projects_container_events_as_json() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "ev",
        &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\n    command: [sleep, '1000']\n    labels: {tier: back}\n    stop_grace_period: 1s\n  other:\n    image: busybox\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n",
        )],
    );
    compose_ok(&d, &dir, &["up", "-d"]);
    let mut c = d.pier_cmd();
    c.args(["compose", "events", "--json", "app"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(l);
        }
    });
    // The stream is open once an event made after the command started shows up.
    std::thread::sleep(Duration::from_millis(700));
    compose_ok(&d, &dir, &["stop", "other"]);
    compose_ok(&d, &dir, &["stop", "app"]);
    let mut got: Vec<serde_json::Value> = Vec::new();
    let done = wait_until(Duration::from_secs(20), || {
        while let Ok(l) = rx.try_recv() {
            got.push(serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}")));
        }
        got.iter().any(|e| e["action"] == "stop")
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(done, "{got:?}");
    let app_id = id_of(&d, "ev-app-1");
    for e in &got {
        assert_eq!(e["type"], "container", "{e}");
        assert_eq!(e["service"], "app", "{e}");
        assert_eq!(e["id"], app_id.as_str(), "{e}");
        assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");
        let attrs = e["attributes"].as_object().unwrap();
        assert!(
            attrs.keys().all(|k| !k.starts_with("com.docker.compose.")),
            "{e}"
        );
    }
    let stop = got.iter().find(|e| e["action"] == "stop").unwrap();
    assert_eq!(stop["attributes"]["name"], "ev-app-1");
    assert_eq!(stop["attributes"]["tier"], "back");
    compose_ok(&d, &dir, &["down"]);
    d.assert_clean();
}

#[test]
fn up_aborts_on_exit_takes_the_exit_code_and_filters_attachments() {
    let d = TestDaemon::with_busybox();
    let file = "services:\n  quick:\n    image: busybox\n    command: [sh, -c, 'echo quick; sleep 1; exit 4']\n  slow:\n    image: busybox\n    command: [sh, -c, 'echo slow; exec sleep 1000']\n    stop_grace_period: 1s\n  quiet:\n    image: busybox\n    command: [sh, -c, 'echo quiet; exit 0']\n    attach: false\n";
    let dir = Dir::new("ab", &[("compose.yaml", file)]);

    // The first exit stops the rest; its code is `up`'s.
    let o = compose(
        &d,
        &dir,
        &["up", "--abort-on-container-exit", "quick", "slow"],
    );
    let (out, err) = (o.out(), stderr(&o));
    assert_eq!(o.status.code(), Some(4), "{}", o.describe());
    assert!(err.contains("Attaching to quick-1, slow-1"), "{err}");
    assert!(err.contains("Aborting on container exit..."), "{err}");
    assert!(err.contains(" Container ab-slow-1  Stopped"), "{err}");
    assert!(out.contains("quick-1  | quick\n"), "{out}");
    assert!(out.contains("quick-1 exited with code 4\n"), "{out}");
    assert_eq!(d.inspect("ab-slow-1")["State"]["Running"], false);

    // `--exit-code-from`: the named service's code, even when another ends first
    // (slow is stopped: `sleep` as PID 1 ignores SIGTERM, so it is killed, 137).
    let o = compose(
        &d,
        &dir,
        &["up", "--exit-code-from", "slow", "quick", "slow"],
    );
    assert_eq!(o.status.code(), Some(137), "{}", o.describe());

    // `--attach` narrows the streamed services, `--no-attach` drops one, and
    // `attach: false` in the file keeps `quiet` out.
    let o = compose(
        &d,
        &dir,
        &["up", "--abort-on-container-exit", "--attach", "slow"],
    );
    let (out, err) = (o.out(), stderr(&o));
    assert!(err.contains("Attaching to slow-1\n"), "{err}");
    assert!(out.contains("slow-1  | slow\n"), "{out}");
    assert!(!out.contains("quick-1  |"), "{out}");
    let o = compose(
        &d,
        &dir,
        &["up", "--abort-on-container-exit", "--no-attach", "slow"],
    );
    let err = stderr(&o);
    assert!(err.contains("Attaching to quick-1\n"), "{err}");
    assert!(!o.out().contains("quiet-1  |"), "{}", o.out());

    // Flags Compose refuses together, and `--watch`.
    let o = compose(&d, &dir, &["up", "-d", "--abort-on-container-exit"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("--detach cannot be combined with --abort-on-container-exit"),
        "{}",
        stderr(&o)
    );
    let o = compose(&d, &dir, &["up", "--exit-code-from", "nope"]);
    assert_eq!(stderr(&o), "no such service: nope\n");
    let o = compose(&d, &dir, &["up", "--attach", "nope"]);
    assert_eq!(
        stderr(&o),
        "cannot attach to services not included in up: nope\n"
    );
    let o = compose(&d, &dir, &["up", "--watch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("develop.watch is not supported by pier compose yet"),
        "{}",
        stderr(&o)
    );

    compose_ok(&d, &dir, &["down"]);
    d.assert_clean();
}

#[test]
fn run_flags_and_down_by_project_name_without_a_file() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "rf",
        &[
            (
                "compose.yaml",
                "services:\n  app:\n    image: busybox\n    command: [echo, default]\n    environment: [A=from-file]\n    ports: ['127.0.0.1:18471:80']\n  db:\n    image: busybox\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n    volumes: [data:/data]\nvolumes:\n  data:\n",
            ),
            ("host/msg", "from the host\n"),
        ],
    );
    compose_ok(&d, &dir, &["up", "-d", "db"]);

    // -e, -v (bind, relative to the project), --entrypoint, --name.
    let o = compose_ok(
        &d,
        &dir,
        &[
            "run",
            "--rm",
            "--no-deps",
            "-T",
            "-e",
            "B=cli",
            "-v",
            "./host:/host:ro",
            "-v",
            "data:/data",
            "--entrypoint",
            "sh -c",
            "app",
            "echo $A $B; cat /host/msg; ls /data >/dev/null && echo data",
        ],
    );
    assert_eq!(o.out(), "from-file cli\nfrom the host\ndata\n");

    // -p publishes that port alone (the service's own only with --service-ports).
    let o = compose_ok(
        &d,
        &dir,
        &[
            "run",
            "-d",
            "--name",
            "rf-probe",
            "-p",
            "127.0.0.1:18472:80",
            "app",
            "httpd",
            "-f",
            "-p",
            "80",
        ],
    );
    assert_eq!(o.out(), "rf-probe\n");
    let probe = d.inspect("rf-probe");
    assert_eq!(
        probe["Config"]["Labels"]["com.docker.compose.oneoff"],
        "True"
    );
    let b = &probe["HostConfig"]["PortBindings"];
    assert_eq!(b["80/tcp"][0]["HostPort"], "18472", "{b}");
    assert_eq!(b.as_object().unwrap().len(), 1, "{b}");
    let o = compose(
        &d,
        &dir,
        &["run", "--rm", "-T", "-v", "undeclared:/x", "app"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("refers to undefined volume undeclared"),
        "{}",
        stderr(&o)
    );

    // `down -p NAME` from elsewhere: found by its labels, one-off container and volume too.
    let elsewhere = Dir::new("empty", &[]);
    // Other commands that act on what exists work by name too.
    assert_eq!(
        compose_ok(&d, &elsewhere, &["-p", "rf", "ps", "--services"]).out(),
        "db\n"
    );
    compose_ok(&d, &elsewhere, &["-p", "rf", "stop", "db"]);
    assert_eq!(d.inspect("rf-db-1")["State"]["Running"], false);
    compose_ok(&d, &elsewhere, &["-p", "rf", "start"]);
    assert_eq!(d.inspect("rf-db-1")["State"]["Running"], true);
    let o = compose(&d, &elsewhere, &["-p", "rf", "up", "-d"]);
    assert!(
        stderr(&o).contains("no configuration file provided"),
        "{}",
        stderr(&o)
    );
    let o = compose(&d, &elsewhere, &["down", "-p", "nope"]);
    assert!(o.status.success(), "{}", o.describe());
    let o = compose(&d, &elsewhere, &["down"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no configuration file provided"),
        "{}",
        stderr(&o)
    );
    let o = compose_ok(&d, &elsewhere, &["down", "-v", "-p", "rf", "-t", "1"]);
    let err = stderr(&o);
    assert!(err.contains(" Container rf-db-1  Removed"), "{err}");
    assert!(err.contains(" Container rf-probe  Removed"), "{err}");
    assert!(err.contains(" Network rf_default  Removed"), "{err}");
    assert!(err.contains(" Volume rf_data  Removed"), "{err}");
    assert_eq!(d.pier_ok(&["ps", "-aq"]), "");
    assert_eq!(d.pier_ok(&["volume", "ls", "-q"]), "");
    d.assert_clean();
}

#[test]
fn push_sends_built_and_named_images_and_skips_the_rest() {
    let d = TestDaemon::with_busybox();
    let reg = Registry::start(&d);
    let dir = Dir::new(
        "pu",
        &[
            (
                "compose.yaml",
                "services:\n  app:\n    build: .\n    image: 127.0.0.1:5000/pu/app:1\n  plain:\n    image: busybox\n",
            ),
            ("Dockerfile", "FROM busybox\nRUN echo built > /built\n"),
        ],
    );
    compose_ok(&d, &dir, &["build"]);
    let id = id_of(&d, "127.0.0.1:5000/pu/app:1");
    let o = compose_ok(&d, &dir, &["push"]);
    let err = stderr(&o);
    assert!(err.contains(" plain Skipped"), "{err}");
    assert!(
        err.contains(" Image 127.0.0.1:5000/pu/app:1  Pushing"),
        "{err}"
    );
    assert!(
        err.contains(" Image 127.0.0.1:5000/pu/app:1  Pushed"),
        "{err}"
    );
    d.pier_ok(&["rmi", "127.0.0.1:5000/pu/app:1"]);
    compose_ok(&d, &dir, &["pull", "app"]);
    assert_eq!(id_of(&d, "127.0.0.1:5000/pu/app:1"), id);
    assert_eq!(
        d.pier_ok(&["run", "--rm", "127.0.0.1:5000/pu/app:1", "cat", "/built"]),
        "built\n"
    );
    // Nothing listens on port 5001: the failure is `push`'s, or a warning when ignored.
    dir.write(
        "compose.yaml",
        "services:\n  app:\n    build: .\n    image: 127.0.0.1:5001/pu/app:1\n",
    );
    compose_ok(&d, &dir, &["build"]);
    let o = compose(&d, &dir, &["push", "-q"]);
    assert_ne!(o.status.code(), Some(0), "{}", o.describe());
    let o = compose_ok(&d, &dir, &["push", "--ignore-push-failures"]);
    assert!(
        stderr(&o).contains("WARN[0000] failed to push 127.0.0.1:5001/pu/app:1"),
        "{}",
        stderr(&o)
    );
    drop(reg);
    d.assert_clean();
}

#[test]
fn secrets_and_configs_are_mounted_where_compose_puts_them() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "sc",
        &[
            (
                "compose.yaml",
                "services:\n  app:\n    image: busybox\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n    secrets:\n      - db_pw\n      - source: token\n        target: api_token\n        uid: '1000'\n        mode: 0400\n    configs:\n      - app_conf\n      - source: app_conf\n        target: /etc/app/app.conf\nsecrets:\n  db_pw:\n    file: ./db_pw.txt\n  token:\n    environment: API_TOKEN\nconfigs:\n  app_conf:\n    content: |\n      level=${LEVEL:-info}\n",
            ),
            ("db_pw.txt", "hunter2\n"),
            (".env", "API_TOKEN=t0k3n\n"),
        ],
    );
    compose_ok(&d, &dir, &["up", "-d"]);
    let cat = |path: &str| d.pier_ok(&["exec", "sc-app-1", "cat", path]);
    assert_eq!(cat("/run/secrets/db_pw"), "hunter2\n");
    assert_eq!(cat("/run/secrets/api_token"), "t0k3n");
    assert_eq!(cat("/app_conf"), "level=info\n");
    assert_eq!(cat("/etc/app/app.conf"), "level=info\n");
    let stat = d.pier_ok(&[
        "exec",
        "sc-app-1",
        "stat",
        "-c",
        "%a %u",
        "/run/secrets/api_token",
        "/app_conf",
    ]);
    assert_eq!(stat, "400 1000\n444 0\n");
    // The file source is a read-only bind of the host file.
    let o = d.pier(&[
        "exec",
        "sc-app-1",
        "sh",
        "-c",
        "echo x > /run/secrets/db_pw",
    ]);
    assert!(!o.status.success(), "{}", o.describe());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("db_pw.txt")).unwrap(),
        "hunter2\n"
    );
    // `config` shows the definitions as written (the variable's name, not its value).
    let cfg = compose_ok(&d, &dir, &["config", "--format", "json"]).out();
    let v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(v["secrets"]["token"]["environment"], "API_TOKEN");
    assert_eq!(v["services"]["app"]["secrets"][1]["mode"], 256);
    compose_ok(&d, &dir, &["down"]);
    d.assert_clean();
}

#[test]
fn include_and_extends_run_with_paths_from_their_own_files() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "ie",
        &[
            (
                "compose.yaml",
                "include:\n  - sub/compose.yaml\nservices:\n  web:\n    extends:\n      file: common/base.yaml\n      service: sleeper\n    environment: [ROLE=web]\n    depends_on: [db]\n  worker:\n    extends: web\n    environment: [ROLE=worker]\n",
            ),
            (
                "common/base.yaml",
                "services:\n  sleeper:\n    image: busybox\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n    env_file: ./base.env\n    volumes: ['./files:/files:ro']\n",
            ),
            ("common/base.env", "FROM_BASE=yes\nROLE=base\n"),
            ("common/files/hello", "from common\n"),
            (
                "sub/compose.yaml",
                "services:\n  db:\n    image: busybox\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n    environment: ['DB_NAME=${DB_NAME}']\n    volumes: ['./init:/init:ro']\n",
            ),
            ("sub/.env", "DB_NAME=sub-db\n"),
            ("sub/init/schema", "create\n"),
        ],
    );
    compose_ok(&d, &dir, &["up", "-d"]);
    assert_eq!(names(&d), "ie-db-1,ie-web-1,ie-worker-1");
    let sh = |c: &str, cmd: &str| d.pier_ok(&["exec", c, "sh", "-c", cmd]);
    assert_eq!(
        sh("ie-web-1", "echo $ROLE $FROM_BASE; cat /files/hello"),
        "web yes\nfrom common\n"
    );
    assert_eq!(
        sh("ie-worker-1", "echo $ROLE $FROM_BASE; cat /files/hello"),
        "worker yes\nfrom common\n"
    );
    assert_eq!(
        sh("ie-db-1", "echo $DB_NAME; cat /init/schema"),
        "sub-db\ncreate\n"
    );
    // The included service is the project's own: labels, network, `down`.
    let db = d.inspect("ie-db-1");
    assert_eq!(db["Config"]["Labels"]["com.docker.compose.project"], "ie");
    assert!(db["NetworkSettings"]["Networks"]["ie_default"].is_object());
    compose_ok(&d, &dir, &["down"]);
    d.assert_clean();
}

#[test]
fn progress_is_a_live_view_with_tty_and_plain_lines_otherwise() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "pg",
        &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n",
        )],
    );
    // `--progress tty`: a redrawn block, even when stderr is not a terminal.
    let err = stderr(&compose_ok(&d, &dir, &["--progress", "tty", "up", "-d"]));
    assert!(err.contains("\x1b[34m[+]\x1b[0m Running 2/2\n"), "{err:?}");
    // Moved back up over the header and both lines to redraw them.
    assert!(err.contains("\x1b[2A\r\x1b[2K"), "{err:?}");
    assert!(
        err.contains(" \x1b[32m✔\x1b[0m Network pg_default  Created"),
        "{err:?}"
    );
    assert!(
        err.contains(" \x1b[32m✔\x1b[0m Container pg-app-1  Started  "),
        "{err:?}"
    );
    // `--ansi never` wins: plain lines, no escape codes.
    let err = stderr(&compose_ok(
        &d,
        &dir,
        &["--progress", "tty", "--ansi", "never", "stop"],
    ));
    assert_eq!(
        err,
        " Container pg-app-1  Stopping\n Container pg-app-1  Stopped\n"
    );
    // `--ansi always` makes `auto` a live view; `quiet` prints nothing.
    let err = stderr(&compose_ok(&d, &dir, &["--ansi", "always", "start"]));
    assert!(err.contains("[+]\x1b[0m Running 1/1"), "{err:?}");
    let err = stderr(&compose_ok(&d, &dir, &["--progress", "quiet", "down"]));
    assert_eq!(err, "");
    d.assert_clean();
}

#[test]
fn down_services_takes_their_dependents_and_kill_reaches_orphans() {
    let d = TestDaemon::with_busybox();
    let svc = |deps: &str| {
        format!(
            "    image: busybox\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n{deps}"
        )
    };
    let file = format!(
        "services:\n  db:\n{}  api:\n{}  web:\n{}  other:\n{}",
        svc(""),
        svc("    depends_on: [db]\n"),
        svc("    depends_on: [api]\n"),
        svc("")
    );
    let dir = Dir::new("ds", &[("compose.yaml", &file)]);
    compose_ok(&d, &dir, &["up", "-d"]);
    let o = compose_ok(&d, &dir, &["down", "api"]);
    let err = stderr(&o);
    assert!(err.contains(" Container ds-web-1  Removed"), "{err}");
    assert!(err.contains(" Container ds-api-1  Removed"), "{err}");
    assert!(
        err.contains(" Network ds_default  Resource is still in use"),
        "{err}"
    );
    assert_eq!(names(&d), "ds-db-1,ds-other-1");
    let o = compose(&d, &dir, &["down", "nope"]);
    assert_eq!(stderr(&o), "no such service: nope\n");

    // `other` leaves the file: `kill --remove-orphans` kills it too.
    let file = format!("services:\n  db:\n{}", svc(""));
    dir.write("compose.yaml", &file);
    let o = compose_ok(&d, &dir, &["kill", "--remove-orphans"]);
    let err = stderr(&o);
    assert!(err.contains(" Container ds-db-1  Killed"), "{err}");
    assert!(err.contains(" Container ds-other-1  Killed"), "{err}");
    assert_eq!(d.inspect("ds-other-1")["State"]["Running"], false);
    compose_ok(&d, &dir, &["down", "--remove-orphans"]);
    d.assert_clean();
}
