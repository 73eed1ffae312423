//! The API on TCP behind TLS: the daemon's `-H tcp://` with `--tlsverify`
//! (mutual TLS) and `--tls` (server only), the pier CLI's TLS flags and
//! `DOCKER_*` variables, and the real docker CLI against Pier's TLS port.
//! Certificates are made by `openssl` for each test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pier_tests::{cmd, Input, OutputExt, TestDaemon, CMD_TIMEOUT};

const DOCKER: &str = "/usr/local/bin/docker";
/// The daemon's own network namespace: any port is free there.
const TLS_ADDR: &str = "tcp://127.0.0.1:2376";

/// A CA, a server certificate for 127.0.0.1/localhost, a client certificate,
/// and a client certificate from another CA, in a directory of their own.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn new() -> Certs {
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

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A directory laid out as `DOCKER_CERT_PATH` wants it: ca.pem, cert.pem, key.pem.
    fn cert_path(&self, client: &str) -> PathBuf {
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

fn tls_daemon(certs: &Certs, mode: &str) -> TestDaemon {
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
fn pier_remote(d: &TestDaemon, home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
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

fn d_bin(d: &TestDaemon) -> String {
    // pier_cmd() names the binary under test; take its program.
    d.pier_cmd().get_program().to_string_lossy().into_owned()
}

fn isolate(c: &mut Command, home: &Path) {
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

#[test]
fn pier_cli_over_mutual_tls() {
    let certs = Certs::new();
    let d = tls_daemon(&certs, "--tlsverify");
    let home = d.root.join("home");
    let flags = [
        "-H",
        TLS_ADDR,
        "--tlsverify",
        "--tlscacert",
        &certs.path("ca.pem"),
        "--tlscert",
        &certs.path("client-cert.pem"),
        "--tlskey",
        &certs.path("client-key.pem"),
    ];
    let with = |args: &[&str]| {
        let mut v: Vec<&str> = flags.to_vec();
        v.extend_from_slice(args);
        pier_remote(&d, &home, &v, &[])
    };
    let o = with(&["version", "--format", "{{.Server.ApiVersion}}"]);
    assert_eq!(o.code(), 0);
    assert!(o.out().trim().starts_with("1."), "{}", o.out());
    let o = with(&["run", "--rm", "busybox", "echo", "over tls"]);
    assert_eq!((o.code(), o.out().as_str()), (0, "over tls\n"));
    let o = with(&["run", "--rm", "busybox", "sh", "-c", "exit 4"]);
    assert_eq!(o.code(), 4);
    // stdin through the hijacked TLS stream, its end passed on as a half-close.
    let mut c = d.in_netns(&d_bin(&d));
    c.args(flags).args([
        "run",
        "--rm",
        "-i",
        "busybox",
        "sh",
        "-c",
        "tr a-z A-Z; echo done",
    ]);
    isolate(&mut c, &home);
    let o = cmd::run(c, Input::Bytes(b"hello\n"), CMD_TIMEOUT);
    assert_eq!(o.out(), "HELLO\ndone\n", "{}", o.describe());

    // The same through the environment, as the docker CLI reads it.
    let cert_path = certs.cert_path("client");
    let cert_path = cert_path.to_str().unwrap();
    let envs = [
        ("DOCKER_HOST", TLS_ADDR),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", cert_path),
    ];
    let o = pier_remote(
        &d,
        &home,
        &[
            "run",
            "-d",
            "--name",
            "bg",
            "busybox",
            "sh",
            "-c",
            "echo from-bg; sleep 100",
        ],
        &envs,
    );
    assert_eq!(o.code(), 0);
    let o = pier_remote(&d, &home, &["ps", "--format", "{{.Names}}"], &envs);
    assert_eq!(o.out(), "bg\n");
    assert!(pier_tests::wait_until(
        std::time::Duration::from_secs(10),
        || { pier_remote(&d, &home, &["logs", "bg"], &envs).out() == "from-bg\n" }
    ));
    // ~/.docker/{ca,cert,key}.pem when DOCKER_CERT_PATH is not set.
    let dot_docker = home.join(".docker");
    std::fs::create_dir_all(&dot_docker).unwrap();
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::copy(Path::new(cert_path).join(f), dot_docker.join(f)).unwrap();
    }
    let o = pier_remote(
        &d,
        &home,
        &["-H", TLS_ADDR, "--tlsverify", "rm", "-f", "bg"],
        &[],
    );
    assert_eq!((o.code(), o.out().as_str()), (0, "bg\n"));
    d.assert_clean();
}

#[test]
fn clients_without_a_trusted_certificate_are_refused_under_tlsverify() {
    let certs = Certs::new();
    let d = tls_daemon(&certs, "--tlsverify");
    let home = d.root.join("home");
    let ca = certs.path("ca.pem");
    // No client certificate.
    let o = pier_remote(
        &d,
        &home,
        &["-H", TLS_ADDR, "--tlsverify", "--tlscacert", &ca, "ps"],
        &[],
    );
    assert_ne!(o.code(), 0);
    // A certificate from another CA.
    let o = pier_remote(
        &d,
        &home,
        &[
            "-H",
            TLS_ADDR,
            "--tlsverify",
            "--tlscacert",
            &ca,
            "--tlscert",
            &certs.path("rogue-cert.pem"),
            "--tlskey",
            &certs.path("rogue-key.pem"),
            "ps",
        ],
        &[],
    );
    assert_ne!(o.code(), 0);
    // Plain HTTP to the TLS port.
    let o = pier_remote(&d, &home, &["-H", TLS_ADDR, "ps"], &[]);
    assert_ne!(o.code(), 0);
    // A server certificate from a CA we do not trust.
    let o = pier_remote(
        &d,
        &home,
        &[
            "-H",
            TLS_ADDR,
            "--tlsverify",
            "--tlscacert",
            &certs.path("other-ca.pem"),
            "--tlscert",
            &certs.path("client-cert.pem"),
            "--tlskey",
            &certs.path("client-key.pem"),
            "ps",
        ],
        &[],
    );
    assert_ne!(o.code(), 0);
    // The unix socket is still served, unauthenticated by TLS.
    assert_eq!(d.pier_ok(&["ps", "-q"]), "");
    d.assert_clean();
}

#[test]
fn server_only_tls_needs_no_client_certificate() {
    let certs = Certs::new();
    let d = tls_daemon(&certs, "--tls");
    let home = d.root.join("home");
    // --tls without --tlsverify does not check the server either, as docker's CLI.
    let o = pier_remote(
        &d,
        &home,
        &[
            "-H", TLS_ADDR, "--tls", "run", "--rm", "busybox", "echo", "ok",
        ],
        &[],
    );
    assert_eq!((o.code(), o.out().as_str()), (0, "ok\n"));
    let o = pier_remote(
        &d,
        &home,
        &[
            "-H",
            TLS_ADDR,
            "--tlsverify",
            "--tlscacert",
            &certs.path("ca.pem"),
            "ps",
            "-q",
        ],
        &[],
    );
    assert_eq!(o.code(), 0);
    d.assert_clean();
}

#[test]
fn plain_tcp_is_refused_beyond_loopback_without_the_insecure_flag() {
    let d = TestDaemon::start_with_args(&["-H", "tcp://127.0.0.1:2375"]);
    let home = d.root.join("home");
    let o = pier_remote(&d, &home, &["-H", "tcp://127.0.0.1:2375", "ps", "-q"], &[]);
    assert_eq!(o.code(), 0, "plain TCP on loopback is served");
    d.assert_clean();

    let root = d.root.join("refused");
    let mut c = d.in_netns(&d_bin(&d));
    c.args(["daemon", "--data-root"])
        .arg(root.join("data"))
        .arg("--exec-root")
        .arg(root.join("exec"))
        .args(["-H", "tcp://0.0.0.0:2375"]);
    let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
    assert_ne!(o.code(), 0);
    assert!(o.err().contains("--insecure-tcp"), "{}", o.describe());
    assert!(
        !root.join("data").exists(),
        "refused before touching anything"
    );
}

#[test]
fn docker_cli_over_tls() {
    assert!(Path::new(DOCKER).exists(), "{DOCKER} missing");
    let certs = Certs::new();
    let d = tls_daemon(&certs, "--tlsverify");
    let home = d.root.join("home");
    let cert_path = certs.cert_path("client");
    let docker = |args: &[&str]| {
        let mut c = d.in_netns(DOCKER);
        c.args(args);
        isolate(&mut c, &home);
        c.env("DOCKER_HOST", TLS_ADDR)
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", &cert_path)
            .env("DOCKER_BUILDKIT", "0");
        let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
        eprintln!("$ docker {}\n{}", args.join(" "), o.describe());
        o
    };
    let ok = |args: &[&str]| {
        let o = docker(args);
        assert_eq!(o.code(), 0, "docker {args:?}\n{}", d.log_tail(30));
        o.out()
    };
    assert!(ok(&["version", "--format", "{{.Server.APIVersion}}"]).starts_with("1."));
    assert_eq!(ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi\n");
    assert_eq!(
        docker(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]).code(),
        3
    );
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
    assert!(pier_tests::wait_until(
        std::time::Duration::from_secs(10),
        || { docker(&["logs", "web"]).out() == "up\n" }
    ));
    assert_eq!(ok(&["rm", "-f", "web"]).trim(), "web");

    let ctx = d.root.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo built > /b\nCMD [\"cat\", \"/b\"]\n",
    )
    .unwrap();
    ok(&["build", "-q", "-t", "tlsbuilt", ctx.to_str().unwrap()]);
    assert_eq!(ok(&["run", "--rm", "tlsbuilt"]), "built\n");
    ok(&["rmi", "tlsbuilt"]);

    // Without the client certificate, the docker CLI is turned away too.
    let mut c = d.in_netns(DOCKER);
    c.args([
        "-H",
        TLS_ADDR,
        "--tlsverify",
        "--tlscacert",
        &certs.path("ca.pem"),
        "ps",
    ]);
    isolate(&mut c, &home);
    let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
    assert_ne!(o.code(), 0, "{}", o.describe());
    d.assert_clean();
}
