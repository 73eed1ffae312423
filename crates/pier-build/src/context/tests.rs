use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;

/// A tar entry written byte by byte, so tests can hold names that the tar
/// crate's safe builders refuse.
fn raw_entry(out: &mut Vec<u8>, name: &str, kind: u8, link: &str, data: &[u8], mode: u32) {
    let mut h = tar::Header::new_old();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_uid(1000);
    h.set_gid(1000);
    h.set_mtime(1_000_000);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0, pad));
}

fn finish(mut v: Vec<u8>) -> Vec<u8> {
    v.extend(std::iter::repeat_n(0, 1024));
    v
}

#[test]
fn plain_and_gzip_contexts() {
    let mut t = Vec::new();
    raw_entry(&mut t, "dir/", b'5', "", b"", 0o750);
    raw_entry(&mut t, "dir/a.txt", b'0', "", b"hello", 0o640);
    raw_entry(&mut t, "./b", b'0', "", b"b", 0o755);
    raw_entry(&mut t, "ln", b'2', "dir/a.txt", b"", 0o777);
    raw_entry(&mut t, "hard", b'1', "dir/a.txt", b"", 0o640);
    let t = finish(t);
    for gz in [false, true] {
        let dest = tempfile::tempdir().unwrap();
        let bytes = if gz {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&t).unwrap();
            e.finish().unwrap()
        } else {
            t.clone()
        };
        unpack_context(&bytes[..], dest.path()).unwrap();
        let d = dest.path();
        assert_eq!(fs::read_to_string(d.join("dir/a.txt")).unwrap(), "hello");
        assert_eq!(fs::metadata(d.join("dir")).unwrap().mode() & 0o777, 0o750);
        assert_eq!(fs::metadata(d.join("b")).unwrap().mode() & 0o777, 0o755);
        assert_eq!(
            fs::read_link(d.join("ln")).unwrap().to_str(),
            Some("dir/a.txt")
        );
        assert_eq!(fs::read_to_string(d.join("hard")).unwrap(), "hello");
        // Context files belong to whoever unpacks them, not to the archive.
        assert_ne!(fs::metadata(d.join("b")).unwrap().uid(), 1000);
    }
}

fn hostile(entries: &[(&str, u8, &str, &[u8])]) -> (tempfile::TempDir, Result<()>) {
    let outer = tempfile::tempdir().unwrap();
    let dest = outer.path().join("ctx");
    fs::create_dir(&dest).unwrap();
    let mut t = Vec::new();
    for (name, kind, link, data) in entries {
        raw_entry(&mut t, name, *kind, link, data, 0o644);
    }
    let r = unpack_context(&finish(t)[..], &dest);
    (outer, r)
}

#[test]
fn dotdot_is_refused() {
    let (outer, r) = hostile(&[("../evil", b'0', "", b"x")]);
    assert!(r.is_err());
    assert!(!outer.path().join("evil").exists());
    let (_, r) = hostile(&[("a/../../evil", b'0', "", b"x")]);
    assert!(r.is_err());
}

#[test]
fn absolute_paths_land_inside() {
    let (outer, r) = hostile(&[("/abs", b'0', "", b"x")]);
    r.unwrap();
    assert!(outer.path().join("ctx/abs").exists());
}

#[test]
fn symlink_escapes_are_contained() {
    let outer = tempfile::tempdir().unwrap();
    let victim = outer.path().join("victim");
    fs::create_dir(&victim).unwrap();
    // A link to an absolute host path, then a file "through" it.
    let (o, r) = hostile(&[
        ("esc", b'2', victim.to_str().unwrap(), b""),
        ("esc/pwned", b'0', "", b"x"),
        ("up", b'2', "../..", b""),
        ("up/pwned2", b'0', "", b"x"),
    ]);
    r.unwrap();
    assert!(!victim.join("pwned").exists());
    assert!(!o.path().join("pwned2").exists());
    // Both writes stayed inside the context, at the link targets taken
    // relative to it.
    let inside = o.path().join("ctx").join(victim.strip_prefix("/").unwrap());
    assert!(inside.join("pwned").exists());
    assert!(o.path().join("ctx/pwned2").exists());
}

#[test]
fn overwriting_a_symlink_replaces_the_link() {
    let outer = tempfile::tempdir().unwrap();
    let victim = outer.path().join("victim.txt");
    fs::write(&victim, "safe").unwrap();
    let (o, r) = hostile(&[
        ("f", b'2', victim.to_str().unwrap(), b""),
        ("f", b'0', "", b"evil"),
    ]);
    r.unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "safe");
    assert_eq!(fs::read_to_string(o.path().join("ctx/f")).unwrap(), "evil");
    let _ = o;
}

