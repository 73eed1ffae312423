//! COPY and ADD: source selection (context with .dockerignore, another
//! stage, an image, heredocs, URLs), the content hash that keys the cache,
//! and the copy itself into the work root.

use std::path::{Path, PathBuf};

use pier_dockerfile::{Add, Copy, SourceContent};
use pier_reference::{Digest, Sha256Writer};

use super::stage::StageState;
use super::Builder;
use crate::context::{archive_kind, extract_archive};
use crate::error::{BuildError, Result};
use crate::fsutil::{
    copy_tree, hash_tree, mkdir_all_in_root, resolve_in_root, sorted_names, CopyAttrs,
};
use crate::ignore::{clean_path, DockerIgnore, Glob};
use crate::users::resolve_chown;

/// One selected source.
#[derive(Debug, Clone)]
struct Item {
    host: PathBuf,
    /// File name used when the destination is a directory.
    name: String,
    /// Path relative to the source root (for .dockerignore), "" for the root.
    rel: String,
    is_dir: bool,
    /// From a URL or a heredoc: never unpacked, owned by root.
    generated: bool,
}

/// COPY and ADD after expansion.
struct Spec<'x> {
    keyword: &'static str,
    sources: Vec<String>,
    heredocs: &'x [SourceContent],
    dest: String,
    from: Option<String>,
    chown: Option<String>,
    chmod: Option<u32>,
    exclude: DockerIgnore,
    add: bool,
    unpack: bool,
    checksum: Option<String>,
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn join_rel(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

fn parse_chmod(s: &str) -> Result<u32> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| BuildError::Invalid(format!("invalid chmod parameter: {s}")))
}

