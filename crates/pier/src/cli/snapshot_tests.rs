//! Snapshots (`insta`) of what the CLI prints for fixed daemon answers:
//! `ps`, `images`, `inspect`, `--format` templates, `system df` and the
//! error messages. The fixtures are shaped as Docker's Engine API answers;
//! the clock is fixed and dates print in UTC. Each snapshot was compared
//! with docker/cli 28's formatters (`cli/command/formatter`): a change in
//! output shows here as a diff to review.

use super::df::{render_df, DfArgs};
use super::images::{render_history, render_images, HistoryArgs, ImagesArgs};
use super::inspect::{not_found_line, render_inspect};
use super::ps::{render_ps, PsArgs};
use super::{failure, usage, Cli, Cmd, SystemCmd};
use crate::format::units::Clock;
use clap::Parser;
use insta::assert_snapshot;
use serde_json::{json, Value};

/// 2023-11-14 22:13:20 UTC.
const NOW: i64 = 1_700_000_000;
const CLOCK: Clock = Clock::Fixed { now: NOW };
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// Parses `pier <verb...> <args>`; `args` are whole words (formats have spaces).
fn parse(verb: &str, args: &[&str]) -> Cmd {
    let mut argv: Vec<&str> = vec!["pier"];
    argv.extend(verb.split(' '));
    argv.extend(args);
    Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
        .cmd
        .expect("a command")
}

fn ps_args(args: &[&str]) -> PsArgs {
    match parse("ps", args) {
        Cmd::Ps(a) => a,
        other => panic!("not ps: {other:?}"),
    }
}

fn images_args(args: &[&str]) -> ImagesArgs {
    match parse("images", args) {
        Cmd::Images(a) => a,
        other => panic!("not images: {other:?}"),
    }
}

fn df_args(args: &[&str]) -> DfArgs {
    match parse("system df", args) {
        Cmd::System(SystemCmd::Df(a)) => a,
        other => panic!("not system df: {other:?}"),
    }
}

const WEB_ID: &str = "3f4e8a2b9c1d0e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f";
const DB_ID: &str = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b";
const NGINX_IMG: &str = "sha256:a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const BUSYBOX_IMG: &str = "sha256:0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c";

/// `GET /containers/json?all=1&size=1`: a published web server, an exited
/// container with a legacy link name, one made from an image pulled by
/// digest, one from an image ID, and one whose image is gone.
fn containers() -> Vec<Value> {
    vec![
        json!({
            "Id": WEB_ID, "Names": ["/web"], "Image": "nginx:1.25", "ImageID": NGINX_IMG,
            "Command": "/docker-entrypoint.sh nginx -g 'daemon off;'", "Created": NOW - 2 * HOUR - 300,
            "Ports": [
                {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"PrivatePort": 443, "Type": "tcp"},
                {"IP": "127.0.0.1", "PrivatePort": 9000, "PublicPort": 9000, "Type": "udp"},
            ],
            "SizeRw": 1093, "SizeRootFs": 187_654_321,
            "Labels": {"com.example.tier": "front", "com.example.owner": "ops"},
            "State": "running", "Status": "Up 2 hours (healthy)",
            "HostConfig": {"NetworkMode": "bridge"},
            "NetworkSettings": {"Networks": {"frontend": {}, "bridge": {}}},
            "Mounts": [
                {"Type": "volume", "Name": "web-content-volume-long-name", "Source": "/var/lib/pier/volumes/web-content-volume-long-name/_data", "Destination": "/usr/share/nginx/html", "Driver": "local", "Mode": "", "RW": true, "Propagation": ""},
                {"Type": "bind", "Source": "/etc/nginx/conf.d", "Destination": "/etc/nginx/conf.d", "Mode": "ro", "RW": false, "Propagation": "rprivate"},
            ],
        }),
        json!({
            "Id": DB_ID, "Names": ["/web/db", "/db"], "Image": BUSYBOX_IMG, "ImageID": BUSYBOX_IMG,
            "Command": "sh -c 'while true; do echo hello world; sleep 1; done'", "Created": NOW - 3 * DAY,
            "Ports": [], "SizeRw": 0, "SizeRootFs": 4_261_234, "Labels": {},
            "State": "exited", "Status": "Exited (137) 2 days ago",
            "HostConfig": {"NetworkMode": "none"}, "NetworkSettings": {"Networks": {"none": {}}}, "Mounts": [],
        }),
        json!({
            "Id": "5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c", "Names": ["/pinned"],
            "Image": "docker.io/library/alpine:3.20@sha256:beefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeef",
            "ImageID": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
            "Command": "/bin/sh", "Created": NOW - 40, "Ports": [], "SizeRw": 12, "SizeRootFs": 7_800_000,
            "Labels": null, "State": "created", "Status": "Created",
            "HostConfig": {"NetworkMode": "bridge"}, "NetworkSettings": {"Networks": {"bridge": {}}}, "Mounts": [],
        }),
        json!({
            "Id": "77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa77aa", "Names": ["/orphan"],
            "Image": "", "ImageID": "", "Command": "", "Created": NOW - 400 * DAY, "Ports": [],
            "SizeRw": 0, "SizeRootFs": 0, "Labels": {}, "State": "exited", "Status": "Exited (0) 13 months ago",
            "HostConfig": {"NetworkMode": "default"}, "NetworkSettings": {"Networks": {}}, "Mounts": [],
        }),
    ]
}

