//! The build driver: reads the Dockerfile, picks the stages the target
//! needs, builds them (independent ones at the same time, see [`parallel`])
//! and assembles the final image.

mod copy;
mod parallel;
mod run;
mod stage;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use pier_dockerfile::{Instruction, Lexer, Stage};
use pier_reference::{Digest, Reference};

use crate::backend::{BaseImage, BuildBackend, ImageRole, LayerInfo, Network, WorkRoot};
use crate::error::{BuildError, Result};
use crate::fsutil::resolve_in_root;
use crate::ignore::DockerIgnore;
use crate::progress::{Event, Progress};
use crate::timefmt::now_rfc3339;

use stage::StageState;

/// Build-args Docker accepts without an ARG: passed to RUN, never cached or
/// recorded in history.
const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Everything `docker build` sends besides the context.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The unpacked build context (see [`crate::unpack_context`]).
    pub context: PathBuf,
    /// `context` is the user's own directory (a local `pier build`), not a
    /// private copy: nothing may write to it.
    pub context_shared: bool,
    /// Dockerfile path inside the context; `Dockerfile` when empty.
    pub dockerfile: String,
    /// The Dockerfile text itself, instead of reading `dockerfile`.
    pub dockerfile_contents: Option<String>,
    pub tags: Vec<String>,
    /// `--build-arg`; a None value means "declared but unset".
    pub build_args: BTreeMap<String, Option<String>>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// `--label`, added to the final image.
    pub labels: BTreeMap<String, String>,
    /// Default network for RUN steps.
    pub network: Network,
    /// `--add-host name:ip` for RUN steps.
    pub extra_hosts: Vec<String>,
    /// `--cache-from`: when given, only steps that these images also have
    /// (same parent layers and history) are taken from the cache.
    pub cache_from: Vec<String>,
    /// Target platform (`linux/amd64`); the host's when None.
    pub platform: Option<String>,
    /// Always pull base images, even when present.
    pub pull: bool,
    /// `--secret id=...,src=...`: secret id to host file.
    pub secrets: BTreeMap<String, PathBuf>,
    /// `--shm-size`: bytes of /dev/shm in RUN steps; 0 = the runtime's 64 MB.
    pub shm_size: i64,
}

/// What a successful build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildResult {
    /// `sha256:<hex>` of the image config.
    pub image_id: String,
    /// Tags as applied (normalised, e.g. `app:latest`).
    pub tags: Vec<String>,
    /// Warnings also sent to the progress stream.
    pub warnings: Vec<String>,
}

/// Builds an image. Progress (steps, RUN output, the image ID, and on
/// failure an [`Event::Error`]) goes to `progress`. Blocking: call it on a
/// blocking thread. A failed build creates no image and no tag.
pub fn build(
    backend: &dyn BuildBackend,
    opts: &BuildOptions,
    progress: &mut dyn Progress,
) -> Result<BuildResult> {
    let mut b = match Builder::new(backend, opts, progress) {
        Ok(b) => b,
        Err(e) => {
            progress.event(Event::Error(e.to_string()));
            return Err(e);
        }
    };
    let r = b.run();
    b.release_all();
    match &r {
        Err(e @ BuildError::RunFailed { code, .. }) => b.progress.event(Event::RunFailed {
            message: e.to_string(),
            code: *code,
        }),
        Err(e) => b.progress.event(Event::Error(e.to_string())),
        Ok(_) => {}
    }
    r
}