impl Builder<'_> {
    pub(crate) fn copy_step(&mut self, st: &mut StageState, c: &Copy) -> Result<()> {
        if c.parents {
            return Err(BuildError::Invalid(
                "COPY --parents is not supported".into(),
            ));
        }
        let spec = self.spec(
            st,
            "COPY",
            &c.sources,
            &c.heredocs,
            &c.dest,
            c.from.as_deref(),
            c.chown.as_deref(),
            c.chmod.as_deref(),
            &c.exclude,
        )?;
        self.copy_like(
            st,
            Spec {
                add: false,
                unpack: false,
                checksum: None,
                ..spec
            },
        )
    }

    pub(crate) fn add_step(&mut self, st: &mut StageState, a: &Add) -> Result<()> {
        let spec = self.spec(
            st,
            "ADD",
            &a.sources,
            &a.heredocs,
            &a.dest,
            None,
            a.chown.as_deref(),
            a.chmod.as_deref(),
            &a.exclude,
        )?;
        let checksum = match &a.checksum {
            Some(c) => Some(self.expand(st, c)?),
            None => None,
        };
        self.copy_like(
            st,
            Spec {
                add: true,
                unpack: a.unpack.unwrap_or(true),
                checksum,
                ..spec
            },
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn spec<'x>(
        &self,
        st: &StageState,
        keyword: &'static str,
        sources: &[String],
        heredocs: &'x [SourceContent],
        dest: &str,
        from: Option<&str>,
        chown: Option<&str>,
        chmod: Option<&str>,
        exclude: &[String],
    ) -> Result<Spec<'x>> {
        let sources = sources
            .iter()
            .map(|s| self.expand(st, s))
            .collect::<Result<Vec<_>>>()?;
        let opt = |v: Option<&str>| -> Result<Option<String>> {
            v.map(|v| self.expand(st, v)).transpose()
        };
        let chmod = match opt(chmod)? {
            Some(m) => Some(parse_chmod(&m)?),
            None => None,
        };
        let mut ex = Vec::new();
        for p in exclude {
            ex.push((false, self.expand(st, p)?));
        }
        Ok(Spec {
            keyword,
            sources,
            heredocs,
            dest: self.expand(st, dest)?,
            from: opt(from)?,
            chown: opt(chown)?.filter(|c| !c.is_empty()),
            chmod,
            exclude: DockerIgnore::from_patterns(ex).map_err(BuildError::Invalid)?,
            add: false,
            unpack: false,
            checksum: None,
        })
    }

    fn copy_like(&mut self, st: &mut StageState, spec: Spec<'_>) -> Result<()> {
        let (src_root, from_context) = match &spec.from {
            None => (self.common.opts.context.clone(), true),
            Some(f) => {
                let layers = self.layers_of(f, st.index)?;
                (self.borrow_root(&layers)?, false)
            }
        };
        let mut items = Vec::new();
        for s in &spec.sources {
            if is_url(s) {
                if !spec.add {
                    return Err(BuildError::Invalid("source can't be a URL for COPY".into()));
                }
                items.push(self.download(s, spec.checksum.as_deref())?);
                continue;
            }
            let ignore = from_context.then_some(&self.common.ignore);
            items.extend(select(&src_root, s, ignore)?);
        }
        for h in spec.heredocs {
            items.push(self.heredoc_item(st, h)?);
        }
        let dest_raw = spec.dest.clone();
        let mut dest_dir = dest_raw.ends_with('/') || dest_raw == "." || dest_raw.is_empty();
        let mut dest = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            format!("{}/{}", st.workdir(), dest_raw)
        };
        dest = clean_path(&dest);
        if spec.sources.len() + spec.heredocs.len() > 1 && !dest_dir {
            return Err(BuildError::Invalid(format!(
                "When using {} with more than one source file, the destination must be a directory and end with a /",
                spec.keyword
            )));
        }
        if items.len() > 1 {
            dest_dir = true;
        }

        let ignore = self.common.ignore.clone();
        let exclude = spec.exclude.clone();
        let mut h = Sha256Writer::new();
        h.update(
            format!(
                "{} dest={dest} dir={dest_dir} chown={:?} chmod={:?} ctx={from_context} unpack={}\n",
                spec.keyword, spec.chown, spec.chmod, spec.unpack && spec.add
            )
            .as_bytes(),
        );
        for it in &items {
            h.update(format!("item {} dir={}\n", it.name, it.is_dir).as_bytes());
            let skip = skipper(from_context && !it.generated, &ignore, &exclude, &it.rel);
            hash_tree(&mut h, &it.host, "", !from_context, &skip)?;
        }
        let descriptor = h.digest().to_string();
        let mut shown: Vec<String> = spec.sources.clone();
        shown.extend(spec.heredocs.iter().map(|h| format!("<<{}", h.path)));
        let created_by = format!(
            "{} {} {} # buildkit",
            spec.keyword,
            shown.join(" "),
            dest_raw
        );
        let chown = spec.chown.clone();
        let chmod = spec.chmod;
        let unpack = spec.add && spec.unpack;
        self.fs_step(st, created_by, &descriptor, &mut |_, root| {
            let root = root.root.as_path();
            let explicit = match &chown {
                Some(c) => Some(resolve_chown(root, c)?),
                None => None,
            };
            let dir_owner = explicit.or(Some((0, 0)));
            for it in &items {
                let keep_owner = !from_context && !it.generated;
                let attrs = CopyAttrs {
                    owner: if keep_owner { explicit } else { dir_owner },
                    mode: chmod,
                };
                let skip = skipper(from_context && !it.generated, &ignore, &exclude, &it.rel);
                if it.is_dir {
                    let dst = mkdir_all_in_root(root, &dest, dir_owner)?;
                    for name in sorted_names(&it.host)? {
                        if skip(&name) && !kept_below(&it.host.join(&name), &name, &skip) {
                            continue;
                        }
                        copy_tree(&it.host.join(&name), &dst.join(&name), &name, attrs, &skip)?;
                    }
                    continue;
                }
                if unpack
                    && !it.generated
                    && let Some(gz) = archive_kind(&it.host)?
                {
                    mkdir_all_in_root(root, &dest, dir_owner)?;
                    // Docker keeps the archive's owners even with
                    // --chown (which applies to the directory made).
                    extract_archive(&it.host, gz, root, &dest, None)?;
                    continue;
                }
                let existing_dir = resolve_in_root(root, &dest, true)
                    .map(|p| p.is_dir())
                    .unwrap_or(false);
                let target = if dest_dir || existing_dir {
                    format!("{}/{}", dest.trim_end_matches('/'), it.name)
                } else {
                    dest.clone()
                };
                let (parent, _) = target.rsplit_once('/').unwrap_or(("", &target));
                mkdir_all_in_root(root, parent, dir_owner)?;
                let host = resolve_in_root(root, &target, false)
                    .map_err(BuildError::io("resolving", &target))?;
                copy_tree(&it.host, &host, "", attrs, &skip)?;
            }
            Ok(())
        })
    }

    fn heredoc_item(&mut self, st: &StageState, h: &SourceContent) -> Result<Item> {
        let data = if h.expand {
            pier_dockerfile::expand_heredoc(&h.data, &|k: &str| st.lookup(k))
                .map_err(|e| BuildError::Invalid(e.to_string()))?
                .result
        } else {
            h.data.clone()
        };
        let dir = self.unique_temp_dir()?;
        let name = h.path.rsplit('/').next().unwrap_or(&h.path).to_string();
        let file = dir.join(&name);
        std::fs::write(&file, data).map_err(BuildError::io("writing", &file))?;
        set_mode(&file, 0o644)?;
        Ok(Item {
            host: file,
            name,
            rel: String::new(),
            is_dir: false,
            generated: true,
        })
    }

    fn download(&mut self, url: &str, checksum: Option<&str>) -> Result<Item> {
        let err = |m: String| BuildError::Download {
            url: url.to_string(),
            message: m,
        };
        // The builder runs on a blocking thread, so the blocking client: it drives
        // its own small runtime rather than borrowing the daemon's.
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("pier/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(30))
            // The blocking client's default of 30 s for the whole body would cut
            // large downloads short.
            .timeout(None)
            .build()
            .map_err(|e| err(e.to_string()))?;
        let mut resp = client.get(url).send().map_err(|e| err(error_chain(&e)))?;
        if !resp.status().is_success() {
            return Err(err(format!("status {}", resp.status())));
        }
        let path = url
            .split(['?', '#'])
            .next()
            .unwrap_or(url)
            .splitn(4, '/')
            .nth(3)
            .unwrap_or("");
        let name = path
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty() && *n != "." && *n != "..")
            .unwrap_or("__unnamed__")
            .to_string();
        let dir = self.unique_temp_dir()?;
        let file = dir.join(&name);
        let mut f = std::fs::File::create(&file).map_err(BuildError::io("creating", &file))?;
        resp.copy_to(&mut f).map_err(|e| err(error_chain(&e)))?;
        drop(f);
        if let Some(want) = checksum {
            let bytes = std::fs::read(&file).map_err(BuildError::io("reading", &file))?;
            let got = Digest::sha256(&bytes).to_string();
            if got != want {
                return Err(err(format!("digest mismatch {got}: {want}")));
            }
        }
        set_mode(&file, 0o600)?;
        Ok(Item {
            host: file,
            name,
            rel: String::new(),
            is_dir: false,
            generated: true,
        })
    }
}