fn ps(args: &[&str]) -> String {
    render_ps(&containers(), &ps_args(args), CLOCK).unwrap()
}

#[test]
fn ps_default_table() {
    assert_snapshot!(ps(&["-a"]));
}

#[test]
fn ps_no_trunc() {
    assert_snapshot!(ps(&["-a", "--no-trunc"]));
}

#[test]
fn ps_with_sizes() {
    assert_snapshot!(ps(&["-a", "-s"]));
}

#[test]
fn ps_quiet() {
    assert_snapshot!(ps(&["-a", "-q"]));
}

#[test]
fn ps_format_json() {
    assert_snapshot!(ps(&["-a", "--format", "json"]));
}

#[test]
fn ps_format_table_with_label_and_lists() {
    assert_snapshot!(ps(&["-a", "--format", "table {{.Names}}\\t{{.Label \"com.example.tier\"}}\\t{{.Networks}}\\t{{.Mounts}}\\t{{.LocalVolumes}}\\t{{.State}}"]));
}

#[test]
fn ps_format_go_template_functions() {
    assert_snapshot!(ps(&["-a", "--format", "{{.ID}}|{{upper .State}}|{{title .State}}|{{lower .Names}}|{{truncate .Names 3}}|{{pad .State 1 2}}|{{len .Names}}|{{json .Names}}|{{split .Status \" \"}}|{{join (split .Ports \", \") \";\"}}|{{if eq .State \"running\"}}up{{else}}down{{end}}|{{printf \"%.4s\" .Image}}"]));
}

#[test]
fn ps_bad_template_is_an_error() {
    let mut out = String::new();
    for (list, f) in [
        (containers(), "{{.Nope"),
        (containers(), "{{.Names}} {{.Nope}}"),
        (Vec::new(), "table {{.ID}}\\t{{.Nope}}"),
    ] {
        let err = render_ps(&list, &ps_args(&["--format", f]), CLOCK).unwrap_err();
        out.push_str(&format!("{f}\n{err}\n"));
    }
    let err = render_images(
        &image_list(),
        &images_args(&["--format", "{{.Label \"x\"}}"]),
        CLOCK,
    )
    .unwrap_err();
    out.push_str(&format!("images {{{{.Label \"x\"}}}}\n{err}\n"));
    assert_snapshot!(out);
}

