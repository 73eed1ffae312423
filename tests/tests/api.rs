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
