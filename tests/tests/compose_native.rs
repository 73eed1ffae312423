//! `pier compose` against a real daemon: the getting-started app (a web
//! service built from a Dockerfile counting visits in a "redis" stand-in, both
//! busybox httpd with CGI scripts), names and labels as Compose v2 writes them,
//! `down -v` leaving nothing, two `-f` files, profiles, `service_healthy`,
//! scale, and recreation driven by the config hash.

mod compose_util;

use compose_util::*;
use pier_tests::cmd;
use pier_tests::{Input, OutputExt, TestDaemon, CMD_TIMEOUT};

const WEB_CGI: &str = "#!/bin/sh\n\
n=$(wget -qO- http://redis:6379/cgi-bin/incr)\n\
printf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
echo \"Hello World! I have been seen $n times.\"\n";

const INCR_CGI: &str = "#!/bin/sh\n\
n=$(cat /data/count 2>/dev/null || echo 0)\n\
n=$((n+1))\n\
echo $n > /data/count\n\
printf 'Content-Type: text/plain\\r\\n\\r\\n%s' \"$n\"\n";

const GETTING_STARTED: &str = r#"
services:
  web:
    build: .
    ports:
      - "127.0.0.1:${WEB_PORT:-18080}:80"
    depends_on:
      redis:
        condition: service_healthy
  redis:
    image: "busybox"
    command: ["httpd", "-f", "-p", "6379", "-h", "/www"]
    volumes:
      - ./redis:/www:ro
      - counter:/data
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://127.0.0.1:6379/ping"]
      interval: 500ms
      retries: 20
volumes:
  counter:
"#;

const DOCKERFILE: &str = "FROM busybox\nCOPY app /www\nRUN chmod +x /www/cgi-bin/index\nCMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n";

fn visit(d: &TestDaemon, port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/cgi-bin/index");
    let mut c = d.in_netns("curl");
    c.args(["-fsS", "--max-time", "5", &url]);
    let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
    assert!(o.status.success(), "curl {url}: {}", o.describe());
    o.out()
}

