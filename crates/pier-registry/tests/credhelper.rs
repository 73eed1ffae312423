//! Credential helpers (`credsStore`, `credHelpers`) with a fake
//! `docker-credential-piertest` on PATH. Its own test binary, because it
//! changes PATH for the whole process.

use std::os::unix::fs::PermissionsExt;

use pier_registry::{AuthConfig, DockerConfig};

const HELPER: &str = r#"#!/bin/sh
d="$(dirname "$0")/store"
case "$1" in
  get) read server; if [ -f "$d" ]; then cat "$d"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store) cat > "$d" ;;
  erase) read server; rm -f "$d" ;;
  *) exit 2 ;;
esac
"#;

#[test]
fn helpers_store_get_and_erase() {
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-piertest");
    std::fs::write(&helper, HELPER).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The helper is found on PATH, as Docker's are; a test may change the environment.
    // SAFETY: only this test runs in this binary, and no other thread of it reads
    // the environment while PATH is set.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PATH", &path)
    };

    let cfg_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg_dir.path().join("config.json"),
        r#"{"credsStore":"piertest"}"#,
    )
    .unwrap();
    let mut c = DockerConfig::load(cfg_dir.path()).unwrap();
    assert!(c.credentials("127.0.0.1:5000").unwrap().is_none());
    c.store("127.0.0.1:5000", &AuthConfig::basic("hu", "hp"))
        .unwrap();
    // The secret went to the helper, not the file.
    let file = std::fs::read_to_string(cfg_dir.path().join("config.json")).unwrap();
    assert!(!file.contains("hp"), "{file}");
    assert!(file.contains("127.0.0.1:5000"), "{file}");
    let got = c.credentials("127.0.0.1:5000").unwrap().unwrap();
    assert_eq!((got.username.as_str(), got.password.as_str()), ("hu", "hp"));
    assert!(c.erase("127.0.0.1:5000").unwrap());
    assert!(c.credentials("127.0.0.1:5000").unwrap().is_none());

    // An identity token comes back as `<token>`.
    let tok = AuthConfig {
        identitytoken: "refresh-me".into(),
        ..Default::default()
    };
    c.store("reg.test", &tok).unwrap();
    let got = c.credentials("reg.test").unwrap().unwrap();
    assert_eq!(got.identitytoken, "refresh-me");
    assert!(got.username.is_empty());

    // credHelpers wins over auths for its registry.
    std::fs::write(
        cfg_dir.path().join("config.json"),
        r#"{"credHelpers":{"reg.test":"piertest"},"auths":{"reg.test":{"auth":"dTpw"},"other.test":{"auth":"dTpw"}}}"#,
    )
    .unwrap();
    let c = DockerConfig::load(cfg_dir.path()).unwrap();
    assert_eq!(
        c.credentials("reg.test").unwrap().unwrap().identitytoken,
        "refresh-me"
    );
    assert_eq!(c.credentials("other.test").unwrap().unwrap().username, "u");
}
