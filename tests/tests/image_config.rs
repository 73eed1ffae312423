//! Image configs: encoded as Docker encodes them (`image inspect`, new config
//! blobs), stored configs kept byte for byte through save/load and push/pull,
//! image IDs stable across cached rebuilds; and a container's root as Docker
//! shows it (`/.dockerenv`, no marker of Pier's own).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pier_tests::registry::Registry;
use pier_tests::tar::{build as tar, Entry};
use pier_tests::{busybox_rootfs_tar, Input, OutputExt, TestDaemon};

fn sha256_hex(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// A build context directory, removed when dropped.
struct Context(PathBuf);

impl Context {
    fn new(dockerfile: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pier-imgcfg-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
        Context(dir)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The raw text of the JSON object at `"key":` in `body` (first occurrence),
/// so that key order can be compared, which a parsed `Value` would lose.
fn raw_object<'a>(body: &'a str, key: &str) -> &'a str {
    let at = body
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {body}"));
    let start = at + body[at..].find('{').unwrap();
    let (mut depth, mut in_str, mut esc) = (0, false, false);
    for (i, c) in body[start..].char_indices() {
        match c {
            _ if esc => esc = false,
            '\\' if in_str => esc = true,
            '"' => in_str = !in_str,
            '{' if !in_str => depth += 1,
            '}' if !in_str => {
                depth -= 1;
                if depth == 0 {
                    return &body[start..=start + i];
                }
            }
            _ => {}
        }
    }
    panic!("unterminated {key} in {body}")
}

/// The files of a tar archive, by name.
fn untar(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 512 <= data.len() {
        let h = &data[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let name_end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let mut name = String::from_utf8_lossy(&h[..name_end]).into_owned();
        let prefix_end = h[345..500].iter().position(|&b| b == 0).unwrap_or(155);
        if prefix_end > 0 {
            name = format!(
                "{}/{name}",
                String::from_utf8_lossy(&h[345..345 + prefix_end])
            );
        }
        let size_s = String::from_utf8_lossy(&h[124..136]);
        let size = u64::from_str_radix(size_s.trim_matches(|c: char| c == '\0' || c == ' '), 8)
            .unwrap_or(0) as usize;
        off += 512;
        if h[156] == b'0' || h[156] == 0 {
            out.push((name, data[off..off + size].to_vec()));
        }
        off += size.div_ceil(512) * 512;
    }
    out
}

/// The config blob of `image` as `pier save` writes it.
fn saved_config(d: &TestDaemon, image: &str) -> Vec<u8> {
    let saved = d.pier(&["save", image]);
    assert_eq!(saved.code(), 0, "{}", saved.describe());
    let files = untar(&saved.stdout);
    let manifest = files
        .iter()
        .find(|(n, _)| n == "manifest.json")
        .expect("manifest.json in the archive");
    let m: serde_json::Value = serde_json::from_slice(&manifest.1).unwrap();
    let name = m[0]["Config"].as_str().unwrap().to_string();
    files
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("{name} in the archive"))
        .1
}

/// Pushes `image` as `repo`, removes both locally, pulls it back: its ID.
fn push_pull(d: &TestDaemon, image: &str, repo: &str) -> String {
    d.pier_ok(&["tag", image, repo]);
    d.pier_ok(&["push", repo]);
    d.pier_ok(&["rmi", image, repo]);
    d.pier_ok(&["pull", repo]);
    d.inspect(repo)["Id"].as_str().unwrap().to_string()
}

const DOCKERFILE: &str = "FROM busybox
LABEL zeta=1 alpha=2 Beta=3 \"a.b\"=4
EXPOSE 8080/tcp 443 80/udp 9000
VOLUME [\"/zdata\", \"/adata\", \"/Mdata\"]
ENV B=2 A=1
RUN echo built > /built
";

/// `Config` of `docker image inspect` for an image built from [`DOCKERFILE`]
/// by Docker 20.10 (BuildKit), on the same busybox root.
const DOCKER_CONFIG: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"443/tcp":{},"80/udp":{},"8080/tcp":{},"9000/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","B=2","A=1"],"Cmd":["sh"],"Image":"","Volumes":{"/Mdata":{},"/adata":{},"/zdata":{}},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"Beta":"3","a.b":"4","alpha":"2","zeta":"1"}}"#;