#[test]
fn getting_started_app_up_visits_and_down_leaves_nothing() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "gs",
        &[
            ("compose.yaml", GETTING_STARTED),
            ("Dockerfile", DOCKERFILE),
            (".env", "WEB_PORT=18081\n"),
            ("app/cgi-bin/index", WEB_CGI),
            ("redis/cgi-bin/incr", INCR_CGI),
            ("redis/ping", "pong\n"),
        ],
    );
    let up = compose_ok(&d, &dir, &["up", "-d"]);
    let err = stderr(&up);
    for line in [
        " Network gs_default  Created",
        " Volume \"gs_counter\"  Created",
        " Container gs-redis-1  Created",
        " Container gs-web-1  Created",
        " Container gs-redis-1  Healthy",
        " Container gs-web-1  Started",
    ] {
        assert!(err.contains(line), "missing {line:?} in:\n{err}");
    }
    assert_eq!(names(&d), "gs-redis-1,gs-web-1");

    // The published port (from `.env`) on 127.0.0.1; the count lives in "redis".
    assert_eq!(visit(&d, 18081), "Hello World! I have been seen 1 times.\n");
    assert_eq!(visit(&d, 18081), "Hello World! I have been seen 2 times.\n");

    // Names and labels as Compose v2 writes them.
    let web = d.inspect("gs-web-1");
    let labels = &web["Config"]["Labels"];
    assert_eq!(labels["com.docker.compose.project"], "gs");
    assert_eq!(labels["com.docker.compose.service"], "web");
    assert_eq!(labels["com.docker.compose.container-number"], "1");
    assert_eq!(labels["com.docker.compose.oneoff"], "False");
    assert_eq!(
        labels["com.docker.compose.depends_on"],
        "redis:service_healthy:false"
    );
    assert_eq!(
        labels["com.docker.compose.project.working_dir"],
        dir.path().to_str().unwrap()
    );
    assert_eq!(
        labels["com.docker.compose.project.config_files"],
        dir.path().join("compose.yaml").to_str().unwrap()
    );
    assert_eq!(
        labels["com.docker.compose.config-hash"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert_eq!(web["Config"]["Image"], "gs-web");
    let nets = web["NetworkSettings"]["Networks"].as_object().unwrap();
    assert_eq!(nets.keys().collect::<Vec<_>>(), vec!["gs_default"]);
    let net = inspect(&d, "network", "gs_default");
    assert_eq!(net["Labels"]["com.docker.compose.network"], "default");
    assert_eq!(net["Labels"]["com.docker.compose.project"], "gs");
    let vol = inspect(&d, "volume", "gs_counter");
    assert_eq!(vol["Labels"]["com.docker.compose.volume"], "counter");

    // ps lists both, running; a second `up -d` changes nothing.
    let ps = compose_ok(&d, &dir, &["ps"]).out();
    assert!(ps.starts_with("NAME"), "{ps}");
    assert!(
        ps.contains("gs-web-1") && ps.contains("127.0.0.1:18081->80/tcp"),
        "{ps}"
    );
    let before = id_of(&d, "gs-web-1");
    let again = compose_ok(&d, &dir, &["up", "-d"]);
    assert!(
        stderr(&again).contains(" Container gs-web-1  Running"),
        "{}",
        stderr(&again)
    );
    assert_eq!(id_of(&d, "gs-web-1"), before);
    let ls = compose_ok(&d, &dir, &["ls"]).out();
    assert!(ls.contains("gs") && ls.contains("running(2)"), "{ls}");

    let down = compose_ok(&d, &dir, &["down", "-v"]);
    let err = stderr(&down);
    assert!(err.contains(" Container gs-web-1  Removed"), "{err}");
    assert!(err.contains(" Network gs_default  Removed"), "{err}");
    assert!(err.contains(" Volume gs_counter  Removed"), "{err}");
    assert_eq!(d.pier_ok(&["ps", "-aq"]), "");
    assert!(!d.pier_ok(&["network", "ls"]).contains("gs_default"));
    assert!(!d.pier_ok(&["volume", "ls", "-q"]).contains("gs_counter"));
    d.assert_clean();
}

#[test]
fn two_files_merge_and_profiles_select_services() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "mp",
        &[
            (
                "compose.yaml",
                "services:\n  app:\n    image: busybox\n    command: [sleep, '1000']\n    environment: {A: '1'}\n    ports: ['127.0.0.1:18090:80']\n  debug:\n    image: busybox\n    command: [sleep, '1000']\n    profiles: [debug]\n",
            ),
            (
                "extra.yaml",
                "services:\n  app:\n    command: [sleep, '2000']\n    environment: {B: '2'}\n    ports: !reset []\n",
            ),
        ],
    );
    compose_ok(
        &d,
        &dir,
        &["-f", "compose.yaml", "-f", "extra.yaml", "up", "-d"],
    );
    assert_eq!(names(&d), "mp-app-1");
    let app = d.inspect("mp-app-1");
    assert_eq!(app["Config"]["Cmd"], serde_json::json!(["sleep", "2000"]));
    let env: Vec<&str> = app["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(env.contains(&"A=1") && env.contains(&"B=2"), "{env:?}");
    assert_eq!(app["HostConfig"]["PortBindings"], serde_json::json!({}));
    let files = app["Config"]["Labels"]["com.docker.compose.project.config_files"]
        .as_str()
        .unwrap()
        .to_string();
    let want = format!(
        "{},{}",
        dir.path().join("compose.yaml").display(),
        dir.path().join("extra.yaml").display()
    );
    assert_eq!(files, want);

    // The profile's service comes with --profile (the same files, so `app` stays).
    let up = compose_ok(
        &d,
        &dir,
        &[
            "-f",
            "compose.yaml",
            "-f",
            "extra.yaml",
            "--profile",
            "debug",
            "up",
            "-d",
        ],
    );
    assert!(
        stderr(&up).contains(" Container mp-app-1  Running"),
        "{}",
        stderr(&up)
    );
    assert_eq!(names(&d), "mp-app-1,mp-debug-1");
    let services = compose_ok(&d, &dir, &["--profile", "debug", "config", "--services"]).out();
    assert_eq!(services, "app\ndebug\n");

    compose_ok(
        &d,
        &dir,
        &["-f", "compose.yaml", "-f", "extra.yaml", "down"],
    );
    assert_eq!(d.pier_ok(&["ps", "-aq"]), "");
    d.assert_clean();
}

