//! The build context `pier build` sends: a directory tarred on the fly with
//! `.dockerignore` honoured, a tar from stdin passed through, or a lone
//! Dockerfile from stdin wrapped in a tar.

use anyhow::{anyhow, bail, Context as _, Result};
use pier_build::DockerIgnore;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

pub const DEFAULT_DOCKERFILE: &str = "Dockerfile";

/// Where the Dockerfile of a directory context comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum DockerfileSource {
    /// Inside the context; the slash-separated path relative to its root.
    Inside(String),
    /// Outside the context (absolute path): sent under a generated name.
    Outside(PathBuf),
    /// `-f -`: read from stdin, sent under a generated name.
    Stdin,
}

/// A context directory and its Dockerfile, resolved like docker's
/// `GetContextFromLocalDir`: `-f` is relative to the current directory.
pub fn resolve_dir(
    context: &Path,
    file: Option<&str>,
    cwd: &Path,
) -> Result<(PathBuf, DockerfileSource)> {
    let abs = absolute(cwd, context);
    let root = fs::canonicalize(&abs).map_err(|e| {
        anyhow!(
            "unable to evaluate symlinks in context path: {}",
            lstat_err(&abs, &e)
        )
    })?;
    if !root.is_dir() {
        bail!("context must be a directory: {}", root.display());
    }
    let df = match file {
        Some("-") => return Ok((root, DockerfileSource::Stdin)),
        Some(f) if !f.is_empty() => absolute(cwd, Path::new(f)),
        _ => {
            let d = root.join(DEFAULT_DOCKERFILE);
            let alt = root.join("dockerfile");
            if fs::symlink_metadata(&d).is_err() && fs::symlink_metadata(&alt).is_ok() {
                alt
            } else {
                d
            }
        }
    };
    let df = fs::canonicalize(&df).map_err(|e| {
        anyhow!(
            "unable to evaluate symlinks in Dockerfile path: {}",
            lstat_err(&df, &e)
        )
    })?;
    if df.is_dir() {
        bail!("unable to read Dockerfile {}: is a directory", df.display());
    }
    match df.strip_prefix(&root) {
        Ok(rel) if !rel.as_os_str().is_empty() => {
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            Ok((root, DockerfileSource::Inside(rel)))
        }
        _ => Ok((root, DockerfileSource::Outside(df))),
    }
}

/// Go's `os.Lstat` error text: `lstat /x/Dockerfile: no such file or directory`.
fn lstat_err(p: &Path, e: &io::Error) -> String {
    let msg = match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    format!("lstat {}: {msg}", p.display())
}

/// `p` joined to `cwd` when relative, with `.` and `..` folded lexically
/// (like Go's `filepath.Abs`).
fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// A name for a Dockerfile that is not part of the context, as docker picks
/// one: `.dockerfile.` and 20 hex digits.
pub fn generated_dockerfile_name() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::from(".dockerfile.");
    while out.len() < ".dockerfile.".len() + 20 {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(".dockerfile.".len() + 20);
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
}

/// One path to send, relative to the context root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub rel: String,
    pub kind: Kind,
}

/// A directory context ready to be tarred.
#[derive(Debug)]
pub struct DirContext {
    pub root: PathBuf,
    pub entries: Vec<Entry>,
    /// A Dockerfile that is not a file of the context: (generated name,
    /// contents). It is added to the tar and to `.dockerignore`, so `COPY .`
    /// does not pick it up.
    pub extra: Option<(String, Vec<u8>)>,
}

impl DirContext {
    /// Walks `root` and picks what to send. `dockerfile` is the name the
    /// daemon will read (never left out, nor `.dockerignore`).
    pub fn new(root: PathBuf, dockerfile: &str, extra: Option<(String, Vec<u8>)>) -> Result<Self> {
        let ignore_path = root.join(".dockerignore");
        let ignore = match fs::read(&ignore_path) {
            Ok(b) => DockerIgnore::parse(&String::from_utf8_lossy(&b))
                .map_err(|e| anyhow!("error reading .dockerignore: {e}"))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => DockerIgnore::default(),
            Err(e) => bail!(
                "error reading .dockerignore: {}",
                lstat_err(&ignore_path, &e)
            ),
        };
        let mut entries = Vec::new();
        walk(&root, "", &ignore, dockerfile, &mut entries)?;
        Ok(DirContext {
            root,
            entries,
            extra,
        })
    }