/// `GET /images/json`: tagged twice with a digest, pulled by digest only,
/// dangling, and one with shared sizes (`-a` from a build).
fn image_list() -> Vec<Value> {
    vec![
        json!({
            "Id": NGINX_IMG, "ParentId": "", "Created": NOW - 14 * DAY, "Size": 187_654_321,
            "SharedSize": -1, "Containers": 1, "Labels": {"maintainer": "NGINX Docker Maintainers"},
            "RepoTags": ["nginx:1.25", "nginx:latest", "registry.example.com:5000/team/nginx:prod"],
            "RepoDigests": ["nginx@sha256:aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111"],
        }),
        json!({
            "Id": "sha256:2222222222222222222222222222222222222222222222222222222222222222", "ParentId": "",
            "Created": NOW - 90 * DAY, "Size": 7_800_000, "SharedSize": -1, "Containers": -1, "Labels": {},
            "RepoTags": [],
            "RepoDigests": ["alpine@sha256:beefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeef"],
        }),
        json!({
            "Id": "sha256:3333333333333333333333333333333333333333333333333333333333333333", "ParentId": "",
            "Created": NOW - 50, "Size": 4_261_234, "SharedSize": 4_261_000, "Containers": 0, "Labels": null,
            "RepoTags": [], "RepoDigests": [],
        }),
        json!({
            "Id": BUSYBOX_IMG, "ParentId": "", "Created": NOW - 400 * DAY, "Size": 4_261_234,
            "SharedSize": -1, "Containers": -1, "Labels": {},
            "RepoTags": ["busybox:latest"], "RepoDigests": [],
        }),
    ]
}

fn images(args: &[&str]) -> String {
    render_images(&image_list(), &images_args(args), CLOCK).unwrap()
}

#[test]
fn images_default_table() {
    assert_snapshot!(images(&[]));
}

#[test]
fn images_with_digests() {
    assert_snapshot!(images(&["--digests"]));
}

#[test]
fn images_no_trunc() {
    assert_snapshot!(images(&["--no-trunc"]));
}

#[test]
fn images_quiet_one_line_per_image() {
    assert_snapshot!(images(&["-q"]));
}

#[test]
fn images_format_json() {
    assert_snapshot!(images(&["--format", "json"]));
}

#[test]
fn images_format_table_sizes() {
    assert_snapshot!(images(&["--format", "table {{.Repository}}:{{.Tag}}\\t{{.Size}}\\t{{.SharedSize}}\\t{{.UniqueSize}}\\t{{.Containers}}\\t{{.CreatedAt}}"]));
}

fn history_args(args: &[&str]) -> HistoryArgs {
    match parse("history", args) {
        Cmd::History(a) => a,
        other => panic!("not history: {other:?}"),
    }
}

/// `GET /images/nginx/history`: a built layer, a metadata-only step with a
/// tab in its command, and the base layer pulled with the image.
fn history_list() -> Vec<Value> {
    vec![
        json!({"Id": NGINX_IMG, "Created": NOW - 14 * DAY, "CreatedBy": "CMD [\"nginx\" \"-g\" \"daemon off;\"]",
               "Tags": ["nginx:1.25", "nginx:latest"], "Size": 0, "Comment": "buildkit.dockerfile.v0"}),
        json!({"Id": "<missing>", "Created": NOW - 14 * DAY - 60, "CreatedBy": "RUN /bin/sh -c set -x \t&& apt-get update && apt-get install -y nginx # buildkit",
               "Tags": null, "Size": 112_345_678, "Comment": "buildkit.dockerfile.v0"}),
        json!({"Id": "<missing>", "Created": 0, "CreatedBy": "/bin/sh -c #(nop) ADD file:4b1c3ef2 in / ",
               "Tags": null, "Size": 74_800_000, "Comment": ""}),
    ]
}

#[test]
fn history_tables() {
    let mut out = String::new();
    for args in [
        &["nginx"][..],
        &["--no-trunc", "nginx"],
        &["-H=false", "nginx"],
        &["-q", "nginx"],
        &[
            "--format",
            "{{.ID}}: {{.CreatedAt}} {{.CreatedSince}}",
            "nginx",
        ],
    ] {
        out.push_str(&format!("$ pier history {}\n", args.join(" ")));
        out.push_str(&render_history(&history_list(), &history_args(args), CLOCK).unwrap());
    }
    assert_snapshot!(out);
}