/// [`build`] from a context tar (the body of `POST /build`): unpacks it
/// into a fresh directory under `scratch` (see [`crate::unpack_context`]),
/// builds with `opts.context` pointing there, and removes it again.
pub fn build_tar(
    backend: &dyn BuildBackend,
    context_tar: impl std::io::Read,
    scratch: &std::path::Path,
    opts: &BuildOptions,
    progress: &mut dyn Progress,
) -> Result<BuildResult> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let dir = scratch.join(format!("context-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(BuildError::io("creating", &dir))?;
    let r = match crate::context::unpack_context(context_tar, &dir) {
        Ok(()) => {
            let opts = BuildOptions {
                context: dir.clone(),
                ..opts.clone()
            };
            build(backend, &opts, progress)
        }
        Err(e) => {
            progress.event(Event::Error(e.to_string()));
            Err(e)
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// Host platform as `os/arch[/variant]`.
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm/v7",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}

/// What the driver and every stage's builder have in common: the build's
/// inputs and what the build has learnt so far. A stage built on its own
/// thread starts from a copy of it (see [`parallel`]), so state kept here
/// needs nothing more to reach parallel stages.
#[derive(Clone)]
struct Common<'a> {
    backend: &'a dyn BuildBackend,
    opts: &'a BuildOptions,
    lexer: Lexer,
    ignore: DockerIgnore,
    /// Global ARG values (after --build-arg), plus the platform ARGs.
    globals: BTreeMap<String, Option<String>>,
    /// Never changed after parsing: shared, not copied, by stage threads.
    stages: Arc<[Stage]>,
    /// Finished stages, by index.
    done: HashMap<usize, StageState>,
    total: usize,
    platform: String,
    /// Images resolved for `--from` and bind mounts, by name.
    images: HashMap<String, BaseImage>,
    /// `--cache-from` images that exist; None when the option was not given.
    cache_from: Option<Vec<BaseImage>>,
}

/// A builder: the driver, or one stage's on its thread. Besides [`Common`]
/// it holds only what is its own (progress sink, step counter, borrowed
/// roots, scratch space, what it found); [`Builder::with`] starts all of it
/// empty, and the parallel driver merges back what a stage found.
pub(crate) struct Builder<'a> {
    common: Common<'a>,
    progress: &'a mut dyn Progress,
    step: usize,
    /// Every ARG name declared somewhere in the built stages.
    consumed: BTreeSet<String>,
    warnings: Vec<String>,
    /// Roots prepared for reading (other stages, images) to release at the end.
    borrowed: Vec<WorkRoot>,
    /// Scratch space for heredoc files and downloads, removed at the end.
    scratch: Option<PathBuf>,
    scratch_n: usize,
}

impl<'a> Builder<'a> {
    fn new(
        backend: &'a dyn BuildBackend,
        opts: &'a BuildOptions,
        progress: &'a mut dyn Progress,
    ) -> Result<Builder<'a>> {
        let text = match &opts.dockerfile_contents {
            Some(t) => t.clone(),
            None => read_dockerfile(opts)?,
        };
        let df = pier_dockerfile::parse(&text).map_err(|e| BuildError::Parse {
            line: e.line,
            message: e.kind.to_string(),
        })?;
        let (global_decls, stages) = df.stages().map_err(|e| BuildError::Parse {
            line: e.line,
            message: e.kind.to_string(),
        })?;
        if stages.is_empty() {
            return Err(BuildError::Invalid(
                "the Dockerfile (Dockerfile) cannot be empty".into(),
            ));
        }
        for t in &opts.tags {
            Reference::parse(t).map_err(|e| {
                BuildError::Invalid(format!("invalid tag {t:?}: invalid reference format: {e}"))
            })?;
        }
        let platform = opts.platform.clone().unwrap_or_else(host_platform);
        let lexer = df.lexer();
        // As Docker: names that do not resolve are ignored.
        let cache_from = (!opts.cache_from.is_empty()).then(|| {
            opts.cache_from
                .iter()
                .filter_map(|n| backend.find_image(n).ok().flatten())
                .collect()
        });
        let common = Common {
            backend,
            opts,
            lexer,
            ignore: read_ignore(opts)?,
            globals: BTreeMap::new(),
            stages: stages.into(),
            done: HashMap::new(),
            total: 0,
            platform,
            images: HashMap::new(),
            cache_from,
        };
        let mut b = Builder::with(common, progress, 0);
        b.init_globals(&global_decls)?;
        Ok(b)
    }

    /// A builder starting from `common` whose next step is `step + 1`.
    fn with(common: Common<'a>, progress: &'a mut dyn Progress, step: usize) -> Builder<'a> {
        Builder {
            common,
            progress,
            step,
            consumed: BTreeSet::new(),
            warnings: Vec::new(),
            borrowed: Vec::new(),
            scratch: None,
            scratch_n: 0,
        }
    }

    fn init_globals(&mut self, decls: &[pier_dockerfile::ArgDecl]) -> Result<()> {
        let host = host_platform();
        for (prefix, plat) in [("TARGET", self.common.platform.clone()), ("BUILD", host)] {
            let mut parts = plat.split('/');
            let os = parts.next().unwrap_or("linux").to_string();
            let arch = parts.next().unwrap_or("").to_string();
            let variant = parts.next().unwrap_or("").to_string();
            self.common
                .globals
                .insert(format!("{prefix}PLATFORM"), Some(plat.clone()));
            self.common.globals.insert(format!("{prefix}OS"), Some(os));
            self.common
                .globals
                .insert(format!("{prefix}ARCH"), Some(arch));
            self.common
                .globals
                .insert(format!("{prefix}VARIANT"), Some(variant));
        }
        for d in decls {
            self.consumed.insert(d.name.clone());
            let default = match &d.default {
                Some(raw) => Some(self.expand_with(raw, &self.global_lookup())?),
                None => None,
            };
            // A build-arg sent without a value (null) leaves the default.
            let value = match self.common.opts.build_args.get(&d.name) {
                Some(Some(v)) => Some(v.clone()),
                _ => default,
            };
            self.common.globals.insert(d.name.clone(), value);
        }
        Ok(())
    }

    fn global_lookup(&self) -> impl Fn(&str) -> Option<String> + use<'_, 'a> {
        |k: &str| self.common.globals.get(k).cloned().flatten()
    }

    pub(crate) fn expand_with(
        &self,
        word: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String> {
        self.common
            .lexer
            .process_word(word, env)
            .map_err(|e| BuildError::Invalid(e.to_string()))
    }

    fn run(&mut self) -> Result<BuildResult> {
        let target = self.target_index()?;
        let needed = self.needed_stages(target)?;
        self.common.total = needed
            .iter()
            .map(|&i| 1 + self.common.stages[i].commands.len())
            .sum();
        self.build_stages(&needed)?;
        let st = self
            .common
            .done
            .remove(&target)
            .ok_or_else(|| BuildError::Invalid("target stage was not built".into()))?;
        self.finish(st)
    }

    fn target_index(&self) -> Result<usize> {
        match self.common.opts.target.as_deref().filter(|t| !t.is_empty()) {
            None => Ok(self.common.stages.len() - 1),
            Some(t) => self
                .common
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(&t.to_lowercase()))
                .ok_or_else(|| {
                    BuildError::Invalid(format!("failed to reach build target {t} in Dockerfile"))
                }),
        }
    }

    /// A stage reference (`AS` name or index) among the stages before `before`.
    pub(crate) fn stage_ref(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_lowercase();
        if let Some(i) = self.common.stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(&lower))
        {
            return Some(i);
        }
        name.parse::<usize>().ok().filter(|&i| i < before)
    }

    /// The target and every stage it reaches, in Dockerfile order.
    fn needed_stages(&self, target: usize) -> Result<Vec<usize>> {
        let mut need = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if need.insert(i) {
                todo.extend(self.stage_deps(i)?);
            }
        }
        Ok(need.into_iter().collect())
    }

    /// The earlier stages stage `i` reads: its `FROM` stage and the stages
    /// of `COPY --from` and `RUN --mount from=`.
    fn stage_deps(&self, i: usize) -> Result<Vec<usize>> {
        let mut deps = Vec::new();
        let stage = &self.common.stages[i];
        let base = self.expand_with(&stage.image, &self.global_lookup())?;
        if let Some(j) = self
            .common
            .stages
            .iter()
            .take(i)
            .position(|s| s.name.as_deref() == Some(&base.to_lowercase()))
        {
            deps.push(j);
        }
        for cmd in &stage.commands {
            for from in refs_of(&cmd.instruction) {
                let from = self.expand_with(&from, &self.global_lookup())?;
                if let Some(j) = self.stage_ref(&from, i) {
                    deps.push(j);
                }
            }
        }
        deps.sort_unstable();
        deps.dedup();
        Ok(deps)
    }

    pub(crate) fn next_step(&mut self, original: &str) -> Result<()> {
        if self.progress.cancelled() {
            return Err(BuildError::Cancelled);
        }
        self.step += 1;
        let line = format!(
            "Step {}/{} : {}\n",
            self.step,
            self.common.total,
            original.trim()
        );
        self.progress.stream(&line);
        Ok(())
    }

    pub(crate) fn say(&mut self, text: &str) {
        self.progress.stream(text);
    }

    fn finish(&mut self, mut st: StageState) -> Result<BuildResult> {
        let unused: Vec<&String> = self
            .common
            .opts
            .build_args
            .keys()
            .filter(|k| !self.consumed.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            let w = format!(
                "[Warning] One or more build-args [{}] were not consumed",
                names.join(" ")
            );
            self.say(&format!("{w}\n"));
            self.warnings.push(w);
        }
        let json = self.image_json(&st, true);
        let tags: Vec<String> = self
            .common
            .opts
            .tags
            .iter()
            .filter_map(|t| Reference::parse(t).ok().map(|r| r.familiar()))
            .collect();
        let expected = Digest::sha256(&json).to_string();
        // The last step's image already is the result unless the build's
        // labels came after it (a target stage with no step after FROM).
        if expected != st.image_id {
            self.store_image(&mut st, &json)?;
            self.say(&format!(" ---> {}\n", short_id(&st.image_id)));
        }
        let id = self
            .common
            .backend
            .create_image(&json, &st.layers, &tags, ImageRole::Result)?;
        if id != expected {
            return Err(BuildError::Backend(crate::backend::BackendError::internal(
                format!("backend stored the image as {id}, expected {expected}"),
            )));
        }
        let short = short_id(&id);
        self.progress.event(Event::ImageId(id.clone()));
        self.say(&format!("Successfully built {short}\n"));
        for t in &tags {
            self.say(&format!("Successfully tagged {t}\n"));
        }
        Ok(BuildResult {
            image_id: id,
            tags,
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    /// The image config of `st` as stored: its layers' diff IDs, the time
    /// of its last step, and on the build's `final` image its `--label`s.
    fn image_json(&self, st: &StageState, last: bool) -> Vec<u8> {
        let mut config = st.config.clone();
        if last && !self.common.opts.labels.is_empty() {
            let cfg = config.config.get_or_insert_with(Default::default);
            let labels = cfg.labels.get_or_insert_with(Default::default);
            for (k, v) in &self.common.opts.labels {
                labels.insert(k.clone(), v.clone());
            }
        }
        config.rootfs.diff_ids = st.layers.iter().map(|l| l.diff_id.clone()).collect();
        config.created = Some(
            config
                .history
                .iter()
                .rev()
                .find_map(|h| h.created.clone())
                .unwrap_or_else(now_rfc3339),
        );
        config.to_json()
    }

    /// As Docker's classic builder, every step leaves an untagged image
    /// whose parent is the previous step's, shown as ` ---> ID`: clients
    /// run and inspect them, `images -a` lists them, and removing the
    /// final image removes the chain. The build's last step is its result.
    pub(crate) fn step_image(&mut self, st: &mut StageState) -> Result<()> {
        let last = self.step == self.common.total;
        let json = self.image_json(st, last);
        self.store_image(st, &json)?;
        self.say(&format!(" ---> {}\n", short_id(&st.image_id)));
        Ok(())
    }

    /// Stores `json` as the image after `st`'s current one.
    fn store_image(&mut self, st: &mut StageState, json: &[u8]) -> Result<()> {
        let expected = Digest::sha256(json).to_string();
        // A step that changed nothing leaves the same image: no self-parent.
        let parent = if st.image_id == expected {
            ""
        } else {
            st.image_id.as_str()
        };
        let id =
            self.common
                .backend
                .create_image(json, &st.layers, &[], ImageRole::Step { parent })?;
        if id != expected {
            return Err(BuildError::Backend(crate::backend::BackendError::internal(
                format!("backend stored the image as {id}, expected {expected}"),
            )));
        }
        st.image_id = id;
        Ok(())
    }

    /// An image for `FROM`, `COPY --from` or a bind mount: local unless
    /// `--pull`, pulled when missing.
    pub(crate) fn resolve_image(
        &mut self,
        name: &str,
        platform: Option<&str>,
    ) -> Result<BaseImage> {
        if let Some(img) = self.common.images.get(name) {
            return Ok(img.clone());
        }
        let local = if self.common.opts.pull {
            None
        } else {
            self.common.backend.find_image(name)?
        };
        let img = match local {
            Some(i) => i,
            None => {
                let progress = &mut *self.progress;
                let mut sink = |line: &str| {
                    let mut l = line.to_string();
                    if !l.ends_with('\n') {
                        l.push('\n');
                    }
                    progress.stream(&l);
                };
                self.common.backend.pull(name, platform, &mut sink).map_err(|e| {
                    if e.kind == crate::backend::BackendErrorKind::NotFound {
                        BuildError::NotFound(format!(
                            "pull access denied for {name}, repository does not exist or may require 'docker login': {e}"
                        ))
                    } else {
                        BuildError::Backend(e)
                    }
                })?
            }
        };
        self.common.images.insert(name.to_string(), img.clone());
        Ok(img)
    }

    /// A root holding `layers`, kept until the build ends (for reading).
    pub(crate) fn borrow_root(&mut self, layers: &[LayerInfo]) -> Result<PathBuf> {
        let root = self.common.backend.prepare(layers)?;
        let path = root.root.clone();
        self.borrowed.push(root);
        Ok(path)
    }

    /// Releases the roots borrowed since `mark` (a step's sources).
    pub(crate) fn release_since(&mut self, mark: usize) {
        while self.borrowed.len() > mark {
            if let Some(r) = self.borrowed.pop() {
                let _ = self.common.backend.release(r);
            }
        }
    }

    pub(crate) fn borrowed_mark(&self) -> usize {
        self.borrowed.len()
    }

    fn release_all(&mut self) {
        for r in std::mem::take(&mut self.borrowed) {
            let _ = self.common.backend.release(r);
        }
        if let Some(d) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    /// The build's private scratch directory.
    pub(crate) fn temp_dir(&mut self) -> Result<PathBuf> {
        if let Some(d) = &self.scratch {
            return Ok(d.clone());
        }
        // Stages built at the same time each have their own directory: the
        // counter keeps two created in the same nanosecond apart.
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let d =
            std::env::temp_dir().join(format!("pier-build-{}-{nanos}-{seq}", std::process::id()));
        std::fs::create_dir(&d).map_err(BuildError::io("creating", &d))?;
        self.scratch = Some(d.clone());
        Ok(d)
    }

    /// A fresh directory inside the scratch directory.
    pub(crate) fn unique_temp_dir(&mut self) -> Result<PathBuf> {
        let base = self.temp_dir()?;
        self.scratch_n += 1;
        let d = base.join(self.scratch_n.to_string());
        std::fs::create_dir(&d).map_err(BuildError::io("creating", &d))?;
        Ok(d)
    }

    /// The layers of a `--from` source: an earlier stage (name or index) or
    /// an image.
    pub(crate) fn layers_of(&mut self, from: &str, before: usize) -> Result<Vec<LayerInfo>> {
        if let Some(j) = self.stage_ref(from, before) {
            return self
                .common
                .done
                .get(&j)
                .map(|s| s.layers.clone())
                .ok_or_else(|| BuildError::Invalid(format!("stage {from} was not built")));
        }
        if from.parse::<usize>().is_ok() {
            return Err(BuildError::Invalid(format!(
                "invalid from flag value {from}: refers to a stage that is not defined before this one"
            )));
        }
        Ok(self.resolve_image(from, None)?.layers)
    }
}

pub(crate) fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(12).collect()
}

/// Stage names an instruction may refer to (`COPY --from`, `RUN --mount from=`).
fn refs_of(i: &Instruction) -> Vec<String> {
    match i {
        Instruction::Copy(c) => c.from.iter().cloned().collect(),
        Instruction::Run(r) => r
            .mount_specs
            .iter()
            .flat_map(|s| s.split(','))
            .filter_map(|f| f.split_once('='))
            .filter(|(k, _)| k.eq_ignore_ascii_case("from"))
            .map(|(_, v)| v.to_string())
            .collect(),
        _ => Vec::new(),
    }
}

fn read_dockerfile(opts: &BuildOptions) -> Result<String> {
    let name = if opts.dockerfile.is_empty() {
        "Dockerfile"
    } else {
        opts.dockerfile.as_str()
    };
    let mut candidates = vec![name.to_string()];
    if opts.dockerfile.is_empty() {
        candidates.push("dockerfile".into());
    }
    for c in &candidates {
        let host = resolve_in_root(&opts.context, c, true)
            .map_err(BuildError::io("resolving Dockerfile", c))?;
        if host.is_file() {
            return std::fs::read_to_string(&host)
                .map_err(BuildError::io("reading Dockerfile", host));
        }
    }
    Err(BuildError::Invalid(format!(
        "Cannot locate specified Dockerfile: {name}"
    )))
}

/// `<Dockerfile>.dockerignore` beside the Dockerfile wins over the
/// context's `.dockerignore` (BuildKit's rule).
fn read_ignore(opts: &BuildOptions) -> Result<DockerIgnore> {
    let mut candidates = Vec::new();
    if !opts.dockerfile.is_empty() {
        candidates.push(format!("{}.dockerignore", opts.dockerfile));
    }
    candidates.push(".dockerignore".to_string());
    for c in candidates {
        let host =
            resolve_in_root(&opts.context, &c, true).map_err(BuildError::io("resolving", &c))?;
        if host.is_file() {
            let text = std::fs::read_to_string(&host).map_err(BuildError::io("reading", host))?;
            return DockerIgnore::parse(&text)
                .map_err(|e| BuildError::Invalid(format!("{c}: {e}")));
        }
    }
    Ok(DockerIgnore::default())
}