const ZERO_CONFIG: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#;

#[test]
fn image_config_is_encoded_as_docker_encodes_it() {
    let d = TestDaemon::with_busybox();
    let ctx = Context::new(DOCKERFILE);
    d.pier_ok(&["build", "-q", "-t", "cfg:1", ctx.path()]);

    let r = d.http("GET", "/images/cfg:1/json", None, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.text();
    assert_eq!(raw_object(&body, "Config"), DOCKER_CONFIG);
    // Docker shows a zero config for images no container was committed to.
    assert_eq!(raw_object(&body, "ContainerConfig"), ZERO_CONFIG);
    let v = r.json();
    assert!(v.get("Variant").is_none(), "Variant is omitempty: {v}");

    // An image with nothing set shows Go's zero values, not nulls for strings.
    let r = d.http("GET", "/images/busybox/json", None, b"");
    let cfg: serde_json::Value = serde_json::from_str(raw_object(&r.text(), "Config")).unwrap();
    for k in ["Hostname", "Domainname", "User", "Image", "WorkingDir"] {
        assert_eq!(cfg[k], "", "{k} in {cfg}");
    }
    for k in ["Entrypoint", "OnBuild", "Labels", "Volumes"] {
        assert!(cfg[k].is_null(), "{k} in {cfg}");
    }
    // `omitempty` in Docker's container.Config: absent, not "" or null.
    for k in [
        "StopSignal",
        "Shell",
        "ExposedPorts",
        "Healthcheck",
        "StopTimeout",
    ] {
        assert!(cfg.get(k).is_none(), "{k} in {cfg}");
    }

    // A committed image names its container and that container's config.
    let ctr = d.pier_ok(&["create", "--name", "c1", "cfg:1", "echo", "hi"]);
    let ctr = ctr.trim();
    d.pier_ok(&["commit", "c1", "committed:1"]);
    let c = d.inspect("committed:1");
    assert_eq!(c["Container"], ctr, "{c}");
    assert_eq!(c["ContainerConfig"]["Cmd"][1], "hi", "{c}");
    assert_eq!(c["ContainerConfig"]["Labels"]["zeta"], "1", "{c}");
    d.pier_ok(&["rm", "c1"]);
    // Built on a committed image: BuildKit keeps neither.
    let ctx2 = Context::new("FROM committed:1\nLABEL x=y\n");
    d.pier_ok(&["build", "-q", "-t", "on-committed", ctx2.path()]);
    let r = d.http("GET", "/images/on-committed/json", None, b"");
    assert_eq!(raw_object(&r.text(), "ContainerConfig"), ZERO_CONFIG);
    assert_eq!(r.json()["Container"], "");

    // The new config blob: its digest is the ID, its maps sorted as Go sorts them.
    let id = d.inspect("cfg:1")["Id"].as_str().unwrap().to_string();
    let blob = saved_config(&d, "cfg:1");
    assert_eq!(format!("sha256:{}", sha256_hex(&blob)), id);
    let blob = String::from_utf8(blob).unwrap();
    assert!(
        blob.starts_with(r#"{"architecture":"#),
        "top-level keys sorted: {blob}"
    );
    assert!(
        blob.contains(r#""Labels":{"Beta":"3","a.b":"4","alpha":"2","zeta":"1"}"#),
        "{blob}"
    );
    assert!(
        blob.contains(r#""ExposedPorts":{"443/tcp":{},"80/udp":{},"8080/tcp":{},"9000/tcp":{}}"#),
        "{blob}"
    );
    assert!(
        blob.contains(r#""Volumes":{"/Mdata":{},"/adata":{},"/zdata":{}}"#),
        "{blob}"
    );
    assert!(
        blob.contains(r#""rootfs":{"type":"layers","diff_ids":["#),
        "{blob}"
    );
    d.assert_clean();
}

#[test]
fn built_image_ids_survive_cached_rebuilds_save_load_and_push_pull() {
    let mut d = TestDaemon::with_busybox();
    let ctx = Context::new(DOCKERFILE);
    let first = d.pier_ok(&["build", "-t", "cfg:1", ctx.path()]);
    assert!(!first.contains("Using cache"), "{first}");
    let id = d.inspect("cfg:1")["Id"].as_str().unwrap().to_string();

    // A cached rebuild, in the same daemon and after a restart: every step
    // from the cache, the same config bytes, so the same ID.
    for round in 0..2 {
        let again = d.pier_ok(&["build", "-t", "cfg:1", ctx.path()]);
        assert!(again.contains("Using cache"), "round {round}: {again}");
        assert_eq!(
            d.inspect("cfg:1")["Id"],
            id.as_str(),
            "round {round}: {again}"
        );
        d.restart();
    }

    // save | rmi | load.
    let saved = d.pier(&["save", "cfg:1"]);
    assert_eq!(saved.code(), 0, "{}", saved.describe());
    d.pier_ok(&["rmi", "cfg:1"]);
    let o = d.pier_input(&["load"], Input::Bytes(&saved.stdout));
    assert!(o.out().contains("Loaded image: cfg:1"), "{}", o.describe());
    assert_eq!(d.inspect("cfg:1")["Id"], id.as_str());

    // push | rmi | pull.
    let reg = Registry::start(&d);
    assert_eq!(push_pull(&d, "cfg:1", "127.0.0.1:5000/cfg:1"), id);
    assert_eq!(
        d.pier_ok(&["run", "--rm", "127.0.0.1:5000/cfg:1", "cat", "/built"]),
        "built\n"
    );
    drop(reg);
    d.assert_clean();
}

/// A docker-archive whose config blob is `config` (bytes as given) over the
/// busybox root.
fn archive_with_config(config: &str, tag: &str) -> Vec<u8> {
    let layer = std::fs::read(busybox_rootfs_tar()).unwrap();
    let config = config.replace("DIFF_ID", &format!("sha256:{}", sha256_hex(&layer)));
    let config_name = format!("{}.json", sha256_hex(config.as_bytes()));
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [tag],
        "Layers": ["l0/layer.tar"],
    }])
    .to_string();
    tar(&[
        Entry::File {
            name: &config_name,
            data: config.as_bytes(),
        },
        Entry::File {
            name: "manifest.json",
            data: manifest.as_bytes(),
        },
        Entry::File {
            name: "l0/layer.tar",
            data: &layer,
        },
    ])
}

#[test]
fn stored_configs_are_kept_byte_for_byte() {
    let d = TestDaemon::with_busybox();
    // Keys in no sorted order, unsorted maps, unknown keys, indentation:
    // nothing Pier would write itself, so any re-encoding would show.
    let config = r#"{
  "os": "linux",
  "rootfs": {"diff_ids": ["DIFF_ID"], "type": "layers"},
  "config": {"Labels": {"z": "1", "a": "2"}, "Cmd": ["sh"], "User": "",
             "ExposedPorts": {"90/tcp": {}, "1/tcp": {}},
             "Env": ["PATH=/bin"], "WorkingDir": "/tmp"},
  "architecture": "amd64",
  "moby.buildkit.buildinfo.v1": "e30=",
  "created": "2020-01-02T03:04:05.123456789Z",
  "history": [{"created_by": "hand made", "created": "2020-01-02T03:04:05Z"}]
}"#;
    let archive = archive_with_config(config, "odd:1");
    let o = d.pier_input(&["load"], Input::Bytes(&archive));
    assert!(o.out().contains("Loaded image: odd:1"), "{}", o.describe());
    let written = config.replace(
        "DIFF_ID",
        &format!(
            "sha256:{}",
            sha256_hex(&std::fs::read(busybox_rootfs_tar()).unwrap())
        ),
    );
    let id = format!("sha256:{}", sha256_hex(written.as_bytes()));
    assert_eq!(d.inspect("odd:1")["Id"], id.as_str());
    assert_eq!(saved_config(&d, "odd:1"), written.as_bytes());

    // Shown the Docker way all the same.
    let r = d.http("GET", "/images/odd:1/json", None, b"");
    let body = r.text();
    let cfg = raw_object(&body, "Config");
    assert!(
        cfg.contains(r#""ExposedPorts":{"1/tcp":{},"90/tcp":{}}"#),
        "{cfg}"
    );
    assert!(cfg.contains(r#""Labels":{"a":"2","z":"1"}"#), "{cfg}");
    assert!(cfg.contains(r#""WorkingDir":"/tmp""#), "{cfg}");

    let reg = Registry::start(&d);
    assert_eq!(push_pull(&d, "odd:1", "127.0.0.1:5000/odd:1"), id);
    assert_eq!(saved_config(&d, "127.0.0.1:5000/odd:1"), written.as_bytes());
    drop(reg);

    // A build on top of it reads it and is cached the second time.
    let ctx = Context::new("FROM 127.0.0.1:5000/odd:1\nRUN touch /x\n");
    d.pier_ok(&["build", "-t", "on-odd", ctx.path()]);
    let built = d.inspect("on-odd");
    assert_eq!(built["Config"]["WorkingDir"], "/tmp");
    let again = d.pier_ok(&["build", "-t", "on-odd", ctx.path()]);
    assert!(again.contains("Using cache"), "{again}");
    assert_eq!(d.inspect("on-odd")["Id"], built["Id"]);
    d.assert_clean();
}

/// Top-level names in the busybox root tarball.
fn busybox_top_level() -> Vec<String> {
    let data = std::fs::read(busybox_rootfs_tar()).unwrap();
    let mut names: Vec<String> = untar_all_names(&data)
        .into_iter()
        .filter_map(|n| {
            let n = n.trim_start_matches("./").trim_end_matches('/');
            let top = n.split('/').next()?;
            (!top.is_empty() && top != ".").then(|| top.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn untar_all_names(data: &[u8]) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-t")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .expect("tar -t");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// `ls -a /` as Docker 20.10 shows it in a container of an image made from
/// the busybox root: the image's entries plus `.dockerenv`, `proc`, `sys`,
/// `dev` and `etc`.
fn docker_root_listing() -> Vec<String> {
    let mut want: Vec<String> = busybox_top_level();
    for e in [".", "..", ".dockerenv", "proc", "sys", "dev", "etc"] {
        want.push(e.to_string());
    }
    want.sort();
    want.dedup();
    want
}

fn root_listing(d: &TestDaemon) -> Vec<String> {
    let out = d.pier_ok(&["run", "--rm", "busybox", "ls", "-a", "/"]);
    let mut got: Vec<String> = out.split_whitespace().map(str::to_string).collect();
    got.sort();
    got
}

#[test]
fn container_root_lists_what_docker_lists() {
    let mut d = TestDaemon::with_busybox();
    assert_eq!(root_listing(&d), docker_root_listing());
    let env = d.pier_ok(&[
        "run",
        "--rm",
        "busybox",
        "stat",
        "-c",
        "%F %a %u:%g %s",
        "/.dockerenv",
    ]);
    assert_eq!(env, "regular empty file 755 0:0 0\n");

    // An init layer made by an earlier Pier carries a `/.pier-init` marker;
    // after an upgrade (a restart here) containers no longer see it.
    d.stop();
    let init = d.data_root.join("init");
    let layers: Vec<PathBuf> = std::fs::read_dir(&init)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(layers.len(), 1, "{layers:?}");
    std::fs::write(layers[0].join(".pier-init"), b"").unwrap();
    d.restart();
    assert_eq!(root_listing(&d), docker_root_listing());
    assert!(!Path::new(&layers[0].join(".pier-init")).exists());
    d.assert_clean();
}