    /// Writes the tar: entries in walk order (owners 0:0, as docker sends
    /// them), then the generated Dockerfile and `.dockerignore` if needed.
    pub fn write_tar<W: Write>(&self, w: W) -> Result<W> {
        let mut b = tar::Builder::new(w);
        b.follow_symlinks(false);
        let mut ignore_written = false;
        for e in &self.entries {
            let path = self.root.join(&e.rel);
            if e.rel == ".dockerignore"
                && let Some((name, _)) = &self.extra
            {
                let mut content =
                    fs::read(&path).with_context(|| format!("can't open '{}'", path.display()))?;
                content.extend_from_slice(format!("\n{name}\n").as_bytes());
                let meta = fs::symlink_metadata(&path)
                    .with_context(|| format!("can't stat '{}'", path.display()))?;
                let mut h = header(&meta);
                h.set_size(content.len() as u64);
                b.append_data(&mut h, &e.rel, &content[..])?;
                ignore_written = true;
                continue;
            }
            let meta = fs::symlink_metadata(&path)
                .with_context(|| format!("can't stat '{}'", path.display()))?;
            let mut h = header(&meta);
            match &e.kind {
                Kind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, format!("{}/", e.rel), io::empty())?;
                }
                Kind::Symlink(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, &e.rel, target)?;
                }
                Kind::File => {
                    let f = fs::File::open(&path)
                        .with_context(|| format!("can't open '{}'", path.display()))?;
                    // The size at open time; a file that grows meanwhile is cut there.
                    let meta = f
                        .metadata()
                        .with_context(|| format!("can't stat '{}'", path.display()))?;
                    let mut h = header(&meta);
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(meta.len());
                    let mut r = Exact {
                        inner: f.take(meta.len()),
                        left: meta.len(),
                        path: &path,
                    };
                    b.append_data(&mut h, &e.rel, &mut r)?;
                }
            }
        }
        if let Some((name, content)) = &self.extra {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mut h = new_file_header(content.len(), now);
            b.append_data(&mut h, name, &content[..])?;
            if !ignore_written {
                let ig = format!("\n{name}\n");
                let mut h = new_file_header(ig.len(), now);
                b.append_data(&mut h, ".dockerignore", ig.as_bytes())?;
            }
        }
        Ok(b.into_inner()?)
    }
}

/// A reader that fails instead of ending early, so a file that shrank while
/// being sent does not corrupt the tar silently.
struct Exact<'a, R> {
    inner: R,
    left: u64,
    path: &'a Path,
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 {
            return Err(io::Error::other(format!(
                "{} changed while it was being sent",
                self.path.display()
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn header(meta: &fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(meta.mode() & 0o7777);
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// A file made up by the client (mode 0600, root's, as docker makes them).
fn new_file_header(len: usize, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o600);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(len as u64);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// Depth-first in byte order of names (Go's `filepath.Walk`), leaving out
/// what `.dockerignore` excludes. An excluded directory is skipped whole
/// unless some `!` rule could bring back something inside it.
fn walk(
    root: &Path,
    rel: &str,
    ignore: &DockerIgnore,
    dockerfile: &str,
    out: &mut Vec<Entry>,
) -> Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let rd = fs::read_dir(&dir).with_context(|| format!("can't access '{}'", dir.display()))?;
    let mut names = Vec::new();
    for e in rd {
        let e = e.with_context(|| format!("can't access '{}'", dir.display()))?;
        names.push(e.file_name());
    }
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let path = root.join(&child);
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("can't stat '{}'", path.display()))?;
        let excluded = ignore.excludes_from_context(&child, dockerfile);
        let ft = meta.file_type();
        if ft.is_dir() {
            if !excluded {
                out.push(Entry {
                    rel: child.clone(),
                    kind: Kind::Dir,
                });
            }
            // The Dockerfile is sent even from inside an excluded directory.
            let holds_dockerfile = dockerfile.starts_with(&format!("{child}/"));
            if !excluded || ignore.has_exceptions() || holds_dockerfile {
                walk(root, &child, ignore, dockerfile, out)?;
            }
            continue;
        }
        if excluded {
            continue;
        }
        let kind = if ft.is_symlink() {
            let t = fs::read_link(&path)
                .with_context(|| format!("can't read link '{}'", path.display()))?;
            Kind::Symlink(t)
        } else if ft.is_file() {
            // Docker checks readability up front, so a build does not fail halfway.
            fs::File::open(&path).map_err(|e| match e.kind() {
                io::ErrorKind::PermissionDenied => {
                    anyhow!("can't access '{}'", path.display())
                }
                _ => anyhow!("can't open '{}': {e}", path.display()),
            })?;
            Kind::File
        } else {
            // Sockets, fifos and devices have no place in a build context.
            continue;
        };
        out.push(Entry { rel: child, kind });
    }
    Ok(())
}

/// Docker's `IsArchive`: a compressed stream, or a tar header at the start.
pub fn is_archive(head: &[u8]) -> bool {
    const MAGIC: [&[u8]; 4] = [
        &[0x1f, 0x8b, 0x08],
        b"BZh",
        &[0xfd, b'7', b'z', b'X', b'Z', 0x00],
        &[0x28, 0xb5, 0x2f, 0xfd],
    ];
    if MAGIC.iter().any(|m| head.starts_with(m)) {
        return true;
    }
    head.len() >= 512 && (&head[257..262] == b"ustar" || tar_checksum_ok(&head[..512]))
}

/// An old-style (v7) tar header has no magic; its checksum still has to add up.
fn tar_checksum_ok(h: &[u8]) -> bool {
    let field = String::from_utf8_lossy(&h[148..156]);
    let Ok(want) = u64::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
    else {
        return false;
    };
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u64
            }
        })
        .sum();
    sum == want && h[0] != 0
}

