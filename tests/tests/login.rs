//! Logins: `pier login` and `docker login` share `$DOCKER_CONFIG/config.json`
//! (mode 0600) and credential helpers, so each CLI pushes with the other's
//! login, against an htpasswd registry on the daemon's loopback.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use pier_tests::{cmd, wait_until, Input, OutputExt, TestDaemon, CMD_TIMEOUT};

const DOCKER: &str = "/usr/bin/docker";
const REG: &str = "127.0.0.1:5000";
const USER: &str = "pier";
const PASSWORD: &str = "login-pw";

/// docker-registry with htpasswd auth on the daemon's loopback.
struct Registry {
    child: Child,
}

impl Registry {
    fn start(d: &TestDaemon) -> Registry {
        let dir = d.root.join("registry");
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let mut c = Command::new("python3");
        c.args([
            "-W",
            "ignore",
            "-c",
            "import crypt,sys; print(sys.argv[1]+':'+crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
            USER,
            PASSWORD,
        ]);
        let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
        assert!(o.status.success(), "htpasswd: {}", o.describe());
        std::fs::write(dir.join("htpasswd"), o.out()).unwrap();
        std::fs::write(
            dir.join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {data}\nhttp:\n  addr: {REG}\nauth:\n  htpasswd:\n    realm: pier-login\n    path: {pw}\n",
                data = dir.join("data").display(),
                pw = dir.join("htpasswd").display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = d
            .in_netns("/usr/bin/docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let up = wait_until(Duration::from_secs(20), || {
            d.in_netns("bash")
                .args(["-c", "exec 3<>/dev/tcp/127.0.0.1/5000"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(up, "the registry did not come up");
        Registry { child }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A HOME and DOCKER_CONFIG of the test's own, and a PATH with its helper.
struct Env {
    home: PathBuf,
    bin: PathBuf,
}

impl Env {
    fn new(d: &TestDaemon) -> Env {
        let home = d.root.join("home");
        let bin = d.root.join("helper-bin");
        std::fs::create_dir_all(home.join(".docker")).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        Env { home, bin }
    }

    fn config(&self) -> PathBuf {
        self.home.join(".docker/config.json")
    }

    fn apply(&self, c: &mut Command, d: &TestDaemon) {
        for v in [
            "PIER_HOST",
            "DOCKER_CONTEXT",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
        ] {
            c.env_remove(v);
        }
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.env("HOME", &self.home)
            .env("DOCKER_CONFIG", self.home.join(".docker"))
            .env("DOCKER_HOST", d.host())
            .env("PATH", path);
    }

    fn run(&self, d: &TestDaemon, prog: &str, args: &[&str], stdin: &[u8]) -> Output {
        let mut c = Command::new(prog);
        c.args(args);
        self.apply(&mut c, d);
        let o = cmd::run(c, Input::Bytes(stdin), CMD_TIMEOUT);
        eprintln!("$ {prog} {}\n{}", args.join(" "), o.describe());
        o
    }

    fn pier(&self, d: &TestDaemon, args: &[&str], stdin: &[u8]) -> Output {
        let bin = d.pier_cmd().get_program().to_owned();
        self.run(d, bin.to_str().unwrap(), args, stdin)
    }

    fn docker(&self, d: &TestDaemon, args: &[&str], stdin: &[u8]) -> Output {
        self.run(d, DOCKER, args, stdin)
    }

    fn auths(&self) -> serde_json::Value {
        let text = std::fs::read(self.config()).unwrap();
        serde_json::from_slice::<serde_json::Value>(&text).unwrap()["auths"].clone()
    }

    /// `docker-credential-test`, keeping secrets in files under `store`.
    fn install_helper(&self, store: &Path) {
        std::fs::create_dir_all(store).unwrap();
        let script = format!(
            r#"#!/bin/sh
store={store}
echo "$1" >> "$store/calls"
case "$1" in
store) json=$(cat); server=$(printf %s "$json" | jq -r .ServerURL)
       key=$(printf %s "$server" | sha256sum | cut -c1-16)
       printf %s "$json" > "$store/$key" ;;
get)   server=$(cat); key=$(printf %s "$server" | sha256sum | cut -c1-16)
       if [ -f "$store/$key" ]; then cat "$store/$key"
       else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) server=$(cat); key=$(printf %s "$server" | sha256sum | cut -c1-16)
       rm -f "$store/$key" ;;
*) exit 1 ;;
esac
"#,
            store = store.display()
        );
        let p = self.bin.join("docker-credential-test");
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn tag(d: &TestDaemon, name: &str) {
    d.pier_ok(&["tag", "busybox:latest", name]);
}

#[test]
fn pier_login_then_docker_push_and_docker_login_then_pier_push() {
    assert!(Path::new(DOCKER).exists(), "{DOCKER} missing");
    let d = TestDaemon::with_busybox();
    let reg = Registry::start(&d);
    let env = Env::new(&d);
    let img1 = format!("{REG}/bb:1");
    let img2 = format!("{REG}/bb:2");
    tag(&d, &img1);
    tag(&d, &img2);

    // No login: the registry refuses the push.
    let o = env.pier(&d, &["push", &img1], b"");
    assert_ne!(o.code(), 0);

    // A wrong password is refused and stores nothing.
    let o = env.pier(
        &d,
        &["login", "-u", USER, "--password-stdin", REG],
        b"wrong\n",
    );
    assert_ne!(o.code(), 0);
    assert!(!env.config().exists() || env.auths().get(REG).is_none());

    let o = env.pier(
        &d,
        &["login", "-u", USER, "--password-stdin", REG],
        PASSWORD.as_bytes(),
    );
    assert_eq!(o.code(), 0);
    assert!(o.out().contains("Login Succeeded"), "{}", o.describe());
    let mode = std::fs::metadata(env.config())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "config.json holds secrets");
    assert!(env.auths()[REG]["auth"].is_string(), "{}", env.auths());
    assert!(
        !env.home.join(".pier").exists(),
        "nothing written to ~/.pier"
    );

    // docker reads the login pier wrote.
    let o = env.docker(&d, &["push", &img1], b"");
    assert_eq!(
        o.code(),
        0,
        "docker push with pier's login\n{}",
        d.log_tail(20)
    );

    let o = env.pier(&d, &["logout", REG], b"");
    assert_eq!(o.code(), 0);
    assert!(env.auths().get(REG).is_none(), "{}", env.auths());
    assert_ne!(env.pier(&d, &["push", &img2], b"").code(), 0);

    // pier reads the login docker wrote.
    let o = env.docker(
        &d,
        &["login", "-u", USER, "--password-stdin", REG],
        PASSWORD.as_bytes(),
    );
    assert_eq!(o.code(), 0);
    let o = env.pier(&d, &["push", &img2], b"");
    assert_eq!(
        o.code(),
        0,
        "pier push with docker's login\n{}",
        d.log_tail(20)
    );
    // And a pull through a fresh name, with the same login.
    d.pier_ok(&["rmi", &img1]);
    assert_eq!(env.pier(&d, &["pull", &img1], b"").code(), 0);
    assert_eq!(env.docker(&d, &["logout", REG], b"").code(), 0);
    drop(reg);
    d.assert_clean();
}

#[test]
fn logins_go_through_a_credential_helper() {
    assert!(Path::new(DOCKER).exists(), "{DOCKER} missing");
    let d = TestDaemon::with_busybox();
    let reg = Registry::start(&d);
    let env = Env::new(&d);
    let store = d.root.join("helper-store");
    env.install_helper(&store);
    std::fs::write(
        env.config(),
        r#"{"credsStore":"test","psFormat":"table {{.Names}}"}"#,
    )
    .unwrap();
    let img1 = format!("{REG}/helped:1");
    let img2 = format!("{REG}/helped:2");
    tag(&d, &img1);
    tag(&d, &img2);

    let o = env.pier(
        &d,
        &["login", "-u", USER, "--password-stdin", REG],
        PASSWORD.as_bytes(),
    );
    assert_eq!(o.code(), 0);
    let text = std::fs::read_to_string(env.config()).unwrap();
    assert!(
        !text.contains("auth\""),
        "the secret went to the helper, not the file: {text}"
    );
    assert!(text.contains("psFormat"), "other settings are kept: {text}");
    let calls = std::fs::read_to_string(store.join("calls")).unwrap();
    assert!(calls.contains("store"), "{calls}");

    assert_eq!(env.pier(&d, &["push", &img1], b"").code(), 0);
    assert!(std::fs::read_to_string(store.join("calls"))
        .unwrap()
        .contains("get"));
    let o = env.docker(&d, &["push", &img2], b"");
    assert_eq!(o.code(), 0, "docker push through the same helper");

    // A registry-specific helper wins over credsStore.
    std::fs::write(
        env.config(),
        format!(r#"{{"credsStore":"absent-helper","credHelpers":{{"{REG}":"test"}}}}"#),
    )
    .unwrap();
    assert_eq!(env.pier(&d, &["push", &img1], b"").code(), 0);

    let o = env.pier(&d, &["logout", REG], b"");
    assert_eq!(o.code(), 0);
    assert!(std::fs::read_to_string(store.join("calls"))
        .unwrap()
        .contains("erase"));
    assert_ne!(env.pier(&d, &["push", &img2], b"").code(), 0, "logged out");
    drop(reg);
    d.assert_clean();
}
