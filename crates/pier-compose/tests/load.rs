//! Loading fixtures end to end (no daemon): discovery, `.env`, interpolation,
//! anchors and merge keys, `-f` merging, profiles, errors with file and line.

use pier_compose::load::{load, normalize_project_name, Options};
use pier_compose::model::Condition;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn opts(dir: &str, env: &[(&str, &str)]) -> Options {
    Options {
        cwd: fixture(dir),
        os_env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        ..Default::default()
    }
}

#[test]
fn simple_project_normalises() {
    let p = load(&opts(
        "simple",
        &[("FROM_SHELL", "shell"), ("WEB_PORT", "8123")],
    ))
    .unwrap();
    assert_eq!(p.name, "simple");
    assert_eq!(p.config_files, vec![fixture("simple/compose.yaml")]);
    assert_eq!(p.env_files, vec![fixture("simple/.env")]);
    let web = &p.services["web"];
    // Merge key from the anchor, `x-` keys dropped.
    assert_eq!(web.restart.as_deref(), Some("unless-stopped"));
    assert_eq!(web.labels["team"].as_deref(), Some("web"));
    assert_eq!(web.ports[0].published.as_deref(), Some("8123"));
    assert_eq!(web.ports[0].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(web.ports[0].target, 5000);
    assert_eq!(web.environment["REDIS_HOST"].as_deref(), Some("redis"));
    assert_eq!(web.environment["FROM_SHELL"].as_deref(), Some("shell"));
    assert_eq!(web.depends_on["redis"].condition, Condition::ServiceHealthy);
    let b = web.build.as_ref().unwrap().long();
    assert_eq!(
        b.context.as_deref(),
        Some(fixture("simple/app").to_str().unwrap())
    );
    assert_eq!(web.volumes[1].kind, "bind");
    assert_eq!(
        web.volumes[1].source.as_deref(),
        Some(fixture("simple/conf").to_str().unwrap())
    );
    assert!(web.networks.contains_key("default"));
    assert!(p.networks.contains_key("default"));
    let redis = &p.services["redis"];
    // `.env` supplies TAG; `$$` is a literal dollar.
    assert_eq!(redis.image.as_deref(), Some("busybox:1.36"));
    assert_eq!(
        redis.command.clone().unwrap(),
        vec!["sh", "-c", "echo $HOME"]
    );
}

#[test]
fn process_environment_wins_over_dotenv_and_unset_warns() {
    let p = load(&opts("simple", &[("TAG", "musl")])).unwrap();
    assert_eq!(p.services["redis"].image.as_deref(), Some("busybox:musl"));
    assert!(!p.services["web"].environment.contains_key("FROM_SHELL"));
    let p = load(&opts("interp", &[("NEEDED", "x")])).unwrap();
    assert!(p.warnings.is_empty());
}

#[test]
fn two_files_merge_with_reset() {
    let mut o = opts("merge", &[]);
    o.files = vec!["compose.yaml".into(), "second.yaml".into()];
    let p = load(&o).unwrap();
    let web = &p.services["web"];
    assert_eq!(web.command.clone().unwrap(), vec!["sleep", "2"]);
    assert!(web.ports.is_empty());
    assert_eq!(web.environment.len(), 2);
    assert!(web.networks.contains_key("front"));
    assert!(p.services.contains_key("worker"));
    assert_eq!(p.config_files.len(), 2);
}

#[test]
fn override_file_is_found_from_a_subdirectory() {
    let p = load(&opts("override-discovery/sub", &[])).unwrap();
    assert_eq!(p.config_files.len(), 2);
    assert_eq!(p.name, "override-discovery");
    assert_eq!(p.services["web"].image.as_deref(), Some("busybox:override"));
}

#[test]
fn profiles_from_flag_and_environment() {
    let p = load(&opts("profiles", &[])).unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), vec!["app"]);
    let mut o = opts("profiles", &[]);
    o.profiles = vec!["tools".into()];
    let p = load(&o).unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), vec!["app", "tools"]);
    let p = load(&opts("profiles", &[("COMPOSE_PROFILES", "debug")])).unwrap();
    assert_eq!(
        p.services.keys().collect::<Vec<_>>(),
        vec!["app", "debug", "tools"]
    );
}

#[test]
fn project_names() {
    assert_eq!(normalize_project_name("My App.v2"), "myappv2");
    assert_eq!(normalize_project_name("_x-Y"), "x-y");
    let p = load(&opts("envfile", &[])).unwrap();
    assert_eq!(p.name, "my_named");
    let p = load(&opts("envfile", &[("COMPOSE_PROJECT_NAME", "fromenv")])).unwrap();
    assert_eq!(p.name, "fromenv");
    let mut o = opts("envfile", &[]);
    o.project_name = Some("Bad Name".into());
    let e = load(&o).unwrap_err().to_string();
    assert!(e.starts_with("invalid project name \"Bad Name\""), "{e}");
}

#[test]
fn env_file_then_environment() {
    let p = load(&opts("envfile", &[])).unwrap();
    let env = &p.services["web"].environment;
    assert_eq!(env["A"].as_deref(), Some("from-file"));
    assert_eq!(env["B"].as_deref(), Some("from-compose"));
}

fn load_err(dir: &str, file: &str, env: &[(&str, &str)]) -> String {
    let mut o = opts(dir, env);
    o.files = vec![file.into()];
    load(&o).unwrap_err().to_string()
}

#[test]
fn errors_name_file_line_and_key() {
    let f = fixture("bad/ports.yaml");
    assert_eq!(
        load_err("bad", "ports.yaml", &[]),
        format!(
            "{}:6: services.web.ports[1]: invalid port \"80:80:80\"",
            f.display()
        )
    );
    let f = fixture("bad/develop.yaml");
    assert_eq!(
        load_err("bad", "develop.yaml", &[]),
        format!(
            "{}:4: services.web.develop: not supported by pier compose yet",
            f.display()
        )
    );
    let e = load_err("bad", "unknown.yaml", &[]);
    assert!(
        e.ends_with(
            "unknown.yaml:4: services.web.imagee: additional property imagee is not allowed"
        ),
        "{e}"
    );
    let f = fixture("interp/compose.yaml");
    assert_eq!(
        load_err("interp", "compose.yaml", &[]),
        format!(
            "{}:5: error while interpolating services.web.environment.NEEDED: required variable NEEDED is missing a value: set NEEDED please",
            f.display()
        )
    );
}

#[test]
fn depends_on_restart_is_refused_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  a:\n    image: busybox\n    depends_on:\n      b:\n        condition: service_started\n        restart: true\n  b:\n    image: busybox\n",
    )
    .unwrap();
    let o = Options {
        cwd: dir.path().to_path_buf(),
        ..Default::default()
    };
    assert_eq!(
        load(&o).unwrap_err().to_string(),
        "services.a.depends_on.b.restart: not supported by pier compose yet"
    );
}

#[test]
fn compose_file_from_the_dotenv_of_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "COMPOSE_FILE=a.yaml:b.yaml\n").unwrap();
    std::fs::write(dir.path().join("a.yaml"), "services:\n  a:\n    image: x\n").unwrap();
    std::fs::write(dir.path().join("b.yaml"), "services:\n  b:\n    image: y\n").unwrap();
    let p = load(&Options {
        cwd: dir.path().to_path_buf(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(p.config_files.len(), 2);
    assert_eq!(p.services.keys().collect::<Vec<_>>(), vec!["a", "b"]);
}