/// A context holding just a Dockerfile (`pier build - < Dockerfile`).
pub fn dockerfile_only_tar(contents: &[u8]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut h = new_file_header(contents.len(), now);
    b.append_data(&mut h, DEFAULT_DOCKERFILE, contents)?;
    Ok(b.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "pier-ctx-test-{tag}-{}-{}",
                std::process::id(),
                generated_dockerfile_name()
            ));
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn write(&self, rel: &str, content: &str) {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, content).unwrap();
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// The tar's entries: name -> contents ("<dir>" for directories).
    fn entries(tar_bytes: &[u8]) -> BTreeMap<String, String> {
        let mut ar = tar::Archive::new(tar_bytes);
        let mut out = BTreeMap::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            assert_eq!(e.header().uid().unwrap(), 0);
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let v = match e.header().entry_type() {
                tar::EntryType::Directory => "<dir>".to_string(),
                tar::EntryType::Symlink => {
                    format!("-> {}", e.link_name().unwrap().unwrap().to_string_lossy())
                }
                _ => {
                    let mut s = String::new();
                    e.read_to_string(&mut s).unwrap();
                    s
                }
            };
            out.insert(name.trim_end_matches('/').to_string(), v);
        }
        out
    }

    fn names(m: &BTreeMap<String, String>) -> Vec<&str> {
        m.keys().map(String::as_str).collect()
    }

    #[test]
    fn dockerignore_rules_and_build_files_kept() {
        let t = TempDir::new("ignore");
        t.write("Dockerfile", "FROM busybox\n");
        t.write(
            ".dockerignore",
            "# comment\n*.log\nnode_modules\n**/*.tmp\ndocs/*\n!docs/keep.md\nDockerfile\n.dockerignore\n",
        );
        t.write("a.log", "x");
        t.write("src/main.rs", "fn main(){}");
        t.write("src/deep/x.tmp", "x");
        t.write("src/deep/y.txt", "y");
        t.write("node_modules/m/index.js", "x");
        t.write("docs/drop.md", "x");
        t.write("docs/keep.md", "k");
        std::os::unix::fs::symlink("src/main.rs", t.0.join("link")).unwrap();
        let ctx = DirContext::new(t.0.clone(), "Dockerfile", None).unwrap();
        let tar = ctx.write_tar(Vec::new()).unwrap();
        let m = entries(&tar);
        assert_eq!(
            names(&m),
            vec![
                ".dockerignore",
                "Dockerfile",
                "docs",
                "docs/keep.md",
                "link",
                "src",
                "src/deep",
                "src/deep/y.txt",
                "src/main.rs"
            ]
        );
        assert_eq!(m["link"], "-> src/main.rs");
        assert_eq!(m["src/main.rs"], "fn main(){}");
        // Walk order is Go's: byte order, parents first.
        let order: Vec<&str> = ctx.entries.iter().map(|e| e.rel.as_str()).collect();
        assert_eq!(order[0], ".dockerignore");
        assert!(
            order.iter().position(|r| *r == "src").unwrap()
                < order.iter().position(|r| *r == "src/main.rs").unwrap()
        );
    }

    #[test]
    fn dockerfile_in_an_excluded_directory_is_still_sent() {
        let t = TempDir::new("exdir");
        t.write(".dockerignore", "build\n");
        t.write("build/Dockerfile", "FROM busybox");
        t.write("build/other", "x");
        let ctx = DirContext::new(t.0.clone(), "build/Dockerfile", None).unwrap();
        let m = entries(&ctx.write_tar(Vec::new()).unwrap());
        assert_eq!(names(&m), vec![".dockerignore", "build/Dockerfile"]);
    }

    #[test]
    fn dockerfile_outside_context_is_added_under_a_generated_name() {
        let t = TempDir::new("outside");
        t.write("ctx/app.txt", "app");
        t.write("ctx/.dockerignore", "*.secret");
        t.write("ctx/x.secret", "s");
        t.write("files/Dockerfile.dev", "FROM busybox\nCOPY . /app\n");
        let cwd = t.0.join("files");
        let (root, src) = resolve_dir(Path::new("../ctx"), Some("Dockerfile.dev"), &cwd).unwrap();
        assert_eq!(root, fs::canonicalize(t.0.join("ctx")).unwrap());
        let DockerfileSource::Outside(p) = src else {
            panic!("{src:?}")
        };
        let name = generated_dockerfile_name();
        assert!(
            name.starts_with(".dockerfile.") && name.len() == 32,
            "{name}"
        );
        let content = fs::read(&p).unwrap();
        let ctx = DirContext::new(root, &name, Some((name.clone(), content))).unwrap();
        let m = entries(&ctx.write_tar(Vec::new()).unwrap());
        assert_eq!(m[&name], "FROM busybox\nCOPY . /app\n");
        assert_eq!(m[".dockerignore"], format!("*.secret\n{name}\n"));
        assert!(!m.contains_key("x.secret"));
        assert!(m.contains_key("app.txt"));
    }

    #[test]
    fn generated_dockerignore_when_context_has_none() {
        let t = TempDir::new("noignore");
        t.write("a", "a");
        let ctx = DirContext::new(
            t.0.clone(),
            ".dockerfile.x",
            Some((".dockerfile.x".into(), b"FROM scratch".to_vec())),
        )
        .unwrap();
        let m = entries(&ctx.write_tar(Vec::new()).unwrap());
        assert_eq!(m[".dockerignore"], "\n.dockerfile.x\n");
        assert_eq!(m[".dockerfile.x"], "FROM scratch");
    }

    #[test]
    fn dockerfile_resolution() {
        let t = TempDir::new("resolve");
        t.write("ctx/Dockerfile", "FROM busybox");
        t.write("ctx/sub/Dockerfile.x", "FROM busybox");
        let ctx = t.0.join("ctx");
        let (_, s) = resolve_dir(&ctx, None, Path::new("/")).unwrap();
        assert_eq!(s, DockerfileSource::Inside("Dockerfile".into()));
        // -f is relative to the current directory, not the context.
        let (_, s) = resolve_dir(Path::new("."), Some("sub/Dockerfile.x"), &ctx).unwrap();
        assert_eq!(s, DockerfileSource::Inside("sub/Dockerfile.x".into()));
        let (_, s) = resolve_dir(&ctx, Some("-"), Path::new("/")).unwrap();
        assert_eq!(s, DockerfileSource::Stdin);
        let e = resolve_dir(&t.0, None, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("unable to evaluate symlinks in Dockerfile path: lstat ")
                && e.ends_with("/Dockerfile: no such file or directory"),
            "{e}"
        );
        let e = resolve_dir(Path::new("/nonexistent-ctx"), None, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such file or directory"), "{e}");
        // Lower-case `dockerfile` is found when `Dockerfile` is missing.
        t.write("lower/dockerfile", "FROM busybox");
        let (_, s) = resolve_dir(&t.0.join("lower"), None, Path::new("/")).unwrap();
        assert_eq!(s, DockerfileSource::Inside("dockerfile".into()));
    }

    #[test]
    fn archives_are_told_from_dockerfiles() {
        let tar = dockerfile_only_tar(b"FROM busybox\n").unwrap();
        assert!(is_archive(&tar[..512]));
        assert_eq!(entries(&tar)["Dockerfile"], "FROM busybox\n");
        assert!(is_archive(&[0x1f, 0x8b, 0x08, 0, 0]));
        assert!(!is_archive(b"FROM busybox\nRUN echo hi\n"));
        assert!(!is_archive(&[b'#'; 600]));
    }
}
