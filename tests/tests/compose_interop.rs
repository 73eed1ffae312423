//! `pier compose` beside other compose tools and with every key family: docker-compose
//! 1.29 and Pier's compose manage each other's projects, `docker compose` runs Pier's
//! compose as a CLI plugin, and the service keys reach the container.

mod compose_util;

use compose_util::*;
use pier_tests::cmd;
use pier_tests::{Input, OutputExt, TestDaemon, CMD_TIMEOUT};
use std::path::Path;
use std::process::Output;

const DOCKER_COMPOSE_V1: &str = "/usr/bin/docker-compose";

fn docker_compose_v1(d: &TestDaemon, dir: &Dir, args: &[&str]) -> Output {
    assert!(
        Path::new(DOCKER_COMPOSE_V1).exists(),
        "{DOCKER_COMPOSE_V1} missing: apt-get install docker-compose (setup.sh does)"
    );
    let mut c = std::process::Command::new(DOCKER_COMPOSE_V1);
    c.args(args)
        .current_dir(dir.path())
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.join("docker-config"))
        .env_remove("DOCKER_CONTEXT")
        .env_remove("COMPOSE_PROJECT_NAME");
    let o = cmd::run(c, Input::Null, CMD_TIMEOUT * 3);
    eprintln!("$ docker-compose {}\n{}", args.join(" "), o.describe());
    assert!(
        o.status.success(),
        "docker-compose {args:?}: {}",
        o.describe()
    );
    o
}

#[test]
fn docker_compose_v1_and_pier_compose_manage_the_same_projects() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "ic",
        &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\n    command: [sleep, '1000']\n    volumes: [data:/data]\n    stop_grace_period: 1s\n  db:\n    image: busybox\n    command: [sleep, '1000']\n    stop_grace_period: 1s\nvolumes:\n  data:\n",
        )],
    );
    // Made by Pier's compose, seen and taken down by docker-compose 1.29.
    compose_ok(&d, &dir, &["up", "-d"]);
    let ps = docker_compose_v1(&d, &dir, &["-f", "compose.yaml", "ps"]).out();
    assert!(ps.contains("ic-app-1") && ps.contains("ic-db-1"), "{ps}");
    docker_compose_v1(&d, &dir, &["-f", "compose.yaml", "down", "-v"]);
    assert_eq!(d.pier_ok(&["ps", "-aq"]), "");
    assert!(!d.pier_ok(&["network", "ls"]).contains("ic_default"));
    assert!(!d.pier_ok(&["volume", "ls", "-q"]).contains("ic_data"));

    // Made by docker-compose 1.29, seen and taken down by Pier's compose.
    docker_compose_v1(&d, &dir, &["-f", "compose.yaml", "up", "-d"]);
    let ps = compose_ok(&d, &dir, &["ps", "--services"]).out();
    assert_eq!(ps, "app\ndb\n");
    compose_ok(&d, &dir, &["down", "-v"]);
    assert_eq!(d.pier_ok(&["ps", "-aq"]), "");
    assert!(!d.pier_ok(&["network", "ls"]).contains("ic_default"));
    assert!(!d.pier_ok(&["volume", "ls", "-q"]).contains("ic_data"));
    d.assert_clean();
}

#[test]
fn docker_compose_runs_pier_compose_as_a_cli_plugin() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "pl",
        &[(
            "compose.yaml",
            "services:\n  app:\n    image: busybox\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n",
        )],
    );
    let config = d.root.join("docker-config");
    std::fs::create_dir_all(config.join("cli-plugins")).unwrap();
    std::os::unix::fs::symlink(
        d.bin_dir.join("pier"),
        config.join("cli-plugins/docker-compose"),
    )
    .unwrap();
    let docker = |args: &[&str]| {
        let mut c = std::process::Command::new("/usr/bin/docker");
        c.args(args)
            .current_dir(dir.path())
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", &config)
            .env_remove("DOCKER_CONTEXT");
        let o = cmd::run(c, Input::Null, CMD_TIMEOUT * 3);
        eprintln!("$ docker {}\n{}", args.join(" "), o.describe());
        assert!(o.status.success(), "docker {args:?}: {}", o.describe());
        o
    };
    let help = docker(&["--help"]).out();
    assert!(help.contains("compose*"), "{help}");
    docker(&["compose", "up", "-d"]);
    assert_eq!(names(&d), "pl-app-1");
    let ps = docker(&["compose", "ps", "--services"]).out();
    assert_eq!(ps, "app\n");
    docker(&["compose", "down"]);
    assert_eq!(d.pier_ok(&["ps", "-aq"]), "");
    d.assert_clean();
}

