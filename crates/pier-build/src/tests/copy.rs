//! COPY / ADD semantics and .dockerignore in builds.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use super::*;

fn build_root(files: &[(&str, &str)], df: &str) -> (fake::Fake, PathBuf, tempfile::TempDir) {
    let f = fake();
    let c = context(files);
    let out = run_build(&f, c.path(), df, |_| {});
    let root = f.root_of(&out.id());
    (f, root, c)
}

fn read(root: &std::path::Path, p: &str) -> String {
    fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn directories_copy_their_contents() {
    let (_f, root, _c) = build_root(
        &[("src/a.txt", "a"), ("src/sub/b.txt", "b")],
        "FROM base\nCOPY src /app\nCOPY src/ /app2/\nWORKDIR /w\nCOPY src rel\n",
    );
    assert_eq!(read(&root, "app/a.txt"), "a");
    assert_eq!(read(&root, "app/sub/b.txt"), "b");
    assert!(!root.join("app/src").exists());
    assert_eq!(read(&root, "app2/sub/b.txt"), "b");
    assert_eq!(read(&root, "w/rel/a.txt"), "a");
}

#[test]
fn destination_file_vs_directory() {
    let (_f, root, _c) = build_root(
        &[("a.txt", "a"), ("b.txt", "b"), ("c.md", "c")],
        "FROM base\nCOPY a.txt /renamed\nCOPY a.txt /dir/\nCOPY a.txt b.txt /multi/\nCOPY *.txt /glob/\nRUN mkdir -p existing\nCOPY c.md /existing\n",
    );
    assert_eq!(read(&root, "renamed"), "a");
    assert_eq!(read(&root, "dir/a.txt"), "a");
    assert_eq!(read(&root, "multi/b.txt"), "b");
    assert_eq!(read(&root, "glob/a.txt"), "a");
    assert_eq!(read(&root, "glob/b.txt"), "b");
    assert!(!root.join("glob/c.md").exists());
    assert_eq!(read(&root, "existing/c.md"), "c");
    let f = fake();
    let c = context(&[("a", "a"), ("b", "b")]);
    let e = run_build(&f, c.path(), "FROM base\nCOPY a b /nodir\n", |_| {}).err();
    assert!(e.contains("must be a directory and end with a /"), "{e}");
}

#[test]
fn owners_and_modes() {
    let f = fake();
    let c = context(&[("a.txt", "a"), ("d/x", "x")]);
    fs::set_permissions(c.path().join("a.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    let df = "FROM base\nCOPY a.txt /plain\nCOPY --chown=app:staff a.txt /named\nCOPY --chown=7 d /num/\nCOPY --chmod=700 a.txt /mode\nCOPY --chown=nobody a.txt /bad\n";
    let out = run_build(&f, c.path(), df, |_| {});
    assert!(out.err().contains("no such user: nobody"));
    let out = run_build(
        &f,
        c.path(),
        &df.replace("COPY --chown=nobody a.txt /bad\n", ""),
        |_| {},
    );
    let root = f.root_of(&out.id());
    let meta = |p: &str| fs::symlink_metadata(root.join(p)).unwrap();
    assert_eq!(
        (meta("plain").uid(), meta("plain").mode() & 0o7777),
        (0, 0o640)
    );
    assert_eq!((meta("named").uid(), meta("named").gid()), (1000, 50));
    assert_eq!((meta("num/x").uid(), meta("num/x").gid()), (7, 7));
    assert_eq!(
        meta("num").uid(),
        7,
        "created destination dirs get the owner"
    );
    assert_eq!(meta("mode").mode() & 0o7777, 0o700);
}

#[test]
fn symlinks_in_sources_and_roots() {
    let f = fake();
    let c = context(&[("real/f", "f")]);
    std::os::unix::fs::symlink("real/f", c.path().join("link")).unwrap();
    std::os::unix::fs::symlink("/etc", c.path().join("real/abs")).unwrap();
    let out = run_build(
        &f,
        c.path(),
        "FROM base\nCOPY link /followed\nCOPY real /tree/\nRUN ln -s ../../outside esc\nCOPY real/f /esc/f\n",
        |_| {},
    );
    let root = f.root_of(&out.id());
    assert_eq!(read(&root, "followed"), "f");
    assert_eq!(
        fs::read_link(root.join("tree/abs")).unwrap().to_str(),
        Some("/etc")
    );
    // The symlink in the root led the copy back inside the root.
    assert_eq!(read(&root, "outside/f"), "f");
}

#[test]
fn dockerignore_applies_to_copy() {
    let (_f, root, _c) = build_root(
        &[
            (".dockerignore", "*.md\n!README.md\nsecrets\n**/*.tmp\n"),
            ("README.md", "r"),
            ("NOTES.md", "n"),
            ("secrets/key", "k"),
            ("src/a.tmp", "t"),
            ("src/a.rs", "rs"),
        ],
        "FROM base\nCOPY . /app/\n",
    );
    assert_eq!(read(&root, "app/README.md"), "r");
    assert!(!root.join("app/NOTES.md").exists());
    assert!(!root.join("app/secrets").exists());
    assert!(!root.join("app/src/a.tmp").exists());
    assert_eq!(read(&root, "app/src/a.rs"), "rs");
    // The Dockerfile is copied unless ignored.
    assert!(root.join("app/Dockerfile").exists());
    let f = fake();
    let c = context(&[(".dockerignore", "secrets"), ("secrets/key", "k")]);
    let e = run_build(&f, c.path(), "FROM base\nCOPY secrets/key /k\n", |_| {}).err();
    assert!(e.contains("excluded by .dockerignore"), "{e}");
}

#[test]
fn exclude_flag_and_heredocs() {
    let (_f, root, _c) = build_root(
        &[("d/a.txt", "a"), ("d/b.log", "b")],
        "FROM base\nARG NAME=world\nCOPY --exclude=*.log d /d/\nCOPY <<EOF /greet\nhello $NAME\nEOF\nCOPY <<'EOF' /raw\nhello $NAME\nEOF\n",
    );
    assert!(root.join("d/a.txt").exists());
    assert!(!root.join("d/b.log").exists());
    assert_eq!(read(&root, "greet"), "hello world\n");
    assert_eq!(read(&root, "raw"), "hello $NAME\n");
}

fn tar_gz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, c) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(c.len() as u64);
        h.set_mode(0o644);
        h.set_uid(33);
        h.set_gid(33);
        b.append_data(&mut h, p, c.as_bytes()).unwrap();
    }
    let raw = b.into_inner().unwrap();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&raw).unwrap();
    e.finish().unwrap()
}