#[test]
fn service_healthy_dependent_starts_only_after_the_check_passes() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "hc",
        &[(
            "compose.yaml",
            r#"
services:
  db:
    image: busybox
    command: ["sh", "-c", "sleep 2; touch /shared/ready; exec sleep 1000"]
    volumes: ["shared:/shared"]
    healthcheck:
      test: ["CMD", "test", "-f", "/shared/ready"]
      interval: 300ms
      retries: 50
  app:
    image: busybox
    command: ["sh", "-c", "if test -f /shared/ready; then echo ok; else echo early; fi > /shared/seen; exec sleep 1000"]
    volumes: ["shared:/shared"]
    depends_on:
      db:
        condition: service_healthy
volumes:
  shared:
"#,
        )],
    );
    let up = compose_ok(&d, &dir, &["up", "-d"]);
    let err = stderr(&up);
    let healthy = err.find(" Container hc-db-1  Healthy").expect(&err);
    let started = err.find(" Container hc-app-1  Started").expect(&err);
    assert!(healthy < started, "{err}");
    assert_eq!(
        d.pier_ok(&["exec", "hc-app-1", "cat", "/shared/seen"]),
        "ok\n"
    );
    // `--wait` returns once everything is running, and healthy where checked.
    let up = compose_ok(&d, &dir, &["up", "-d", "--wait"]);
    assert!(
        stderr(&up).contains(" Container hc-db-1  Healthy"),
        "{}",
        stderr(&up)
    );
    assert!(
        stderr(&up).contains(" Container hc-app-1  Running"),
        "{}",
        stderr(&up)
    );
    // `compose exec` finds the service's container.
    let o = compose_ok(&d, &dir, &["exec", "-T", "app", "cat", "/shared/seen"]);
    assert_eq!(o.out(), "ok\n");
    compose_ok(&d, &dir, &["down", "-v", "-t", "1"]);
    assert!(!d.pier_ok(&["volume", "ls", "-q"]).contains("hc_shared"));
    d.assert_clean();
}

