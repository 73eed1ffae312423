//! Issue #11, items 2 and 8: `pier cp` never reaches the host through a container's
//! symlinks, even while the container renames them under the copy; archives with
//! entry types Docker refuses (GNU sparse) are refused, not expanded.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pier_tests::{wait_until, Input, OutputExt, TestDaemon};

/// A static racer: swaps `/d` (a directory) and `/s` (a symlink to `/`) with
/// renameat2(RENAME_EXCHANGE) in a loop. busybox has no renameat2.
const RACER_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    for (;;) syscall(SYS_renameat2, AT_FDCWD, "/d", AT_FDCWD, "/s", 2 /* RENAME_EXCHANGE */);
}
"#;

fn build_racer(dir: &Path) -> PathBuf {
    let src = dir.join("racer.c");
    let bin = dir.join("racer");
    std::fs::write(&src, RACER_C).unwrap();
    let o = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("run gcc");
    assert!(
        o.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    bin
}

/// One tar entry: name, type flag, link name, content.
type TarEntry = (String, u8, String, Vec<u8>);

fn octal(b: &[u8]) -> u64 {
    let s = String::from_utf8_lossy(b);
    u64::from_str_radix(s.trim_matches(|c: char| c == '\0' || c == ' '), 8).unwrap_or(0)
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// A minimal tar reader (ustar + GNU long names), enough to check what came out.
fn read_tar(data: &[u8]) -> Vec<TarEntry> {
    let mut out = Vec::new();
    let mut off = 0;
    let (mut long_name, mut long_link) = (None, None);
    while off + 512 <= data.len() {
        let h = &data[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let size = octal(&h[124..136]) as usize;
        let kind = h[156];
        let body = data[off + 512..off + 512 + size].to_vec();
        off += 512 + size.div_ceil(512) * 512;
        match kind {
            b'L' => long_name = Some(cstr(&body)),
            b'K' => long_link = Some(cstr(&body)),
            _ => out.push((
                long_name.take().unwrap_or_else(|| cstr(&h[0..100])),
                kind,
                long_link.take().unwrap_or_else(|| cstr(&h[157..257])),
                body,
            )),
        }
    }
    out
}

fn b64decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let s: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= u32::from(val(c)) << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn path_stat(d: &TestDaemon, ctr: &str, path: &str) -> serde_json::Value {
    let r = d.http(
        "HEAD",
        &format!("/containers/{ctr}/archive?path={path}"),
        None,
        b"",
    );
    assert_eq!(r.status, 200, "HEAD archive {path}");
    let h = r
        .header("X-Docker-Container-Path-Stat")
        .expect("path stat header");
    serde_json::from_slice(&b64decode(h)).unwrap()
}

/// Starts the racing container; returns its id. `/d/etc/shadow` holds `MARKER`,
/// the container's own `/etc/shadow` holds `CTRSHADOW`, so every answer is one
/// of the two, and the host's never.
fn racing_container(d: &TestDaemon, racer: &Path) -> String {
    let id = d.pier_ok(&[
        "run",
        "-d",
        "-v",
        &format!("{}:/racer:ro", racer.display()),
        "busybox",
        "sh",
        "-c",
        "mkdir -p /d/etc && echo MARKER > /d/etc/shadow && echo CTRSHADOW > /etc/shadow \
         && ln -s / /s && touch /ready && exec /racer",
    ]);
    let id = id.trim().to_string();
    assert!(wait_until(Duration::from_secs(10), || d
        .pier(&["exec", &id, "test", "-e", "/ready"])
        .status
        .success()));
    id
}

#[test]
fn cp_from_a_racing_container_never_reads_the_host() {
    let d = TestDaemon::with_busybox();
    let tmp = d.root.join("cp-race");
    std::fs::create_dir_all(&tmp).unwrap();
    let racer = build_racer(&tmp);
    let host_shadow = std::fs::read("/etc/shadow").expect("read host /etc/shadow");
    assert!(!host_shadow.starts_with(b"MARKER") && !host_shadow.starts_with(b"CTRSHADOW"));
    let id = racing_container(&d, &racer);

    let (mut failed, mut marker, mut ctr) = (0, 0, 0);
    for _ in 0..300 {
        let r = d.http(
            "GET",
            &format!("/containers/{id}/archive?path=/d/etc/shadow"),
            None,
            b"",
        );
        if r.status != 200 {
            failed += 1;
            continue;
        }
        let entries = read_tar(&r.body);
        assert_eq!(entries.len(), 1, "one file: {entries:?}");
        let body = &entries[0].3;
        assert_ne!(body, &host_shadow, "the host's /etc/shadow came out");
        match &body[..] {
            b"MARKER\n" => marker += 1,
            b"CTRSHADOW\n" => ctr += 1,
            other => panic!("unexpected content {:?}", String::from_utf8_lossy(other)),
        }
    }
    eprintln!(
        "GET archive x300: {marker} from /d, {ctr} through the swapped link, {failed} failed"
    );
    assert_eq!(failed, 0, "copies failed while the container renamed");
    // Which side each copy saw is up to the scheduler; that the racer ran
    // throughout is what matters.
    assert_eq!(marker + ctr, 300);
    assert_eq!(d.inspect(&id)["State"]["Running"], true, "the racer died");

    // The CLI, same race.
    for _ in 0..30 {
        let o = d.pier(&["cp", &format!("{id}:/d/etc/shadow"), "-"]);
        assert!(o.status.success(), "cp failed: {}", o.describe());
        let entries = read_tar(&o.stdout);
        assert_ne!(entries[0].3, host_shadow, "the host's /etc/shadow came out");
    }
    // The stat header of HEAD never reports the host's file either.
    for _ in 0..50 {
        let st = path_stat(&d, &id, "/d/etc/shadow");
        assert!(
            st["size"] == 7 || st["size"] == 10,
            "size of the container's file, not the host's: {st}"
        );
    }
    d.pier_ok(&["rm", "-f", &id]);
}

#[test]
fn cp_into_a_racing_container_never_writes_the_host() {
    let d = TestDaemon::with_busybox();
    let tmp = d.root.join("cp-race-put");
    std::fs::create_dir_all(&tmp).unwrap();
    let racer = build_racer(&tmp);
    let id = racing_container(&d, &racer);
    let name = format!("pier-cp-race-{}", std::process::id());
    let host_target = Path::new("/").join(&name);
    let src = tmp.join(&name);
    std::fs::write(&src, "from the test\n").unwrap();

    let mut failed = 0;
    for i in 0..100 {
        let o = d.pier(&["cp", src.to_str().unwrap(), &format!("{id}:/d/{name}")]);
        if !o.status.success() {
            failed += 1;
        }
        assert!(
            !host_target.exists(),
            "copy {i} wrote the host's {}",
            host_target.display()
        );
    }
    eprintln!("cp into /d x100 while racing: {failed} failed");
    assert_eq!(failed, 0, "copies failed while the container renamed");
    // It landed in the container, in /d or in its root.
    let o = d.pier(&[
        "exec",
        &id,
        "sh",
        "-c",
        &format!("cat /d/{name} /s/{name} 2>/dev/null | head -1"),
    ]);
    assert_eq!(o.out(), "from the test\n");
    d.pier_ok(&["rm", "-f", &id]);
}

#[test]
fn cp_of_the_root_and_of_a_link_to_the_root() {
    let d = TestDaemon::with_busybox();
    let id = d.pier_ok(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "ln -s / /lnk && exec sleep 1000",
    ]);
    let id = id.trim().to_string();
    assert!(wait_until(Duration::from_secs(5), || d
        .pier(&["exec", &id, "test", "-L", "/lnk"])
        .status
        .success()));

    // `cp ctr:/ -` is the whole tree, as the root's contents.
    let o = d.pier(&["cp", &format!("{id}:/"), "-"]);
    assert!(o.status.success(), "{}", o.describe());
    let entries = read_tar(&o.stdout);
    // Docker's names: `/`, then `/bin`... (never `//bin`).
    assert_eq!(entries[0].0, "/");
    assert!(
        entries.iter().any(|e| e.0 == "/bin/busybox"),
        "busybox in the root's archive"
    );
    assert!(!entries.iter().any(|e| e.0.starts_with("//")));
    let link = entries.iter().find(|e| e.0 == "/lnk").expect("/lnk");
    assert_eq!((link.1, link.2.as_str()), (b'2', "/"));

    let o = d.pier(&["cp", &format!("{id}:/nope"), "-"]);
    assert!(!o.status.success());
    assert!(
        o.err()
            .contains(&format!("Could not find the file /nope in container {id}")),
        "{}",
        o.describe()
    );

    // The link itself: `/`, in the stat header and in the tar.
    let st = path_stat(&d, &id, "/lnk");
    assert_eq!(st["linkTarget"], "/", "{st}");
    assert_eq!(st["name"], "lnk");
    let st = path_stat(&d, &id, "/");
    assert_eq!(st["name"], "/");
    let o = d.pier(&["cp", &format!("{id}:/lnk"), "-"]);
    let entries = read_tar(&o.stdout);
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].0.as_str(), entries[0].1, entries[0].2.as_str()),
        ("lnk", b'2', "/")
    );

    // Round trip through the host.
    let tmp = d.root.join("cp-lnk");
    std::fs::create_dir_all(&tmp).unwrap();
    let local = tmp.join("l");
    d.pier_ok(&["cp", &format!("{id}:/lnk"), local.to_str().unwrap()]);
    assert_eq!(std::fs::read_link(&local).unwrap(), Path::new("/"));
    d.pier_ok(&["cp", local.to_str().unwrap(), &format!("{id}:/lnk2")]);
    // The whole root onto the host, through pier's own CLI.
    let root = tmp.join("root");
    d.pier_ok(&["cp", &format!("{id}:/"), root.to_str().unwrap()]);
    assert!(root.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(root.join("lnk")).unwrap(),
        Path::new("/")
    );
    assert_eq!(d.pier_ok(&["exec", &id, "readlink", "/lnk2"]), "/\n");
    d.pier_ok(&["rm", "-f", &id]);
}