#[test]
fn add_extracts_local_archives_but_copy_does_not() {
    let f = fake();
    let c = context(&[]);
    fs::write(
        c.path().join("bundle.tar.gz"),
        tar_gz(&[("x/y.txt", "inside")]),
    )
    .unwrap();
    let out = run_build(
        &f,
        c.path(),
        "FROM base\nADD bundle.tar.gz /opt/\nCOPY bundle.tar.gz /copied/\nADD --unpack=false bundle.tar.gz /kept/\n",
        |_| {},
    );
    let root = f.root_of(&out.id());
    assert_eq!(read(&root, "opt/x/y.txt"), "inside");
    assert_eq!(fs::metadata(root.join("opt/x/y.txt")).unwrap().uid(), 33);
    assert!(root.join("copied/bundle.tar.gz").is_file());
    assert!(root.join("kept/bundle.tar.gz").is_file());
}

/// Serves `body` once per connection on 127.0.0.1.
fn serve(body: &'static str, count: usize) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for _ in 0..count {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    format!("http://{addr}")
}

#[test]
fn add_url_downloads() {
    let url = serve("remote body", 3);
    let f = fake();
    let c = context(&[]);
    let df = format!("FROM base\nADD {url}/files/thing.txt /dl/\nADD {url}/x /named\n");
    let out = run_build(&f, c.path(), &df, |_| {});
    let root = f.root_of(&out.id());
    assert_eq!(read(&root, "dl/thing.txt"), "remote body");
    assert_eq!(
        fs::metadata(root.join("dl/thing.txt")).unwrap().mode() & 0o777,
        0o600
    );
    assert_eq!(read(&root, "named"), "remote body");
    let e = run_build(
        &f,
        c.path(),
        &format!("FROM base\nCOPY {url}/x /y\n"),
        |_| {},
    )
    .err();
    assert_eq!(e, "source can't be a URL for COPY");
    let df = format!("FROM base\nADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 {url}/x /y\n");
    let e = run_build(&f, c.path(), &df, |_| {}).err();
    assert!(e.contains("digest mismatch"), "{e}");
}
