//! Shared by the remote-access tests: certificates made by `openssl`, a
//! daemon serving TLS, and CLIs run in the daemon's network namespace with
//! a HOME of their own.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pier_tests::{cmd, Input, OutputExt, TestDaemon, CMD_TIMEOUT};

pub const DOCKER: &str = "/usr/bin/docker";
/// The daemon's own network namespace: any port is free there.
pub const TLS_ADDR: &str = "tcp://127.0.0.1:2376";

/// A CA, a server certificate for 127.0.0.1/localhost, a client certificate,
/// and a client certificate from another CA, in a directory of their own.
pub struct Certs {
    pub dir: PathBuf,
}

impl Certs {
    pub fn new() -> Certs {
        let dir = std::env::temp_dir().join(format!(
            "pier-tls-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let c = Certs { dir };
        c.ca("ca");
        c.ca("other-ca");
        c.leaf(
            "ca",
            "server",
            "serverAuth",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        );
        c.leaf("ca", "client", "clientAuth", "");
        c.leaf("other-ca", "rogue", "clientAuth", "");
        c
    }

    fn openssl(&self, args: &[&str]) {
        let mut c = Command::new("openssl");
        c.args(args).current_dir(&self.dir);
        let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
        assert!(o.status.success(), "openssl {args:?}: {}", o.describe());
    }

    fn ca(&self, name: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=pier-test-{name}"),
            "-keyout",
            &format!("{name}-key.pem"),
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    fn leaf(&self, ca: &str, name: &str, usage: &str, extra: &str) {
        let ext = self.dir.join(format!("{name}.ext"));
        std::fs::write(&ext, format!("{extra}extendedKeyUsage={usage}\n")).unwrap();
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}-key.pem"),
            "-out",
            &format!("{name}.csr"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}-key.pem"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}-cert.pem"),
        ]);
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A directory laid out as `DOCKER_CERT_PATH` wants it: ca.pem, cert.pem, key.pem.
    pub fn cert_path(&self, client: &str) -> PathBuf {
        let d = self.dir.join(format!("{client}-dir"));
        std::fs::create_dir_all(&d).unwrap();
        for (from, to) in [
            ("ca.pem".to_string(), "ca.pem"),
            (format!("{client}-cert.pem"), "cert.pem"),
            (format!("{client}-key.pem"), "key.pem"),
        ] {
            std::fs::copy(self.dir.join(from), d.join(to)).unwrap();
        }
        d
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A daemon with `-H tcp://127.0.0.1:2376` and `mode` (`--tls` or `--tlsverify`), busybox imported.
pub fn tls_daemon(certs: &Certs, mode: &str) -> TestDaemon {
    let (ca, cert, key) = (
        certs.path("ca.pem"),
        certs.path("server-cert.pem"),
        certs.path("server-key.pem"),
    );
    let d = TestDaemon::start_with_args(&[
        "-H",
        TLS_ADDR,
        mode,
        "--tlscacert",
        &ca,
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
    ]);
    d.import_busybox();
    d
}

/// The pier CLI inside the daemon's network namespace, with no connection
/// settings from our environment.
pub fn pier_remote(d: &TestDaemon, home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = d.in_netns(&d_bin(d));
    c.args(args);
    isolate(&mut c, home);
    for (k, v) in envs {
        c.env(k, v);
    }
    let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
    eprintln!("$ pier {}\n{}", args.join(" "), o.describe());
    o
}

pub fn d_bin(d: &TestDaemon) -> String {
    // pier_cmd() names the binary under test; take its program.
    d.pier_cmd().get_program().to_string_lossy().into_owned()
}

pub fn isolate(c: &mut Command, home: &Path) {
    for v in [
        "PIER_HOST",
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_TLS_VERIFY",
        "DOCKER_TLS",
        "DOCKER_CERT_PATH",
        "DOCKER_API_VERSION",
    ] {
        c.env_remove(v);
    }
    c.env("HOME", home)
        .env("DOCKER_CONFIG", home.join(".docker"));
}

/// `docker logs -f` to the end of a container, and `docker exec -it` under a
/// pseudo-terminal (`script`), through `docker` (a command with the
/// connection already set up, in the daemon's namespace).
pub fn docker_follow_and_tty(d: &TestDaemon, docker: &dyn Fn() -> Command) {
    let run = |args: &[&str]| {
        let mut c = docker();
        c.args(args);
        let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
        eprintln!("$ docker {}\n{}", args.join(" "), o.describe());
        o
    };
    let o = run(&[
        "run",
        "-d",
        "--name",
        "follow",
        "busybox",
        "sh",
        "-c",
        "echo a; sleep 1; echo b",
    ]);
    assert_eq!(o.code(), 0, "{}", d.log_tail(20));
    let o = run(&["logs", "-f", "follow"]);
    assert_eq!(
        (o.code(), o.out().as_str()),
        (0, "a\nb\n"),
        "{}",
        o.describe()
    );
    assert_eq!(run(&["rm", "follow"]).code(), 0);

    assert_eq!(
        run(&["run", "-d", "--name", "tty", "busybox", "sleep", "100"]).code(),
        0
    );
    // `script` gives docker a terminal; its argv is the docker command line.
    let base = docker();
    let mut line: Vec<String> = vec![base.get_program().to_string_lossy().into_owned()];
    line.extend(base.get_args().map(|a| a.to_string_lossy().into_owned()));
    line.extend(
        [
            "exec",
            "-it",
            "tty",
            "sh",
            "-c",
            "'test -t 0 && echo is-a-tty'",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let mut c = Command::new("script");
    c.args(["-qec", &line.join(" "), "/dev/null"]);
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
    assert_eq!(o.code(), 0, "{}", o.describe());
    assert!(o.out().contains("is-a-tty"), "{}", o.describe());
    assert_eq!(run(&["rm", "-f", "tty"]).code(), 0);
}
