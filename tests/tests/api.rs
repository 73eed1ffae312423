//! The Engine API over raw HTTP: what clients that are not ours will send.

use pier_tests::TestDaemon;

#[test]
fn ping_and_version() {
    let d = TestDaemon::start();
    let r = d.http("GET", "/_ping", None, b"");
    assert_eq!((r.status, r.text().as_str()), (200, "OK"));
    assert!(
        r.header("Api-Version").is_some(),
        "docker clients negotiate with it: {r:?}"
    );
    let r = d.http("GET", "/v1.41/version", None, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(v["ApiVersion"].is_string() && v["Os"] == "linux", "{v}");
    d.assert_clean();
}

#[test]
fn bad_json_is_a_400_with_a_message() {
    let d = TestDaemon::start();
    let json = Some("application/json");
    for (path, body) in [
        ("/v1.41/containers/create", &b"{not json"[..]),
        ("/containers/create", &b"{\"Image\": 5}"[..]),
        ("/v1.41/containers/create", &b"[1,2"[..]),
    ] {
        let r = d.http("POST", path, json, body);
        assert_eq!(
            r.status,
            400,
            "{path} {:?}: {}",
            String::from_utf8_lossy(body),
            r.text()
        );
        let v = r.json();
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "errors are {{\"message\": ...}}: {v}"
        );
    }
    let r = d.http("GET", "/v1.41/containers/nosuchcontainer/json", None, b"");
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.json()["message"]
        .as_str()
        .unwrap_or("")
        .contains("nosuchcontainer"));
    let r = d.http("GET", "/v1.41/images/nosuchimage:1/json", None, b"");
    assert_eq!(r.status, 404, "{}", r.text());
    // No half-created container was left behind by the bad requests.
    let r = d.http("GET", "/v1.41/containers/json?all=1", None, b"");
    assert_eq!((r.status, r.json()), (200, serde_json::json!([])));
    d.assert_clean();
}

#[test]
fn exec_stream_is_framed_by_the_start_requests_tty() {
    let d = TestDaemon::with_busybox();
    let id = d.pier_ok(&["run", "-d", "busybox", "sleep", "60"]);
    let id = id.trim();
    let json = Some("application/json");
    let exec = |tty: bool| -> String {
        let body = format!(r#"{{"Cmd":["printf","hi"],"AttachStdout":true,"Tty":{tty}}}"#);
        let r = d.http(
            "POST",
            &format!("/v1.41/containers/{id}/exec"),
            json,
            body.as_bytes(),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["Id"].as_str().unwrap_or_default().to_string()
    };
    // A TTY exec started with `Tty: false` (docker-py's default): stdout frames.
    let x = exec(true);
    let r = d.http(
        "POST",
        &format!("/v1.41/exec/{x}/start"),
        json,
        br#"{"Tty":false}"#,
    );
    assert_eq!(r.body, b"\x01\x00\x00\x00\x00\x00\x00\x02hi", "{r:?}");
    // Started with `Tty: true` (docker's CLI): raw.
    let x = exec(true);
    let r = d.http(
        "POST",
        &format!("/v1.41/exec/{x}/start"),
        json,
        br#"{"Tty":true}"#,
    );
    assert_eq!(r.body, b"hi", "{r:?}");
    // `detachKeys` as docker-py spells it is taken.
    let body = br#"{"Cmd":["true"],"detachKeys":"ctrl-x"}"#;
    let r = d.http("POST", &format!("/v1.41/containers/{id}/exec"), json, body);
    let x = r.json()["Id"].as_str().unwrap_or_default().to_string();
    let r = d.http("GET", &format!("/v1.41/exec/{x}/json"), None, b"");
    assert_eq!(r.json()["DetachKeys"], "ctrl-x", "{}", r.text());
    d.pier_ok(&["rm", "-f", id]);
    d.assert_clean();
}

/// Docker 25+ clients send `NetworkMode: default` with an endpoint keyed
/// `default` when no network is given: that is the default bridge.
#[test]
fn the_default_network_by_its_new_clients_name() {
    let d = TestDaemon::with_busybox();
    let body = br#"{"Image":"busybox","Cmd":["sleep","100"],
        "HostConfig":{"NetworkMode":"default"},
        "NetworkingConfig":{"EndpointsConfig":{"default":{"Aliases":null}}}}"#;
    let r = d.http(
        "POST",
        "/v1.43/containers/create",
        Some("application/json"),
        body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_string();
    let r = d.http("POST", &format!("/v1.43/containers/{id}/start"), None, b"");
    assert_eq!(r.status, 204, "{}", r.text());
    let v = d.inspect(&id);
    let nets = v["NetworkSettings"]["Networks"].as_object().unwrap();
    assert_eq!(nets.keys().collect::<Vec<_>>(), ["bridge"], "{v}");
    d.pier_ok(&["rm", "-f", &id]);
    d.assert_clean();
}
