//! The real docker CLI (Debian's docker.io, 20.10) against a Pier daemon.

use std::process::{Command, Output};
use std::time::Duration;

use pier_tests::{cmd, short, wait_until, Input, OutputExt, TestDaemon, CMD_TIMEOUT};

const DOCKER: &str = "/usr/bin/docker";

struct Docker<'a> {
    d: &'a TestDaemon,
}

impl Docker<'_> {
    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(DOCKER);
        c.args(args)
            .env("DOCKER_HOST", self.d.host())
            .env("DOCKER_CONFIG", self.d.root.join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_API_VERSION");
        let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
        eprintln!("$ docker {}\n{}", args.join(" "), o.describe());
        o
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.code(),
            0,
            "docker {args:?}: {}\n{}",
            o.describe(),
            self.d.log_tail(30)
        );
        o.out()
    }
}

fn have_docker() -> bool {
    if std::path::Path::new(DOCKER).exists() {
        return true;
    }
    assert!(
        std::env::var_os("PIER_SKIP_DOCKER_CLI").is_some(),
        "{DOCKER} missing: apt-get install docker.io (or set PIER_SKIP_DOCKER_CLI=1)"
    );
    eprintln!("skipped: {DOCKER} missing and PIER_SKIP_DOCKER_CLI set");
    false
}

#[test]
fn docker_cli_works_against_pier() {
    if !have_docker() {
        return;
    }
    let d = TestDaemon::with_busybox();
    let docker = Docker { d: &d };
    let v = docker.ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert!(v.trim().starts_with("1."), "{v}");

    assert_eq!(docker.ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi\n");
    let o = docker.run(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(o.code(), 3);

    let id = docker.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo up; exec sleep 1000",
    ]);
    let id = id.trim().to_string();
    let ps = docker.ok(&["ps"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with(short(&id)) && l.ends_with("web")),
        "{ps}"
    );
    let images = docker.ok(&["images"]);
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("busybox") && l.contains("latest")),
        "{images}"
    );
    assert!(wait_until(Duration::from_secs(5), || docker
        .ok(&["logs", "web"])
        == "up\n"));
    assert_eq!(
        docker.ok(&["exec", "web", "sh", "-c", "echo $((6*7))"]),
        "42\n"
    );
    let o = docker.run(&["exec", "web", "sh", "-c", "exit 5"]);
    assert_eq!(o.code(), 5);
    assert_eq!(
        docker
            .ok(&["inspect", "--format", "{{.State.Running}}", "web"])
            .trim(),
        "true"
    );
    assert_eq!(docker.ok(&["stop", "-t", "1", "web"]).trim(), "web");
    let all = docker.ok(&["ps", "-a"]);
    assert!(
        all.lines()
            .any(|l| l.starts_with(short(&id)) && l.contains("Exited (137)")),
        "{all}"
    );
    assert_eq!(docker.ok(&["rm", "web"]).trim(), "web");
    let out = docker.ok(&["rmi", "busybox:latest"]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(!docker.ok(&["images"]).contains("busybox"));
    d.assert_clean();
}