#[test]
fn cp_through_volumes_binds_and_tmpfs_running_and_stopped() {
    let d = TestDaemon::with_busybox();
    let bind = d.root.join("cp-bind");
    std::fs::create_dir_all(&bind).unwrap();
    std::fs::write(bind.join("hostfile"), "on the host\n").unwrap();
    let id = d.pier_ok(&[
        "run",
        "-d",
        "-v",
        "cpvol:/data",
        "-v",
        &format!("{}:/bind", bind.display()),
        "--tmpfs",
        "/tm",
        "busybox",
        "sh",
        "-c",
        "ln -s /data /tolink && exec sleep 1000",
    ]);
    let id = id.trim().to_string();
    let src = d.root.join("cp-src");
    std::fs::write(&src, "copied in\n").unwrap();
    let src = src.to_str().unwrap();

    // Running: into the volume, the bind (the host sees it), the tmpfs.
    d.pier_ok(&["cp", src, &format!("{id}:/data/f")]);
    d.pier_ok(&["cp", src, &format!("{id}:/bind/f")]);
    d.pier_ok(&["cp", src, &format!("{id}:/tm/f")]);
    assert_eq!(
        d.pier_ok(&["exec", &id, "cat", "/data/f", "/tm/f"]),
        "copied in\ncopied in\n"
    );
    assert_eq!(
        std::fs::read_to_string(bind.join("f")).unwrap(),
        "copied in\n"
    );
    // Out of them, also through a symlink into the volume.
    let out = |p: &str| {
        let o = d.pier(&["cp", &format!("{id}:{p}"), "-"]);
        assert!(o.status.success(), "cp {p}: {}", o.describe());
        String::from_utf8(read_tar(&o.stdout)[0].3.clone()).unwrap()
    };
    assert_eq!(out("/bind/hostfile"), "on the host\n");
    assert_eq!(out("/tm/f"), "copied in\n");
    assert_eq!(out("/tolink/f"), "copied in\n");

    // Stopped: the volume and the bind are still reached where the container sees them.
    d.pier_ok(&["stop", "-t", "0", &id]);
    assert_eq!(out("/data/f"), "copied in\n");
    assert_eq!(out("/tolink/f"), "copied in\n");
    assert_eq!(out("/bind/hostfile"), "on the host\n");
    d.pier_ok(&["cp", src, &format!("{id}:/data/g")]);
    d.pier_ok(&["cp", src, &format!("{id}:/bind/g")]);
    d.pier_ok(&["cp", src, &format!("{id}:/rootfile")]);
    assert_eq!(
        std::fs::read_to_string(bind.join("g")).unwrap(),
        "copied in\n"
    );
    // The whole root of a stopped container includes its volume.
    let o = d.pier(&["cp", &format!("{id}:/"), "-"]);
    assert!(o.status.success(), "{}", o.describe());
    let names: Vec<String> = read_tar(&o.stdout).into_iter().map(|e| e.0).collect();
    assert!(names.contains(&"/data/g".to_string()), "{names:?}");
    d.pier_ok(&["start", &id]);
    assert_eq!(
        d.pier_ok(&["exec", &id, "cat", "/data/g", "/rootfile"]),
        "copied in\ncopied in\n"
    );
    d.pier_ok(&["rm", "-f", &id]);
    // A missing working directory is made where the container sees it: in the volume.
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "-v",
        "cpvol:/data",
        "-w",
        "/data/new/wd",
        "busybox",
        "pwd",
    ]);
    assert_eq!(out, "/data/new/wd\n");
    let out = d.pier_ok(&["run", "--rm", "-v", "cpvol:/v", "busybox", "ls", "/v/new"]);
    assert_eq!(out, "wd\n");
    d.pier_ok(&["volume", "rm", "cpvol"]);
}

