//! The API on TCP behind TLS: the daemon's `-H tcp://` with `--tlsverify`
//! (mutual TLS) and `--tls` (server only), the pier CLI's TLS flags and
//! `DOCKER_*` variables, and the real docker CLI against Pier's TLS port.
//! Certificates are made by `openssl` for each test.

mod remote_util;

use std::path::Path;

use pier_tests::{cmd, Input, OutputExt, TestDaemon, CMD_TIMEOUT};
use remote_util::{
    d_bin, docker_follow_and_tty, isolate, pier_remote, tls_daemon, Certs, DOCKER, TLS_ADDR,
};

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
    assert!(
        o.err().contains("Certificate"),
        "says why: {}",
        o.describe()
    );
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
    // Plain HTTP to the TLS port: Go's answer, which docker's CLI prints too.
    let o = pier_remote(&d, &home, &["-H", TLS_ADDR, "ps"], &[]);
    assert_ne!(o.code(), 0);
    assert!(
        o.err()
            .contains("Client sent an HTTP request to an HTTPS server."),
        "{}",
        o.describe()
    );
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
    docker_follow_and_tty(&d, &|| {
        let mut c = d.in_netns(DOCKER);
        isolate(&mut c, &home);
        c.env("DOCKER_HOST", TLS_ADDR)
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", &cert_path);
        c
    });

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