/// `GET /containers/web/json`, trimmed to the parts templates reach.
fn inspected() -> Value {
    json!({
        "Id": WEB_ID, "Created": "2023-11-14T20:08:20.123456789Z", "Path": "/docker-entrypoint.sh",
        "Args": ["nginx", "-g", "daemon off;"],
        "State": {"Status": "running", "Running": true, "Paused": false, "Restarting": false,
                  "OOMKilled": false, "Dead": false, "Pid": 4242, "ExitCode": 0, "Error": "",
                  "StartedAt": "2023-11-14T20:08:21.5Z", "FinishedAt": "0001-01-01T00:00:00Z",
                  "Health": {"Status": "healthy", "FailingStreak": 0, "Log": []}},
        "Image": NGINX_IMG, "Name": "/web", "RestartCount": 0,
        "Config": {"Hostname": "3f4e8a2b9c1d", "Env": ["PATH=/usr/local/sbin:/usr/local/bin", "NGINX_VERSION=1.25.3"],
                   "Cmd": ["nginx", "-g", "daemon off;"], "Image": "nginx:1.25",
                   "Labels": {"com.example.tier": "front", "com.example.owner": "ops"},
                   "ExposedPorts": {"80/tcp": {}, "443/tcp": {}}},
        "HostConfig": {"NetworkMode": "bridge", "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                       "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}},
        "Mounts": [
            {"Type": "volume", "Name": "web-content", "Source": "/var/lib/pier/volumes/web-content/_data", "Destination": "/usr/share/nginx/html", "Driver": "local", "Mode": "", "RW": true, "Propagation": ""},
            {"Type": "bind", "Source": "/etc/nginx/conf.d", "Destination": "/etc/nginx/conf.d", "Mode": "ro", "RW": false, "Propagation": "rprivate"},
        ],
        "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2", "Gateway": "172.17.0.1", "MacAddress": "02:42:ac:11:00:02"}},
                            "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}], "443/tcp": null}},
    })
}

#[test]
fn inspect_default_json() {
    assert_snapshot!(render_inspect(&[inspected()], None).unwrap());
}

#[test]
fn inspect_nothing_found_prints_an_empty_array() {
    assert_snapshot!(render_inspect(&[], None).unwrap());
}

#[test]
fn inspect_format_templates() {
    let v = [inspected()];
    let mut out = String::new();
    for f in [
        "{{.State.Status}} {{.State.Pid}} {{.State.Health.Status}}",
        "{{.Name}} {{json .Config.Labels}}",
        "{{index .Config.Labels \"com.example.tier\"}}",
        "{{range .Mounts}}{{.Type}}:{{.Destination}}:{{.RW}} {{end}}",
        "{{range $p, $b := .NetworkSettings.Ports}}{{$p}}={{if $b}}{{(index $b 0).HostPort}}{{else}}-{{end}} {{end}}",
        "{{.NetworkSettings.Networks.bridge.IPAddress}}",
        "{{join .Args \" \"}}",
        "{{json .HostConfig.RestartPolicy}}",
        "{{with .State}}{{if and .Running (not .Paused)}}up since {{.StartedAt}}{{end}}{{end}}",
        "{{printf \"%s has %d env vars\" .Name (len .Config.Env)}}",
        "json",
    ] {
        out.push_str(&format!("--format {f}\n"));
        out.push_str(&render_inspect(&v, Some(f)).unwrap());
    }
    assert_snapshot!(out);
}