#[test]
fn service_key_families_reach_the_container() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new(
        "kf",
        &[
            (
                "compose.yaml",
                r#"
x-env: &env
  FROM_ANCHOR: "yes"
services:
  app:
    image: busybox
    entrypoint: ["sh", "-c"]
    command: "'echo started; exec sleep 1000'"
    environment:
      <<: *env
      GREETING: ${GREETING:-hello}
    env_file: [app.env]
    labels:
      team: core
    hostname: apphost
    domainname: example.test
    user: "1000:1000"
    working_dir: /tmp
    init: true
    read_only: true
    tmpfs: ["/run:size=1m"]
    stop_signal: SIGTERM
    stop_grace_period: 3s
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    security_opt: ["no-new-privileges:true"]
    ulimits:
      nofile: {soft: 1024, hard: 2048}
    sysctls:
      net.ipv4.ip_forward: "1"
    extra_hosts: ["db.local:10.9.8.7"]
    dns: [10.9.8.1]
    dns_search: [example.test]
    shm_size: 32m
    restart: on-failure:3
    expose: ["9000"]
    ports:
      - target: 80
        published: "18099"
        host_ip: 127.0.0.1
        protocol: tcp
    volumes:
      - type: volume
        source: data
        target: /data
      - type: bind
        source: ./conf
        target: /conf
        read_only: true
      - type: tmpfs
        target: /scratch
        tmpfs: {size: 2m}
    networks:
      front:
        aliases: [web-alias]
      back:
    deploy:
      resources:
        limits: {memory: 64m, cpus: "0.5", pids: 100}
    healthcheck:
      test: ["CMD-SHELL", "true"]
      interval: 2s
      timeout: 1s
      retries: 3
      start_period: 1s
    logging:
      driver: json-file
      options: {max-size: 1m}
networks:
  front:
    labels: {tier: front}
  back:
    internal: true
volumes:
  data:
    labels: {keep: "no"}
"#,
            ),
            ("app.env", "FROM_FILE=1\n"),
            ("conf/app.conf", "x=1\n"),
        ],
    );
    compose_ok(&d, &dir, &["up", "-d"]);
    let v = d.inspect("kf-app-1");
    let c = &v["Config"];
    let h = &v["HostConfig"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["sh", "-c"]));
    // A string command is split into words as a shell would (quotes kept together).
    assert_eq!(
        c["Cmd"],
        serde_json::json!(["echo started; exec sleep 1000"])
    );
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    for want in ["FROM_ANCHOR=yes", "GREETING=hello", "FROM_FILE=1"] {
        assert!(env.contains(&want), "{want} not in {env:?}");
    }
    assert_eq!(c["Labels"]["team"], "core");
    assert_eq!(c["Hostname"], "apphost");
    assert_eq!(c["Domainname"], "example.test");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["WorkingDir"], "/tmp");
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(c["StopTimeout"], 3);
    assert!(
        c["ExposedPorts"].get("9000/tcp").is_some(),
        "{}",
        c["ExposedPorts"]
    );
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 2_000_000_000i64);
    assert_eq!(h["Init"], true);
    assert_eq!(h["ReadonlyRootfs"], true);
    assert_eq!(h["CapAdd"], serde_json::json!(["NET_ADMIN"]));
    assert_eq!(h["CapDrop"], serde_json::json!(["MKNOD"]));
    assert_eq!(
        h["SecurityOpt"],
        serde_json::json!(["no-new-privileges:true"])
    );
    assert_eq!(h["Ulimits"][0]["Name"], "nofile");
    assert_eq!(h["Ulimits"][0]["Hard"], 2048);
    assert_eq!(h["Sysctls"]["net.ipv4.ip_forward"], "1");
    assert_eq!(h["ExtraHosts"], serde_json::json!(["db.local:10.9.8.7"]));
    assert_eq!(h["Dns"], serde_json::json!(["10.9.8.1"]));
    assert_eq!(h["DnsSearch"], serde_json::json!(["example.test"]));
    assert_eq!(h["ShmSize"], 32 << 20);
    assert_eq!(h["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(h["RestartPolicy"]["MaximumRetryCount"], 3);
    assert_eq!(h["Memory"], 64 << 20);
    assert_eq!(h["NanoCpus"], 500_000_000i64);
    assert_eq!(h["PidsLimit"], 100);
    assert_eq!(h["LogConfig"]["Type"], "json-file");
    assert_eq!(h["LogConfig"]["Config"]["max-size"], "1m");
    assert_eq!(h["PortBindings"]["80/tcp"][0]["HostPort"], "18099");
    assert_eq!(h["PortBindings"]["80/tcp"][0]["HostIp"], "127.0.0.1");
    assert!(
        h["Tmpfs"]["/run"].as_str().unwrap().contains("size=1m"),
        "{}",
        h["Tmpfs"]
    );
    assert!(
        h["Tmpfs"]["/scratch"]
            .as_str()
            .unwrap()
            .contains("size=2097152"),
        "{}",
        h["Tmpfs"]
    );
    let binds: Vec<&str> = h["Binds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b.as_str())
        .collect();
    assert!(binds.contains(&"kf_data:/data"), "{binds:?}");
    let conf = format!("{}:/conf:ro", dir.path().join("conf").display());
    assert!(binds.contains(&conf.as_str()), "{binds:?}");
    // Both networks, the aliases on the one that has them, and the labels on it.
    let nets = v["NetworkSettings"]["Networks"].as_object().unwrap();
    let mut keys: Vec<&String> = nets.keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["kf_back", "kf_front"]);
    let aliases = nets["kf_front"]["Aliases"].to_string();
    assert!(
        aliases.contains("web-alias") && aliases.contains("\"app\""),
        "{aliases}"
    );
    assert_eq!(
        inspect(&d, "network", "kf_front")["Labels"]["tier"],
        "front"
    );
    assert_eq!(inspect(&d, "network", "kf_back")["Internal"], true);
    assert_eq!(inspect(&d, "volume", "kf_data")["Labels"]["keep"], "no");
    // The container runs with all of it.
    assert_eq!(
        d.pier_ok(&["exec", "kf-app-1", "cat", "/conf/app.conf"]),
        "x=1\n"
    );
    assert_eq!(d.pier_ok(&["exec", "kf-app-1", "id", "-u"]), "1000\n");
    compose_ok(&d, &dir, &["down", "-v", "-t", "1"]);
    d.assert_clean();
}