#[test]
fn scale_logs_and_config_hash_recreate() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "sc",
        &[(
            "compose.yaml",
            "services:\n  web:\n    image: busybox\n    command: [sh, -c, 'echo hello from $$HOSTNAME; exec sleep 1000']\n    hostname: webhost\n  other:\n    image: busybox\n    command: [sleep, '1000']\n",
        )],
    );
    compose_ok(&d, &dir, &["up", "-d", "--scale", "web=2"]);
    assert_eq!(names(&d), "sc-other-1,sc-web-1,sc-web-2");
    let logs = compose_ok(&d, &dir, &["logs", "web"]).out();
    assert!(logs.contains("web-1  | hello from webhost"), "{logs}");
    assert!(logs.contains("web-2  | hello from webhost"), "{logs}");
    let plain = compose_ok(&d, &dir, &["logs", "--no-log-prefix", "--tail", "1", "web"]).out();
    assert_eq!(plain, "hello from webhost\nhello from webhost\n");

    // Back to the file's scale: the second replica goes.
    let web1 = id_of(&d, "sc-web-1");
    let other = id_of(&d, "sc-other-1");
    compose_ok(&d, &dir, &["up", "-d"]);
    assert_eq!(names(&d), "sc-other-1,sc-web-1");
    assert_eq!(id_of(&d, "sc-web-1"), web1);

    // A changed service is recreated; the unchanged one is left alone.
    dir.write(
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n    command: [sh, -c, 'echo hello from $$HOSTNAME; exec sleep 1000']\n    hostname: webhost\n    environment: [CHANGED=1]\n  other:\n    image: busybox\n    command: [sleep, '1000']\n",
    );
    let up = compose_ok(&d, &dir, &["up", "-d", "-t", "1"]);
    assert!(
        stderr(&up).contains(" Container sc-web-1  Recreated"),
        "{}",
        stderr(&up)
    );
    assert_ne!(id_of(&d, "sc-web-1"), web1);
    assert_eq!(id_of(&d, "sc-other-1"), other);
    assert_eq!(d.inspect("sc-web-1")["State"]["Running"], true);

    // --force-recreate recreates even what did not change; --no-recreate nothing.
    compose_ok(
        &d,
        &dir,
        &["up", "-d", "--force-recreate", "-t", "1", "other"],
    );
    let other2 = id_of(&d, "sc-other-1");
    assert_ne!(other2, other);
    dir.write(
        "compose.yaml",
        "services:\n  other:\n    image: busybox\n    command: [sleep, '999']\n",
    );
    compose_ok(&d, &dir, &["up", "-d", "--no-recreate"]);
    assert_eq!(id_of(&d, "sc-other-1"), other2);

    // web is now an orphan: down leaves it with a warning, --remove-orphans takes it.
    let down = compose_ok(&d, &dir, &["down", "-t", "1"]);
    assert!(
        stderr(&down).contains("Found orphan containers ([sc-web-1])"),
        "{}",
        stderr(&down)
    );
    assert_eq!(names(&d), "sc-web-1");
    compose_ok(&d, &dir, &["down", "-t", "1", "--remove-orphans"]);
    assert_eq!(d.pier_ok(&["ps", "-aq"]), "");
    d.assert_clean();
}

#[test]
fn refused_keys_and_bad_files_name_the_key() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "bad",
        &[(
            "compose.yaml",
            "services:\n  web:\n    image: busybox\n    develop:\n      watch: []\n",
        )],
    );
    let o = compose(&d, &dir, &["up", "-d"]);
    assert_eq!(o.status.code(), Some(1));
    let want = format!(
        "{}:4: services.web.develop: not supported by pier compose yet\n",
        dir.path().join("compose.yaml").display()
    );
    assert_eq!(stderr(&o), want);
    dir.write(
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n    ports: ['80:80:80']\n",
    );
    let o = compose(&d, &dir, &["config"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).ends_with(":4: services.web.ports[0]: invalid port \"80:80:80\"\n"),
        "{}",
        stderr(&o)
    );
    assert_eq!(d.pier_ok(&["ps", "-aq"]), "");
}

#[test]
fn attached_up_prefixes_output_and_ends_with_the_containers() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "at",
        &[(
            "compose.yaml",
            "services:\n  once:\n    image: busybox\n    command: [echo, hi there]\n  twice:\n    image: busybox\n    command: [sh, -c, 'echo one; echo two; exit 3']\n",
        )],
    );
    // `up` ends when its containers have, and their exit codes are not its own.
    let o = compose_ok(&d, &dir, &["up"]);
    let out = o.out();
    assert!(
        stderr(&o).contains("Attaching to once-1, twice-1"),
        "{}",
        stderr(&o)
    );
    assert!(out.contains("once-1   | hi there\n"), "{out}");
    assert!(
        out.contains("twice-1  | one\ntwice-1  | two\n") || out.contains("twice-1  | two\n"),
        "{out}"
    );
    assert!(out.contains("once-1 exited with code 0\n"), "{out}");
    assert!(out.contains("twice-1 exited with code 3\n"), "{out}");
    compose_ok(&d, &dir, &["down"]);
    d.assert_clean();
}

