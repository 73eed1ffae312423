//! `pier build` and `POST /build` against a real daemon: RUN steps' networks,
//! the classic JSON stream (stderr in red), `cachefrom` and `extrahosts`.

use pier_tests::tar::{build as tar, Entry};
use pier_tests::{cmd, Input, OutputExt, TestDaemon, CMD_TIMEOUT};

/// A context directory with one Dockerfile, removed when dropped.
struct Context(std::path::PathBuf);

impl Context {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn context(dockerfile: &str) -> Context {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("pier-build-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    Context(dir)
}

/// `POST /build` with a context holding only `dockerfile`; the JSON messages.
fn api_build(d: &TestDaemon, query: &str, dockerfile: &str) -> Vec<serde_json::Value> {
    let body = tar(&[Entry::File {
        name: "Dockerfile",
        data: dockerfile.as_bytes(),
    }]);
    let r = d.http(
        "POST",
        &format!("/build?{query}"),
        Some("application/x-tar"),
        &body,
    );
    r.text()
        .split("\r\n")
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn streams(msgs: &[serde_json::Value]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| m["stream"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn run_steps_sit_on_the_default_bridge_unless_told_otherwise() {
    let d = TestDaemon::with_busybox();
    // Docker's builder puts RUN on the default bridge: an eth0 with an
    // address from its subnet and a default route through its gateway.
    let c = context(
        "FROM busybox\n\
         RUN ip -4 -o addr show eth0 > /bridge.txt && ip route >> /bridge.txt\n\
         RUN --network=none sh -c '! ip link show eth0 && echo none-ok > /none.txt'\n",
    );
    let ctx = c.path().to_str().unwrap();
    d.pier_ok(&["build", "-q", "-t", "netbuild", ctx]);
    let out = d.pier_ok(&["run", "--rm", "netbuild", "cat", "/bridge.txt", "/none.txt"]);
    assert!(out.contains("inet 172.18."), "{out}");
    assert!(out.contains("default via 172.18.0.1"), "{out}");
    assert!(out.ends_with("none-ok\n"), "{out}");

    // `--network host` for the whole build: the daemon's namespace (loopback only).
    let c = context("FROM busybox\nRUN ! ip link show eth0 && ip link show lo > /host.txt\n");
    let ctx = c.path().to_str().unwrap();
    d.pier_ok(&["build", "-q", "--network", "host", "-t", "hostbuild", ctx]);
    let out = d.pier_ok(&["run", "--rm", "hostbuild", "cat", "/host.txt"]);
    assert!(out.contains("lo:"), "{out}");

    // `--network none`: a failing ping fails the build with its exit code.
    let msgs = api_build(
        &d,
        "networkmode=none&nocache=1&t=nonebuild",
        "FROM busybox\nRUN ping -c1 -W1 172.18.0.1\n",
    );
    let last = msgs.last().unwrap();
    assert_eq!(last["errorDetail"]["code"], 1, "{msgs:?}");
    assert_eq!(d.pier(&["image", "inspect", "nonebuild"]).code(), 1);
    d.pier_ok(&["rmi", "netbuild", "hostbuild"]);
    d.assert_clean();
}

#[test]
fn stream_extra_hosts_and_cache_from_follow_the_classic_builder() {
    let d = TestDaemon::with_busybox();
    // RUN's stderr comes back wrapped in red, as Docker's classic stream has it.
    let msgs = api_build(
        &d,
        "nocache=1",
        "FROM busybox\nRUN sh -c '>&2 echo on-stderr; echo on-stdout'\n",
    );
    let s = streams(&msgs);
    assert!(
        s.iter().any(|l| l == "\u{1b}[91mon-stderr\n\u{1b}[0m"),
        "{s:?}"
    );
    assert!(s.iter().any(|l| l == "on-stdout\n"), "{s:?}");

    // extrahosts lands in RUN's /etc/hosts (and not in the image).
    let msgs = api_build(
        &d,
        "t=hosts&extrahosts=one.test:127.0.0.1&extrahosts=two.test:127.0.0.2",
        "FROM busybox\nRUN ping -c1 -W1 one.test && cp /etc/hosts /hosts-file\n",
    );
    assert!(msgs.last().unwrap().get("error").is_none(), "{msgs:?}");
    let out = d.pier_ok(&["run", "--rm", "hosts", "cat", "/hosts-file"]);
    assert!(out.contains("127.0.0.1\tone.test"), "{out}");
    assert!(out.contains("127.0.0.2\ttwo.test"), "{out}");

    // cachefrom: the cache serves only steps the named images have.
    let df = "FROM busybox\nENV FOO=bar\nRUN touch baz\nRUN touch bax\n";
    api_build(&d, "t=build1", df);
    let hits = |msgs: &[serde_json::Value]| {
        streams(msgs)
            .iter()
            .filter(|s| s.contains("Using cache"))
            .count()
    };
    let q = format!("t=build2&cachefrom={}", urlencode(r#"["build1"]"#));
    assert_eq!(hits(&api_build(&d, &q, df)), 3);
    let q = format!("t=build3&cachefrom={}", urlencode(r#"["nosuchtag"]"#));
    assert_eq!(hits(&api_build(&d, &q, df)), 0);
    d.pier_ok(&["rmi", "hosts", "build1", "build2", "build3"]);

    // A build that fails before sending anything is an HTTP error, as
    // Docker's postBuild answers (docker-py's regression test 443); a
    // failure after the first step stays in the 200 stream.
    let empty = tar(&[]);
    let r = d.http("POST", "/build", Some("application/x-tar"), &empty);
    assert!(r.status >= 400, "{} {}", r.status, r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("Cannot locate specified Dockerfile")),
        "{}",
        r.text()
    );
    let r = d.http(
        "POST",
        "/build?q=1",
        Some("application/x-tar"),
        &tar(&[Entry::File {
            name: "Dockerfile",
            data: b"FROM busybox\nRUN exit 3\n",
        }]),
    );
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    assert!(
        r.text().contains("returned a non-zero code: 3"),
        "{}",
        r.text()
    );
    d.assert_clean();
}

#[test]
fn docker_cli_tar_and_pier_in_place_contexts_build_the_same_image() {
    let d = TestDaemon::with_busybox();
    let c = context("FROM busybox\nCOPY . /ctx\nRUN --mount=type=bind,rw,target=/m rm /m/keep\n");
    let p = c.path();
    std::fs::create_dir_all(p.join("sub")).unwrap();
    std::fs::write(p.join("keep"), "k\n").unwrap();
    std::fs::write(p.join("sub/skip.tmp"), "s\n").unwrap();
    std::fs::write(p.join(".dockerignore"), "**/*.tmp\n").unwrap();
    let ctx = p.to_str().unwrap();
    // `pier build` names the directory; the daemon reads it in place (and the
    // rw bind must not touch the user's files).
    let in_place = d.pier_ok(&["build", "-q", "-t", "inplace", ctx]);
    assert!(p.join("keep").exists(), "an rw bind wrote to the context");
    // The classic protocol: docker's client sends a tar.
    let mut docker = std::process::Command::new("/usr/bin/docker");
    docker
        .args(["build", "-q", "-t", "viatar", ctx])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CONFIG", d.root.join("docker-config"));
    let o = cmd::run(docker, Input::Null, CMD_TIMEOUT);
    assert_eq!(o.code(), 0, "{}", o.describe());
    assert_eq!(
        o.out().trim(),
        in_place.trim(),
        "same image from both contexts"
    );
    let ls = d.pier_ok(&["run", "--rm", "inplace", "find", "/ctx"]);
    assert!(ls.contains("/ctx/keep") && !ls.contains("skip.tmp"), "{ls}");
    d.pier_ok(&["rmi", "inplace", "viatar"]);
    d.assert_clean();
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn independent_stages_build_at_the_same_time() {
    let d = TestDaemon::with_busybox();
    // The two stages' RUNs meet through a shared cache mount: each marks
    // itself and waits (10 s at most) for the other, so they only both pass
    // when they run at the same time; no clock is measured.
    let meet = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,id=meet,target=/m touch /m/{me}; i=0; \
             while [ ! -e /m/{other} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; \
             [ -e /m/{other} ] && echo {me} > /{me}.txt"
        )
    };
    let c = context(&format!(
        "FROM busybox AS a\n{}\nFROM busybox AS b\n{}\n\
         FROM busybox\nCOPY --from=a /a.txt /\nCOPY --from=b /b.txt /\n",
        meet("a", "b"),
        meet("b", "a"),
    ));
    let ctx = c.path().to_str().unwrap();
    let out = d.pier_ok(&["build", "-t", "parallel", ctx]);
    // The classic stream, in Dockerfile order with the usual numbering.
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("Step ")).collect();
    assert_eq!(
        steps,
        [
            "Step 1/7 : FROM busybox AS a",
            &format!("Step 2/7 : {}", meet("a", "b")),
            "Step 3/7 : FROM busybox AS b",
            &format!("Step 4/7 : {}", meet("b", "a")),
            "Step 5/7 : FROM busybox",
            "Step 6/7 : COPY --from=a /a.txt /",
            "Step 7/7 : COPY --from=b /b.txt /",
        ],
        "{out}"
    );
    let out = d.pier_ok(&["run", "--rm", "parallel", "cat", "/a.txt", "/b.txt"]);
    assert_eq!(out, "a\nb\n");
}

#[test]
fn build_options_pier_does_not_apply_are_refused() {
    let d = TestDaemon::start();
    // Zero values are what docker's CLI sends on every build: they ask for nothing.
    for q in ["memory=1073741824", "cpusetcpus=0", "squash=1"] {
        let r = d.http("POST", &format!("/v1.41/build?{q}"), None, b"");
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        let key = q.split('=').next().unwrap();
        assert!(
            r.text()
                .contains(&format!("not supported by Pier: build option {key}")),
            "{q}: {}",
            r.text()
        );
    }
    d.assert_clean();
}
