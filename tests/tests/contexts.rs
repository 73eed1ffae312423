//! Contexts: `pier context` and the real `docker context` share one store
//! (`$DOCKER_CONFIG/contexts`, `currentContext` in config.json), and a
//! context made by either CLI takes both to the daemon it names, TLS included.

mod remote_util;

use std::process::{Command, Output};

use pier_tests::{cmd, Input, OutputExt, TestDaemon, CMD_TIMEOUT};
use remote_util::{d_bin, isolate, tls_daemon, Certs, DOCKER, TLS_ADDR};

struct Clis<'a> {
    d: &'a TestDaemon,
    home: std::path::PathBuf,
}

impl Clis<'_> {
    fn run(&self, prog: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut c: Command = self.d.in_netns(prog);
        c.args(args);
        isolate(&mut c, &self.home);
        for (k, v) in envs {
            c.env(k, v);
        }
        let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
        eprintln!("$ {prog} {}\n{}", args.join(" "), o.describe());
        o
    }
    fn pier(&self, args: &[&str]) -> Output {
        self.run(&d_bin(self.d), args, &[])
    }
    fn docker(&self, args: &[&str]) -> Output {
        self.run(DOCKER, args, &[])
    }
    fn pier_ok(&self, args: &[&str]) -> String {
        let o = self.pier(args);
        assert_eq!(o.code(), 0, "pier {args:?}: {}", o.describe());
        o.out()
    }
    fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert_eq!(o.code(), 0, "docker {args:?}: {}", o.describe());
        o.out()
    }
}

fn names(ls_q: &str) -> Vec<&str> {
    ls_q.lines().collect()
}

#[test]
fn pier_and_docker_share_contexts() {
    let certs = Certs::new();
    let d = tls_daemon(&certs, "--tlsverify");
    let clis = Clis {
        d: &d,
        home: d.root.join("home"),
    };
    let sock = d.host();

    // pier creates a TLS context; docker lists it and connects with it.
    let tls_spec = format!(
        "host={TLS_ADDR},ca={},cert={},key={}",
        certs.path("ca.pem"),
        certs.path("client-cert.pem"),
        certs.path("client-key.pem")
    );
    assert_eq!(
        clis.pier_ok(&[
            "context",
            "create",
            "viatls",
            "--description",
            "TLS",
            "--docker",
            &tls_spec
        ]),
        "viatls\n"
    );
    assert_eq!(
        names(&clis.docker_ok(&["context", "ls", "-q"])),
        ["default", "viatls"]
    );
    let v = clis.docker_ok(&["context", "inspect", "viatls"]);
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v[0]["Endpoints"]["docker"]["Host"], TLS_ADDR);
    assert_eq!(
        v[0]["TLSMaterial"]["docker"],
        serde_json::json!(["ca.pem", "cert.pem", "key.pem"])
    );
    assert_eq!(
        clis.docker_ok(&["--context", "viatls", "run", "--rm", "busybox", "echo", "d"]),
        "d\n"
    );
    assert_eq!(
        clis.pier_ok(&["--context", "viatls", "run", "--rm", "busybox", "echo", "p"]),
        "p\n"
    );

    assert_eq!(
        clis.pier_ok(&[
            "--context",
            "viatls",
            "version",
            "--format",
            "{{.Client.Context}}"
        ]),
        "viatls\n"
    );

    // docker creates a socket context; pier lists it, uses it, and docker sees the choice.
    clis.docker_ok(&[
        "context",
        "create",
        "viasock",
        "--docker",
        &format!("host={sock}"),
    ]);
    assert_eq!(
        names(&clis.pier_ok(&["context", "ls", "-q"])),
        ["default", "viasock", "viatls"]
    );
    let ls = clis.pier_ok(&["context", "ls"]);
    assert!(ls.starts_with("NAME"), "{ls}");
    assert!(ls.lines().any(|l| l.starts_with("default *")), "{ls}");
    assert!(
        ls.lines()
            .any(|l| l.starts_with("viatls ") && l.contains(TLS_ADDR)),
        "{ls}"
    );
    clis.pier_ok(&["context", "use", "viasock"]);
    assert_eq!(
        clis.docker_ok(&["context", "inspect", "--format", "{{.Name}}"]),
        "viasock\n"
    );
    assert_eq!(clis.pier_ok(&["context", "show"]), "viasock\n");
    let id = clis.pier_ok(&["create", "--name", "through-ctx", "busybox"]);
    assert!(d.pier_ok(&["ps", "-aq", "--no-trunc"]).contains(id.trim()));
    clis.docker_ok(&["context", "use", "viatls"]);
    assert_eq!(clis.pier_ok(&["context", "show"]), "viatls\n");
    assert_eq!(
        clis.pier_ok(&["ps", "-a", "--format", "{{.Names}}"]),
        "through-ctx\n"
    );

    // DOCKER_CONTEXT and --context win over the current one; -H with --context is refused.
    let o = clis.run(
        &d_bin(&d),
        &["context", "show"],
        &[("DOCKER_CONTEXT", "viasock")],
    );
    assert_eq!(o.out(), "viasock\n");
    assert_eq!(
        clis.pier_ok(&["--context", "default", "context", "show"]),
        "default\n"
    );
    let o = clis.pier(&["-H", &sock, "--context", "viasock", "ps"]);
    assert_ne!(o.code(), 0);
    assert!(
        o.err().contains("either specify --host or --context"),
        "{}",
        o.describe()
    );
    let o = clis.pier(&["--context", "nosuch", "ps"]);
    assert_ne!(o.code(), 0);

    // Removal: the current one only with -f; either CLI's removal is seen by the other.
    assert_ne!(clis.pier(&["context", "rm", "viatls"]).code(), 0);
    clis.pier_ok(&["rm", "through-ctx"]);
    assert_eq!(clis.pier_ok(&["context", "rm", "-f", "viatls"]), "viatls\n");
    assert_eq!(
        clis.docker_ok(&["context", "inspect", "--format", "{{.Name}}"]),
        "default\n"
    );
    clis.docker_ok(&["context", "rm", "viasock"]);
    assert_eq!(names(&clis.pier_ok(&["context", "ls", "-q"])), ["default"]);
    let contexts = clis.home.join(".docker/contexts/meta");
    assert_eq!(
        std::fs::read_dir(&contexts).map(|d| d.count()).unwrap_or(0),
        0
    );
    d.assert_clean();
}