/// reqwest's top error says only "error sending request"; the causes say why.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(BuildError::io("setting mode of", p))
}

/// The skip rule for one item: .dockerignore (context paths) and --exclude
/// (paths inside the item).
fn skipper<'a>(
    use_ignore: bool,
    ignore: &'a DockerIgnore,
    exclude: &'a DockerIgnore,
    base: &'a str,
) -> impl Fn(&str) -> bool + 'a {
    move |rel: &str| {
        (use_ignore && ignore.is_excluded(&join_rel(base, rel))) || exclude.is_excluded(rel)
    }
}

fn kept_below(path: &Path, rel: &str, skip: &dyn Fn(&str) -> bool) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => sorted_names(path)
            .unwrap_or_default()
            .iter()
            .any(|n| kept_below(&path.join(n), &format!("{rel}/{n}"), skip)),
        Ok(_) => !skip(rel),
        Err(_) => false,
    }
}

/// Resolves one COPY source (literal or wildcard) in `root`.
fn select(root: &Path, src: &str, ignore: Option<&DockerIgnore>) -> Result<Vec<Item>> {
    let abs = clean_path(&format!("/{src}"));
    let rel = abs.trim_start_matches('/').to_string();
    let excluded = |rel: &str, host: &Path| match ignore {
        Some(ig) if !rel.is_empty() && ig.is_excluded(rel) => {
            !kept_below(host, rel, &|r: &str| ig.is_excluded(r))
        }
        _ => false,
    };
    let not_found = || {
        BuildError::Invalid(format!(
            "COPY failed: file not found in build context or excluded by .dockerignore: stat {src}: file does not exist"
        ))
    };
    let make = |rel: String, host: PathBuf| -> Item {
        let is_dir = host.is_dir();
        let name = rel.rsplit('/').next().unwrap_or("").to_string();
        Item {
            host,
            name,
            rel,
            is_dir,
            generated: false,
        }
    };
    if !has_glob(&rel) {
        let host = resolve_in_root(root, &abs, true).map_err(BuildError::io("resolving", &abs))?;
        if std::fs::symlink_metadata(&host).is_err() || excluded(&rel, &host) {
            return Err(not_found());
        }
        return Ok(vec![make(rel, host)]);
    }
    let parts: Vec<&str> = rel.split('/').collect();
    let mut found = vec![String::new()];
    for (i, part) in parts.iter().enumerate() {
        let glob = Glob::new(part, false).map_err(BuildError::Invalid)?;
        let last = i == parts.len() - 1;
        let mut next = Vec::new();
        for dir_rel in &found {
            let dir = resolve_in_root(root, &format!("/{dir_rel}"), true)
                .map_err(BuildError::io("resolving", dir_rel))?;
            if !dir.is_dir() {
                continue;
            }
            for name in sorted_names(&dir)? {
                if glob.matches(&name) {
                    let r = join_rel(dir_rel, &name);
                    let host = resolve_in_root(root, &format!("/{r}"), true)
                        .map_err(BuildError::io("resolving", &r))?;
                    if last || host.is_dir() {
                        next.push(r);
                    }
                }
            }
        }
        found = next;
    }
    let mut items = Vec::new();
    for r in found {
        let host = resolve_in_root(root, &format!("/{r}"), true)
            .map_err(BuildError::io("resolving", &r))?;
        if !excluded(&r, &host) {
            items.push(make(r, host));
        }
    }
    Ok(items)
}