/// A GNU sparse ('S') tar: 1 KiB of data that claims a 4 GiB file, after an
/// ordinary file that must not be left behind either.
fn sparse_tar() -> Vec<u8> {
    let mut out = pier_tests::tar::build(&[pier_tests::tar::Entry::File {
        name: "before",
        data: b"ok\n",
    }]);
    out.truncate(out.len() - 1024);
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], off: usize, v: &[u8]| h[off..off + v.len()].copy_from_slice(v);
    let oct = |h: &mut [u8; 512], off: usize, len: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = len - 1);
        h[off..off + len].copy_from_slice(s.as_bytes());
    };
    put(&mut h, 0, b"big");
    oct(&mut h, 100, 8, 0o644);
    oct(&mut h, 108, 8, 0);
    oct(&mut h, 116, 8, 0);
    oct(&mut h, 124, 12, 1024);
    oct(&mut h, 136, 12, 0);
    h[156] = b'S';
    // GNU magic: the sparse map lives in the GNU header fields.
    put(&mut h, 257, b"ustar  \0");
    let four_gib = 4u64 << 30;
    oct(&mut h, 386, 12, 0);
    oct(&mut h, 398, 12, 512);
    oct(&mut h, 410, 12, four_gib - 512);
    oct(&mut h, 422, 12, 512);
    oct(&mut h, 483, 12, four_gib);
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    oct(&mut h, 148, 7, u64::from(sum));
    h[155] = b' ';
    out.extend_from_slice(&h);
    out.extend_from_slice(&[b'x'; 1024]);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn sparse_archives_are_refused() {
    let d = TestDaemon::with_busybox();
    let tar = sparse_tar();
    assert!(tar.len() < 4096);
    let images_before = d.pier_ok(&["images", "-q"]);

    let o = d.pier_input(&["import", "-", "sparse:bomb"], Input::Bytes(&tar));
    assert!(!o.status.success(), "import of a sparse tar succeeded");
    assert!(o.err().contains("sparse"), "{}", o.describe());
    assert_eq!(d.pier_ok(&["images", "-q"]), images_before);

    let id = d.pier_ok(&["run", "-d", "busybox", "sleep", "1000"]);
    let id = id.trim().to_string();
    let o = d.pier_input(&["cp", "-", &format!("{id}:/")], Input::Bytes(&tar));
    assert!(!o.status.success(), "cp of a sparse tar succeeded");
    assert!(o.err().contains("sparse"), "{}", o.describe());
    let o = d.pier(&["exec", &id, "ls", "/big"]);
    assert!(
        !o.status.success(),
        "nothing is left behind: {}",
        o.describe()
    );
    // The API answers 400, as for any bad archive.
    let r = d.http(
        "PUT",
        &format!("/containers/{id}/archive?path=/"),
        Some("application/x-tar"),
        &tar,
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    d.pier_ok(&["rm", "-f", &id]);
}

#[test]
fn sparse_layers_are_refused_by_load() {
    let d = TestDaemon::with_busybox();
    let layer = sparse_tar();
    let tmp = d.root.join("sparse-load");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(tmp.join("layer.tar"), &layer).unwrap();
    let o = Command::new("sha256sum")
        .arg(tmp.join("layer.tar"))
        .output()
        .unwrap();
    let sum = String::from_utf8(o.stdout).unwrap();
    let sum = sum.split_whitespace().next().unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["sha256:{sum}"]}}}}"#
    );
    let manifest =
        r#"[{"Config":"config.json","RepoTags":["sparse:load"],"Layers":["layer.tar"]}]"#;
    let archive = pier_tests::tar::build(&[
        pier_tests::tar::Entry::File {
            name: "config.json",
            data: config.as_bytes(),
        },
        pier_tests::tar::Entry::File {
            name: "layer.tar",
            data: &layer,
        },
        pier_tests::tar::Entry::File {
            name: "manifest.json",
            data: manifest.as_bytes(),
        },
    ]);
    let images_before = d.pier_ok(&["images", "-q"]);
    let o = d.pier_input(&["load"], Input::Bytes(&archive));
    assert!(!o.status.success(), "load of a sparse layer succeeded");
    assert!(o.err().contains("sparse"), "{}", o.describe());
    assert_eq!(d.pier_ok(&["images", "-q"]), images_before);
}

