//! `-H ssh://`: the CLI runs `ssh HOST pier system dial-stdio` and speaks
//! HTTP over its stdio, and the docker CLI's `DOCKER_HOST=ssh://` works
//! against Pier the same way (its remote `docker system dial-stdio` is Pier).
//! An sshd of the test's own listens on the daemon's loopback with a
//! throwaway host key and authorized key; the system's ssh settings are not
//! read (a wrapper gives ssh `-F` with the test's config).

mod remote_util;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use pier_tests::{cmd, wait_until, Input, OutputExt, TestDaemon, CMD_TIMEOUT};
use remote_util::{d_bin, docker_follow_and_tty, isolate, DOCKER};

const SSH_HOST: &str = "ssh://root@127.0.0.1:2222";

struct Sshd {
    child: Child,
    dir: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sh(c: &mut Command) {
    let o = cmd::run(
        std::mem::replace(c, Command::new("true")),
        Input::Null,
        CMD_TIMEOUT,
    );
    assert!(o.status.success(), "{}", o.describe());
}

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl Sshd {
    /// sshd on 127.0.0.1:2222 in `d`'s network namespace. Its sessions get a
    /// PATH whose `pier` and `docker` are the pier under test, and PIER_HOST
    /// naming `d`'s socket.
    fn start(d: &TestDaemon) -> Sshd {
        let dir = d.root.join("ssh");
        let remote_bin = dir.join("remote-bin");
        let local_bin = dir.join("local-bin");
        std::fs::create_dir_all(&remote_bin).unwrap();
        std::fs::create_dir_all(&local_bin).unwrap();
        let pier = d_bin(d);
        std::os::unix::fs::symlink(&pier, remote_bin.join("pier")).unwrap();
        std::os::unix::fs::symlink(&pier, remote_bin.join("docker")).unwrap();
        for (key, kind) in [("host_key", "ed25519"), ("id", "ed25519")] {
            sh(Command::new("ssh-keygen")
                .args(["-q", "-t", kind, "-N", "", "-C", "pier-test", "-f"])
                .arg(dir.join(key)));
        }
        std::fs::copy(dir.join("id.pub"), dir.join("authorized_keys")).unwrap();
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        std::fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:2222 {host_pub}"),
        )
        .unwrap();
        let p = |f: &str| dir.join(f).display().to_string();
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "ListenAddress 127.0.0.1:2222\nHostKey {hk}\nPidFile {pid}\nAuthorizedKeysFile {ak}\n\
                 StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nUsePAM no\n\
                 LogLevel ERROR\nSetEnv PATH={rb}:/usr/bin:/bin PIER_HOST={host}\n",
                hk = p("host_key"),
                pid = p("sshd.pid"),
                ak = p("authorized_keys"),
                rb = remote_bin.display(),
                host = d.host(),
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("ssh_config"),
            format!(
                "Host *\n  IdentityFile {id}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n  \
                 StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n",
                id = p("id"),
                kh = p("known_hosts"),
            ),
        )
        .unwrap();
        write_exec(
            &local_bin.join("ssh"),
            &format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n",
                p("ssh_config")
            ),
        );
        // sshd wants its privilege separation directory; the package makes it at boot.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
        let child = d
            .in_netns("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let up = wait_until(Duration::from_secs(20), || {
            d.in_netns("bash")
                .args(["-c", "exec 3<>/dev/tcp/127.0.0.1/2222"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(
            up,
            "sshd did not come up: {}",
            std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
        Sshd { child, dir }
    }

    /// A CLI in the daemon's namespace whose `ssh` uses the test's config.
    fn cli(&self, d: &TestDaemon, prog: &str, args: &[&str], input: Input<'_>) -> Output {
        let mut c = d.in_netns(prog);
        c.args(args);
        isolate(&mut c, &d.root.join("home"));
        c.env(
            "PATH",
            format!(
                "{}:{}",
                self.dir.join("local-bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
        let o = cmd::run(c, input, CMD_TIMEOUT);
        eprintln!("$ {prog} {}\n{}", args.join(" "), o.describe());
        o
    }
}

#[test]
fn pier_cli_over_ssh() {
    let d = TestDaemon::with_busybox();
    let sshd = Sshd::start(&d);
    let pier = d_bin(&d);
    let run = |args: &[&str], input: Input<'_>| {
        let mut v = vec!["-H", SSH_HOST];
        v.extend_from_slice(args);
        sshd.cli(&d, &pier, &v, input)
    };
    let o = run(&["run", "--rm", "busybox", "echo", "over ssh"], Input::Null);
    assert_eq!(
        (o.code(), o.out().as_str()),
        (0, "over ssh\n"),
        "{}",
        d.log_tail(20)
    );
    let o = run(
        &["run", "--rm", "busybox", "sh", "-c", "exit 6"],
        Input::Null,
    );
    assert_eq!(o.code(), 6);
    // stdin through ssh and dial-stdio, its end passed on as a half-close.
    let o = run(
        &[
            "run",
            "--rm",
            "-i",
            "busybox",
            "sh",
            "-c",
            "tr a-z A-Z; echo done",
        ],
        Input::Bytes(b"ssh\n"),
    );
    assert_eq!(o.out(), "SSH\ndone\n", "{}", o.describe());
    let o = run(
        &[
            "run",
            "-d",
            "--name",
            "sx",
            "busybox",
            "sh",
            "-c",
            "echo logged; sleep 100",
        ],
        Input::Null,
    );
    assert_eq!(o.code(), 0);
    assert_eq!(
        run(&["ps", "--format", "{{.Names}}"], Input::Null).out(),
        "sx\n"
    );
    assert!(wait_until(Duration::from_secs(10), || run(
        &["logs", "sx"],
        Input::Null
    )
    .out()
        == "logged\n"));
    // A context naming the ssh host works as -H does.
    let o = sshd.cli(
        &d,
        &pier,
        &[
            "context",
            "create",
            "overssh",
            "--docker",
            &format!("host={SSH_HOST}"),
        ],
        Input::Null,
    );
    assert_eq!(o.code(), 0);
    let o = sshd.cli(
        &d,
        &pier,
        &["--context", "overssh", "rm", "-f", "sx"],
        Input::Null,
    );
    assert_eq!((o.code(), o.out().as_str()), (0, "sx\n"));
    drop(sshd);
    d.assert_clean();
}

#[test]
fn docker_cli_over_ssh() {
    assert!(Path::new(DOCKER).exists(), "{DOCKER} missing");
    let d = TestDaemon::with_busybox();
    let sshd = Sshd::start(&d);
    let docker = |args: &[&str]| {
        let mut c_args = vec!["-H", SSH_HOST];
        c_args.extend_from_slice(args);
        sshd.cli(&d, DOCKER, &c_args, Input::Null)
    };
    let ok = |args: &[&str]| {
        let o = docker(args);
        assert_eq!(o.code(), 0, "docker {args:?}\n{}", d.log_tail(20));
        o.out()
    };
    assert!(ok(&["version", "--format", "{{.Server.APIVersion}}"]).starts_with("1."));
    assert_eq!(ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi\n");
    ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo up; sleep 100",
    ]);
    assert!(ok(&["ps"]).lines().any(|l| l.ends_with("web")));
    assert!(wait_until(Duration::from_secs(10), || docker(&[
        "logs", "web"
    ])
    .out()
        == "up\n"));
    assert_eq!(ok(&["rm", "-f", "web"]).trim(), "web");
    let ctx = d.root.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo built > /b\nCMD [\"cat\", \"/b\"]\n",
    )
    .unwrap();
    let mut c = d.in_netns(DOCKER);
    c.args(["-H", SSH_HOST, "build", "-q", "-t", "sshbuilt"])
        .arg(&ctx);
    isolate(&mut c, &d.root.join("home"));
    c.env("DOCKER_BUILDKIT", "0").env(
        "PATH",
        format!(
            "{}:{}",
            sshd.dir.join("local-bin").display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
    assert_eq!(o.code(), 0, "docker build over ssh: {}", o.describe());
    assert_eq!(ok(&["run", "--rm", "sshbuilt"]), "built\n");
    ok(&["rmi", "sshbuilt"]);
    docker_follow_and_tty(&d, &|| {
        let mut c = d.in_netns(DOCKER);
        c.args(["-H", SSH_HOST]);
        isolate(&mut c, &d.root.join("home"));
        c.env(
            "PATH",
            format!(
                "{}:{}",
                sshd.dir.join("local-bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
        c
    });
    drop(sshd);
    d.assert_clean();
}