#[test]
fn attached_up_stops_the_project_on_ctrl_c() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "cc",
        &[(
            "compose.yaml",
            "services:\n  srv:\n    image: busybox\n    command: [sh, -c, 'echo ready; exec sleep 1000']\n    stop_grace_period: 1s\n",
        )],
    );
    let mut c = d.pier_cmd();
    c.arg("compose")
        .arg("up")
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l == "srv-1  | ready" => break,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                panic!("no output from the attached container: {e}");
            }
        }
    }
    let pid = child.id() as i32;
    assert_eq!(sigint(pid), 0);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("compose up did not stop on SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("Gracefully stopping..."), "{err}");
    assert!(err.contains(" Container cc-srv-1  Stopped"), "{err}");
    assert_eq!(d.inspect("cc-srv-1")["State"]["Running"], false);
    compose_ok(&d, &dir, &["down"]);
    d.assert_clean();
}

/// SIGINT (Ctrl-C) through kill(1): tests hold no `unsafe`.
fn sigint(pid: i32) -> i32 {
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}

#[test]
fn completed_successfully_run_rm_and_lifecycle_verbs() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "lc",
        &[(
            "compose.yaml",
            "services:\n  init:\n    image: busybox\n    command: [sh, -c, 'sleep 1; echo done > /shared/init']\n    volumes: [shared:/shared]\n  app:\n    image: busybox\n    command: [sh, -c, 'cat /shared/init > /shared/seen; exec sleep 1000']\n    volumes: [shared:/shared]\n    stop_grace_period: 1s\n    depends_on:\n      init:\n        condition: service_completed_successfully\nvolumes:\n  shared:\n",
        )],
    );
    let up = compose_ok(&d, &dir, &["up", "-d"]);
    let err = stderr(&up);
    let exited = err.find(" Container lc-init-1  Exited").expect(&err);
    let started = err.find(" Container lc-app-1  Started").expect(&err);
    assert!(exited < started, "{err}");
    assert_eq!(
        d.pier_ok(&["exec", "lc-app-1", "cat", "/shared/seen"]),
        "done\n"
    );

    // A one-off container: its output, labels, and nothing left with --rm.
    let o = compose_ok(
        &d,
        &dir,
        &[
            "run",
            "--rm",
            "--no-deps",
            "-T",
            "app",
            "cat",
            "/shared/init",
        ],
    );
    assert_eq!(o.out(), "done\n");
    assert_eq!(names(&d), "lc-app-1,lc-init-1");
    let o = compose(
        &d,
        &dir,
        &[
            "run",
            "--rm",
            "--no-deps",
            "-T",
            "app",
            "sh",
            "-c",
            "exit 7",
        ],
    );
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(names(&d), "lc-app-1,lc-init-1");

    compose_ok(&d, &dir, &["stop", "app"]);
    assert_eq!(d.inspect("lc-app-1")["State"]["Running"], false);
    compose_ok(&d, &dir, &["start", "app"]);
    assert_eq!(d.inspect("lc-app-1")["State"]["Running"], true);
    compose_ok(&d, &dir, &["restart", "app"]);
    assert_eq!(d.inspect("lc-app-1")["State"]["Running"], true);
    let ps = compose_ok(&d, &dir, &["ps", "--services"]).out();
    assert_eq!(ps, "app\n");
    compose_ok(&d, &dir, &["kill", "app"]);
    compose_ok(&d, &dir, &["rm", "-f"]);
    assert_eq!(d.pier_ok(&["ps", "-aq"]), "");

    // A failing dependency stops `up` with Compose's message.
    dir.write(
        "compose.yaml",
        "services:\n  init:\n    image: busybox\n    command: [sh, -c, 'exit 3']\n  app:\n    image: busybox\n    command: [sleep, '1000']\n    depends_on:\n      init:\n        condition: service_completed_successfully\n",
    );
    let o = compose(&d, &dir, &["up", "-d"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("service \"init\" didn't complete successfully: exit 3"),
        "{}",
        stderr(&o)
    );
    compose_ok(&d, &dir, &["down", "-v"]);
    d.assert_clean();
}