/// The docker CLI (Debian's docker.io) copies in and out of a Pier container,
/// including the root and a link to it.
#[test]
fn docker_cp_against_pier() {
    const DOCKER: &str = "/usr/bin/docker";
    if !Path::new(DOCKER).exists() {
        assert!(
            std::env::var_os("PIER_SKIP_DOCKER_CLI").is_some(),
            "{DOCKER} missing: apt-get install docker.io (or set PIER_SKIP_DOCKER_CLI=1)"
        );
        return;
    }
    let d = TestDaemon::with_busybox();
    let docker = |args: &[&str]| {
        let o = Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", d.root.join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    let id = d.pier_ok(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "ln -s / /lnk && mkdir /dir && echo in > /dir/f && exec sleep 1000",
    ]);
    let id = id.trim().to_string();
    assert!(wait_until(Duration::from_secs(5), || d
        .pier(&["exec", &id, "test", "-f", "/dir/f"])
        .status
        .success()));
    let tmp = d.root.join("docker-cp");
    std::fs::create_dir_all(&tmp).unwrap();
    let t = |p: &str| tmp.join(p).to_str().unwrap().to_string();

    docker(&["cp", &format!("{id}:/dir"), &t("dir")]);
    assert_eq!(std::fs::read_to_string(tmp.join("dir/f")).unwrap(), "in\n");
    docker(&["cp", &format!("{id}:/dir/."), &t("contents")]);
    assert_eq!(
        std::fs::read_to_string(tmp.join("contents/f")).unwrap(),
        "in\n"
    );
    docker(&["cp", &format!("{id}:/lnk"), &t("lnk")]);
    assert_eq!(std::fs::read_link(tmp.join("lnk")).unwrap(), Path::new("/"));
    docker(&["cp", &format!("{id}:/"), &t("root")]);
    assert!(tmp.join("root/bin/busybox").is_file());
    assert_eq!(
        std::fs::read_to_string(tmp.join("root/dir/f")).unwrap(),
        "in\n"
    );

    std::fs::write(tmp.join("up"), "up\n").unwrap();
    docker(&["cp", &t("up"), &format!("{id}:/dir/")]);
    docker(&["cp", &t("lnk"), &format!("{id}:/lnk2")]);
    assert_eq!(d.pier_ok(&["exec", &id, "cat", "/dir/up"]), "up\n");
    assert_eq!(d.pier_ok(&["exec", &id, "readlink", "/lnk2"]), "/\n");
    d.pier_ok(&["rm", "-f", &id]);
}

#[test]
fn sparse_archives_are_refused_by_add_in_a_build() {
    let d = TestDaemon::with_busybox();
    let ctx = d.root.join("sparse-add");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("bomb.tar"), sparse_tar()).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nADD bomb.tar /\n").unwrap();
    let o = d.pier(&["build", "-q", "-t", "sparse:add", ctx.to_str().unwrap()]);
    assert!(!o.status.success(), "ADD of a sparse tar succeeded");
    let all = format!("{}{}", o.out(), o.err());
    assert!(all.contains("GNUSparse"), "{}", o.describe());
    assert!(!d.pier_ok(&["images"]).contains("sparse"));
}