/// `GET /system/df` with a running container using its image, a volume in
/// use and one not, and build cache.
fn disk_usage() -> Value {
    let mut cs = containers();
    cs.truncate(2);
    let mut imgs = image_list();
    for i in &mut imgs {
        i["SharedSize"] = json!(0);
    }
    imgs[0]["SharedSize"] = json!(4_000_000);
    imgs[2]["SharedSize"] = json!(4_000_000);
    json!({
        "LayersSize": 199_715_555,
        "Images": imgs,
        "Containers": cs,
        "Volumes": [
            {"Name": "web-content", "Driver": "local", "Mountpoint": "/var/lib/pier/volumes/web-content/_data", "Scope": "local",
             "UsageData": {"Size": 10_485_760, "RefCount": 1}},
            {"Name": "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d", "Driver": "local", "Mountpoint": "/x", "Scope": "local",
             "UsageData": {"Size": 2048, "RefCount": 0}},
            {"Name": "unsized", "Driver": "local", "Mountpoint": "/y", "Scope": "local", "UsageData": null},
        ],
        "BuildCache": [
            {"ID": "q1w2e3r4t5y6u7i8o9p0a1s2d", "Type": "regular", "Description": "mount / from exec /bin/sh -c apk add curl",
             "InUse": false, "Shared": false, "Size": 12_345_678, "CreatedAt": "2023-11-13T22:13:20Z", "LastUsedAt": "2023-11-14T21:13:20Z", "UsageCount": 3},
            {"ID": "z9x8c7v6b5n4m3l2k1j0h9g8f", "Type": "source.local", "Description": "local source for context",
             "InUse": true, "Shared": true, "Size": 4096, "CreatedAt": "2023-11-14T22:10:00Z", "LastUsedAt": null, "UsageCount": 1},
        ],
    })
}

#[test]
fn system_df_summary() {
    assert_snapshot!(render_df(&disk_usage(), &df_args(&[]), CLOCK).unwrap());
}

#[test]
fn system_df_verbose() {
    assert_snapshot!(render_df(&disk_usage(), &df_args(&["-v"]), CLOCK).unwrap());
}

#[test]
fn system_df_format_json() {
    assert_snapshot!(render_df(&disk_usage(), &df_args(&["--format", "json"]), CLOCK).unwrap());
}

#[test]
fn system_df_empty() {
    let empty =
        json!({"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []});
    let mut out = render_df(&empty, &df_args(&[]), CLOCK).unwrap();
    out.push_str("---- -v\n");
    out.push_str(&render_df(&empty, &df_args(&["-v"]), CLOCK).unwrap());
    assert_snapshot!(out);
}

/// What the CLI prints for a command line clap refuses, and the exit code.
fn usage_of(line: &str) -> String {
    let argv: Vec<String> = line.split(' ').map(str::to_string).collect();
    let e = Cli::try_parse_from(&argv).expect_err(line);
    let (msg, code) = usage::usage_message(&e, &super::command_path(&argv)).expect("an error");
    format!("$ {line}\n{msg}\n[exit {code}]\n")
}

#[test]
fn errors_bad_flags_and_arguments() {
    let mut out = String::new();
    for line in [
        "pier ps --no-such-flag",
        "pier ps -z",
        "pier container ls --bad=1",
        "pier ps -n x",
        "pier rm",
        "pier inspect",
        "pier image",
        "pier nosuchverb",
        "pier container nosuchverb",
        "pier version extra",
    ] {
        if Cli::try_parse_from(line.split(' ')).is_ok() {
            panic!("{line} parsed");
        }
        if line == "pier image" {
            continue; // help on stdout, as Docker prints it
        }
        out.push_str(&usage_of(line));
    }
    assert_snapshot!(out);
}

#[test]
fn errors_from_the_daemon_and_the_connection() {
    let cases: Vec<anyhow::Error> = vec![
        pier_client::ClientError::Daemon {
            status: 404,
            message: "No such container: nothere".into(),
        }
        .into(),
        pier_client::ClientError::Daemon {
            status: 409,
            message: "You cannot remove a running container 3f4e8a2b9c1d. Stop the container before attempting removal or force remove".into(),
        }
        .into(),
        pier_client::ClientError::Connect {
            host: "unix:///run/pier/pier.sock".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }
        .into(),
        pier_client::ClientError::PermissionDenied {
            host: "unix:///run/pier/pier.sock".into(),
        }
        .into(),
        super::Exit(3).into(),
    ];
    let mut out = String::new();
    for e in &cases {
        let (msg, code) = failure(e);
        out.push_str(&format!(
            "{}\n[exit {code}]\n",
            msg.as_deref().unwrap_or("(already printed)")
        ));
    }
    out.push_str(&not_found_line(None, "nothere"));
    out.push('\n');
    out.push_str(&not_found_line(Some("network"), "nothere"));
    out.push('\n');
    assert_snapshot!(out);
}