#[test]
fn hardlink_escapes_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    let secret = outer.path().join("secret");
    fs::write(&secret, "s").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let (_, r) = hostile(&[("h", b'1', "../secret", b"")]);
    assert!(r.is_err());
    // An absolute link name is taken inside the destination, where nothing is.
    let (_, r) = hostile(&[("h", b'1', secret.to_str().unwrap(), b"")]);
    assert!(r.is_err());
    // Through a symlink that points outside: resolved inside, so missing.
    let (_, r) = hostile(&[
        ("l", b'2', outer.path().to_str().unwrap(), b""),
        ("h", b'1', "l/secret", b""),
    ]);
    assert!(r.is_err());
}

#[test]
fn devices_are_skipped() {
    let (o, r) = hostile(&[("dev", b'3', "", b""), ("fifo", b'6', "", b"")]);
    r.unwrap();
    assert!(!o.path().join("ctx/dev").exists());
    assert!(!o.path().join("ctx/fifo").exists());
}

#[test]
fn garbage_is_an_error() {
    let dest = tempfile::tempdir().unwrap();
    let junk = vec![0x42u8; 2048];
    assert!(unpack_context(&junk[..], dest.path()).is_err());
}

#[test]
fn add_archive_detection_and_owners() {
    let d = tempfile::tempdir().unwrap();
    let mut t = Vec::new();
    raw_entry(&mut t, "x/y", b'0', "", b"data", 0o600);
    // The raw (v7-style) header has no ustar magic; write a ustar one.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(4);
    h.set_mode(0o600);
    h.set_uid(123);
    h.set_gid(456);
    b.append_data(&mut h, "x/y", &b"data"[..]).unwrap();
    let ustar = b.into_inner().unwrap();
    let plain = d.path().join("a.tar");
    fs::write(&plain, &ustar).unwrap();
    let gz = d.path().join("a.tar.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&ustar).unwrap();
    fs::write(&gz, e.finish().unwrap()).unwrap();
    let text = d.path().join("t.txt");
    fs::write(&text, "just text").unwrap();
    assert_eq!(archive_kind(&plain).unwrap(), Some(false));
    assert_eq!(archive_kind(&gz).unwrap(), Some(true));
    assert_eq!(archive_kind(&text).unwrap(), None);

    let root = d.path().join("root");
    fs::create_dir(&root).unwrap();
    extract_archive(&gz, true, &root, "/opt", None).unwrap();
    let m = fs::metadata(root.join("opt/x/y")).unwrap();
    assert_eq!((m.uid(), m.gid()), (123, 456));
    extract_archive(&plain, false, &root, "/o2", Some((5, 6))).unwrap();
    let m = fs::metadata(root.join("o2/x/y")).unwrap();
    assert_eq!((m.uid(), m.gid()), (5, 6));
}

/// A `.tar.gz` made of several gzip members (as pigz, eStargz or Pier's own
/// push write them) is read whole, as Docker reads it.
#[test]
fn add_reads_every_gzip_member() {
    let t = tempfile::tempdir().unwrap();
    let mut tb = tar::Builder::new(Vec::new());
    for name in ["a", "b"] {
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        tb.append_data(&mut h, name, &b"xyz"[..]).unwrap();
    }
    let tar = tb.into_inner().unwrap();
    let mut gz = Vec::new();
    for part in [&tar[..512], &tar[512..]] {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(part).unwrap();
        gz.extend(e.finish().unwrap());
    }
    let archive = t.path().join("x.tar.gz");
    fs::write(&archive, gz).unwrap();
    assert_eq!(archive_kind(&archive).unwrap(), Some(true));
    let root = t.path().join("root");
    fs::create_dir(&root).unwrap();
    extract_archive(&archive, true, &root, "/", None).unwrap();
    assert_eq!(fs::read(root.join("a")).unwrap(), b"xyz");
    assert_eq!(fs::read(root.join("b")).unwrap(), b"xyz");
}

/// A GNU sparse ('S') tar: 512 bytes of data that claim a 4 GiB file.
fn sparse_tar() -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path("big").unwrap();
    h.set_mode(0o644);
    h.set_size(512);
    h.set_entry_type(tar::EntryType::GNUSparse);
    let g = h.as_gnu_mut().unwrap();
    g.sparse[0].offset = *b"37777777000\0";
    g.sparse[0].numbytes = *b"00000001000\0";
    g.realsize = *b"40000000000\0";
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend([b'x'; 512]);
    out.extend([0; 1024]);
    out
}

#[test]
fn sparse_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = unpack_context(&sparse_tar()[..], dir.path()).unwrap_err();
    assert!(err.to_string().contains("GNUSparse"), "{err}");
    assert!(!dir.path().join("big").exists());
}

#[test]
fn an_mtime_beyond_any_clock_does_not_panic() {
    let outer = tempfile::tempdir().unwrap();
    let dest = outer.path().join("ctx");
    fs::create_dir(&dest).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("far").unwrap();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    // GNU base-256: the largest time a client can put in the header.
    h.set_mtime(u64::MAX);
    h.set_cksum();
    let mut t = h.as_bytes().to_vec();
    t.push(b'x');
    t.extend(std::iter::repeat_n(0, 511));
    unpack_context(&finish(t)[..], &dest).unwrap();
    assert_eq!(fs::read_to_string(dest.join("far")).unwrap(), "x");
}
