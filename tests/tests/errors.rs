//! Engine errors as Docker's clients see them: the status each kind answers
//! and the `{"message": ...}` body, through the raw API.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use pier_tests::TestDaemon;

/// A registry on the daemon's loopback that answers every request with
/// `status` and a distribution-spec error body of `code`. Returns the server
/// (killed on drop) and its `host:port`.
fn refusing_registry(d: &TestDaemon, status: u16, code: &str) -> (Server, String) {
    let script = format!(
        r#"
import http.server, json
body = json.dumps({{"errors": [{{"code": "{code}", "message": "refused by the test"}}]}}).encode()
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        self.send_response({status})
        self.send_header("Content-Type", "application/json")
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        if {status} == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="pier-test"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_HEAD = do_POST = do_PUT = answer
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#
    );
    let mut child = d
        .in_netns("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 for a fake registry");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("the fake registry's port");
    (Server(child), format!("127.0.0.1:{port}"))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn post_json(d: &TestDaemon, path: &str, body: &str) -> (u16, serde_json::Value) {
    let r = d.http("POST", path, Some("application/json"), body.as_bytes());
    let v = if r.status == 304 || r.text().is_empty() {
        serde_json::Value::Null
    } else {
        r.json()
    };
    (r.status, v)
}

fn message(v: &serde_json::Value) -> &str {
    v["message"].as_str().unwrap_or_default()
}

#[test]
fn container_errors_answer_dockers_statuses() {
    let d = TestDaemon::with_busybox();
    let r = d.http("GET", "/containers/nope/json", None, b"");
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.text(), r#"{"message":"No such container: nope"}"#);

    // A command that does not exist: the runtime's words, as a 400.
    let id = d.pier_ok(&["create", "--name", "nocmd", "busybox", "/no/such/command"]);
    let (st, v) = post_json(&d, &format!("/containers/{}/start", id.trim()), "");
    assert_eq!(st, 400, "{v}");
    assert!(
        message(&v).contains("/no/such/command") && message(&v).contains("no such file"),
        "{v}"
    );

    // Starting what runs already: 304, and no body.
    d.pier_ok(&["run", "-d", "--name", "up", "busybox", "sleep", "60"]);
    let r = d.http("POST", "/containers/up/start", None, b"");
    assert_eq!((r.status, r.text().as_str()), (304, ""));

    // A name taken: 409.
    let (st, v) = post_json(
        &d,
        "/containers/create?name=up",
        r#"{"Image":"busybox","Cmd":["true"]}"#,
    );
    assert_eq!(st, 409, "{v}");
    assert!(message(&v).contains("is already in use"), "{v}");

    d.pier_ok(&["rm", "-f", "up", "nocmd"]);
    d.assert_clean();
}

#[test]
fn registry_errors_answer_by_what_the_registry_said() {
    let d = TestDaemon::start();
    let pull = |reg: &str| {
        post_json(
            &d,
            &format!("/images/create?fromImage={reg}/pier-none&tag=latest"),
            "",
        )
    };
    let login = |reg: &str| {
        post_json(
            &d,
            "/auth",
            &format!(r#"{{"username":"a","password":"b","serveraddress":"{reg}"}}"#),
        )
    };
    let inspect = |reg: &str| {
        let r = d.http(
            "GET",
            &format!("/distribution/{reg}/pier-none:latest/json"),
            None,
            b"",
        );
        (r.status, r.json())
    };
    let denied = |reg: &str| {
        format!(
            "pull access denied for {reg}/pier-none, repository does not exist or may require 'docker login': "
        )
    };

    // Nothing listens: unavailable (503), with the connection's own words.
    let closed = "127.0.0.1:9";
    for (what, (st, v)) in [
        ("pull", pull(closed)),
        ("login", login(closed)),
        ("inspect", inspect(closed)),
    ] {
        assert_eq!(st, 503, "{what}: {v}");
        assert!(message(&v).contains("Connection refused"), "{what}: {v}");
    }

    // 401: a login is refused as unauthorized; a pull or an inspect reads
    // as Docker's "pull access denied" (404).
    let (srv1, reg) = refusing_registry(&d, 401, "UNAUTHORIZED");
    let (st, v) = login(&reg);
    assert_eq!(st, 401, "{v}");
    assert!(message(&v).contains("refused by the test"), "{v}");
    for (what, (st, v)) in [("pull", pull(&reg)), ("inspect", inspect(&reg))] {
        assert_eq!(st, 404, "{what}: {v}");
        assert!(message(&v).starts_with(&denied(&reg)), "{what}: {v}");
    }

    // 403 DENIED: forbidden for a login, "pull access denied" for a pull.
    let (srv2, reg) = refusing_registry(&d, 403, "DENIED");
    let (st, v) = login(&reg);
    assert_eq!(st, 403, "{v}");
    assert!(message(&v).ends_with("denied: refused by the test"), "{v}");
    let (st, v) = pull(&reg);
    assert_eq!(st, 404, "{v}");
    assert!(message(&v).starts_with(&denied(&reg)), "{v}");

    // 404 NAME_UNKNOWN: not found, in the registry's words.
    let (srv3, reg) = refusing_registry(&d, 404, "NAME_UNKNOWN");
    for (what, (st, v)) in [("pull", pull(&reg)), ("inspect", inspect(&reg))] {
        assert_eq!(st, 404, "{what}: {v}");
        assert_eq!(
            message(&v),
            format!(
                "manifest for {reg}/pier-none:latest not found: name unknown: refused by the test"
            ),
            "{what}"
        );
    }
    // They run in the daemon's namespace, where a leftover process is a leak.
    drop((srv1, srv2, srv3));
    d.assert_clean();
}
