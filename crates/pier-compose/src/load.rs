//! The loading pipeline, as compose-go runs it: find the files → read the
//! environment (`.env`, `--env-file`) → parse each file → interpolate →
//! merge in order → refuse what Pier cannot honour → typed model →
//! normalise (project name, paths, env files, default network, profiles).

use crate::error::{ComposeError, Result};
use crate::model::{self, ComposeFile, Network, Service};
use crate::prep::{absolute, expand_home, read_env_files};
use crate::yaml::{self, Node, Value};
use crate::{dotenv, merge};
use indexmap::IndexMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What the command line (and the process environment) says about the project.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub files: Vec<PathBuf>,
    pub project_name: Option<String>,
    pub project_directory: Option<PathBuf>,
    pub env_files: Vec<PathBuf>,
    pub profiles: Vec<String>,
    pub cwd: PathBuf,
    pub os_env: HashMap<String, String>,
}

impl Options {
    /// Options from the real process environment and directory.
    pub fn from_process() -> Result<Options> {
        let cwd = std::env::current_dir().map_err(|e| ComposeError::io("current directory", e))?;
        Ok(Options {
            cwd,
            os_env: std::env::vars().collect(),
            ..Default::default()
        })
    }
}

/// A loaded, normalised project: what every command works on.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    pub env_files: Vec<PathBuf>,
    /// Services enabled by the active profiles, in file order.
    pub services: IndexMap<String, Service>,
    /// Services whose profiles are not active.
    pub disabled: IndexMap<String, Service>,
    pub networks: IndexMap<String, Network>,
    pub volumes: IndexMap<String, model::Volume>,
    /// Top-level `secrets` and `configs`, `file`s made absolute.
    pub secrets: IndexMap<String, model::FileObject>,
    pub configs: IndexMap<String, model::FileObject>,
    pub profiles: Vec<String>,
    /// The variables interpolation saw (process environment over `.env`).
    pub environment: HashMap<String, String>,
    pub warnings: Vec<String>,
}

impl Project {
    /// A project known only by name (`down -p NAME` with no file): what it
    /// has is found by the `com.docker.compose.project` label.
    pub fn named(name: &str) -> Project {
        Project {
            name: normalize_project_name(name),
            working_dir: PathBuf::new(),
            config_files: Vec::new(),
            env_files: Vec::new(),
            services: IndexMap::new(),
            disabled: IndexMap::new(),
            networks: IndexMap::new(),
            volumes: IndexMap::new(),
            secrets: IndexMap::new(),
            configs: IndexMap::new(),
            profiles: Vec::new(),
            environment: HashMap::new(),
            warnings: Vec::new(),
        }
    }

    /// Whether this project came from files (not [`Project::named`]).
    pub fn has_files(&self) -> bool {
        !self.config_files.is_empty()
    }
}

pub const FILE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The default files: the first of [`FILE_NAMES`] in `dir` or its parents,
/// and its `.override.` sibling when there is one.
pub fn find_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut d = Some(dir);
    while let Some(cur) = d {
        for name in FILE_NAMES {
            let p = cur.join(name);
            if p.is_file() {
                let mut out = vec![p];
                let (stem, ext) = name.rsplit_once('.').expect("names have extensions");
                for o in [
                    format!("{stem}.override.{ext}"),
                    format!(
                        "{stem}.override.{}",
                        if ext == "yaml" { "yml" } else { "yaml" }
                    ),
                ] {
                    let op = cur.join(o);
                    if op.is_file() {
                        out.push(op);
                        break;
                    }
                }
                return Ok(out);
            }
        }
        d = cur.parent();
    }
    Err(ComposeError::Project(
        "no configuration file provided: not found".into(),
    ))
}

/// compose-go's `NormalizeProjectName`: lower case, only `[a-z0-9_-]`, no
/// leading `_`/`-`.
pub fn normalize_project_name(s: &str) -> String {
    let s: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    s.trim_start_matches(['_', '-']).to_string()
}

fn check_project_name(s: &str) -> Result<()> {
    let ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ComposeError::Project(format!(
            "invalid project name {s:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
        )))
    }
}

fn keys_of(n: &Node) -> Vec<(&str, &Node)> {
    match &n.value {
        Value::Map(m) => m.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        _ => Vec::new(),
    }
}

/// Refuses keys the specification has and Pier does not honour yet.
fn refuse_unsupported(root: &Node) -> Result<()> {
    let refuse = |path: String, n: &Node| ComposeError::Invalid {
        at: format!("{}: ", n.pos),
        path,
        message: "not supported by pier compose yet".into(),
    };
    for (k, v) in keys_of(root) {
        if model::UNSUPPORTED_TOP.contains(&k) {
            return Err(refuse(k.to_string(), v));
        }
    }
    if let Some(services) = root.get("services") {
        for (name, svc) in keys_of(services) {
            for (k, v) in keys_of(svc) {
                if model::UNSUPPORTED_SERVICE.contains(&k) {
                    return Err(refuse(format!("services.{name}.{k}"), v));
                }
                if k == "build" {
                    for (bk, bv) in keys_of(v) {
                        if model::UNSUPPORTED_BUILD.contains(&bk) {
                            return Err(refuse(format!("services.{name}.build.{bk}"), bv));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Typed model from the merged tree; errors carry the key's path and line.
fn to_model(root: &Node) -> Result<ComposeFile> {
    let mut json = root.to_json();
    strip_extensions(&mut json);
    serde_path_to_error::deserialize::<_, ComposeFile>(json).map_err(|e| {
        let mut path = e.path().to_string();
        let mut msg = e.inner().to_string();
        if let Some(rest) = msg.strip_prefix("unknown field `") {
            let field = rest.split('`').next().unwrap_or_default().to_string();
            msg = format!("additional property {field} is not allowed");
        } else if let Some((idx, rest)) = msg.strip_prefix('[').and_then(|m| m.split_once("]: ")) {
            // Lists read as a whole name the failing item themselves.
            path = format!("{path}[{idx}]");
            msg = rest.to_string();
        }
        let mut at = String::new();
        let mut best = 0;
        root.walk("", &mut |p, n| {
            if (path == p
                || path.starts_with(&format!("{p}."))
                || path.starts_with(&format!("{p}[")))
                && p.len() >= best
            {
                best = p.len();
                at = format!("{}: ", n.pos);
            }
        });
        ComposeError::Invalid {
            at,
            path,
            message: msg,
        }
    })
}

/// `x-*` keys are the user's own; they are allowed where Compose allows them.
fn strip_extensions(json: &mut serde_json::Value) {
    fn strip(v: &mut serde_json::Value) {
        if let Some(m) = v.as_object_mut() {
            m.retain(|k, _| !k.starts_with("x-"));
        }
    }
    strip(json);
    for section in ["services", "networks", "volumes"] {
        if let Some(m) = json.get_mut(section).and_then(|s| s.as_object_mut()) {
            for (_, item) in m.iter_mut() {
                strip(item);
                if let Some(b) = item.get_mut("build") {
                    strip(b);
                }
            }
        }
    }
}

pub fn load(opts: &Options) -> Result<Project> {
    let mut warnings = Vec::new();
    // COMPOSE_FILE may come from the `.env` of the current directory, as in
    // Compose (the project's own `.env` is only known once the files are).
    let mut early_env = HashMap::new();
    let cwd_dot = opts.cwd.join(".env");
    if opts.files.is_empty() && opts.env_files.is_empty() && cwd_dot.is_file() {
        early_env = read_env_files(&[cwd_dot], &opts.os_env)?;
    } else {
        early_env.extend(opts.os_env.clone());
    }
    let files: Vec<PathBuf> = if !opts.files.is_empty() {
        opts.files.iter().map(|f| absolute(&opts.cwd, f)).collect()
    } else if let Some(cf) = early_env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
        let sep = early_env
            .get("COMPOSE_PATH_SEPARATOR")
            .cloned()
            .unwrap_or_else(|| ":".into());
        cf.split(sep.as_str())
            .map(|f| absolute(&opts.cwd, Path::new(f)))
            .collect()
    } else {
        find_files(&opts.cwd)?
    };
    let working_dir = match &opts.project_directory {
        Some(d) => absolute(&opts.cwd, d),
        None => files[0].parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let env_files: Vec<PathBuf> = if !opts.env_files.is_empty() {
        opts.env_files
            .iter()
            .map(|f| absolute(&opts.cwd, f))
            .collect()
    } else if let Some(ef) = opts
        .os_env
        .get("COMPOSE_ENV_FILES")
        .filter(|s| !s.is_empty())
    {
        ef.split(',')
            .map(|f| absolute(&opts.cwd, Path::new(f)))
            .collect()
    } else {
        let dot = working_dir.join(".env");
        if dot.is_file() {
            vec![dot]
        } else {
            Vec::new()
        }
    };
    let environment = read_env_files(&env_files, &opts.os_env)?;

    let mut merged: Option<Node> = None;
    for f in &files {
        let mut c = crate::tree::Ctx {
            env: &environment,
            os_env: &opts.os_env,
            warnings: &mut warnings,
            stack: vec![f.clone()],
        };
        let node = crate::tree::load_file(f, &mut c)?;
        merged = merge::merge(merged, node, &mut Vec::new());
    }
    let root = merged.unwrap_or_else(|| {
        Node::str(
            "",
            yaml::Pos {
                file: "".into(),
                line: 0,
            },
        )
    });
    refuse_unsupported(&root)?;
    let mut root = root;
    octal_modes(&mut root);
    let mut file = to_model(&root)?;
    if file.version.is_some() {
        warnings.push(format!(
            "{}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion",
            files[0].display()
        ));
    }

    let name = if let Some(p) = &opts.project_name {
        check_project_name(p)?;
        p.clone()
    } else if let Some(p) = environment
        .get("COMPOSE_PROJECT_NAME")
        .filter(|s| !s.is_empty())
    {
        check_project_name(p)?;
        p.clone()
    } else if let Some(n) = &file.name {
        check_project_name(n)?;
        n.clone()
    } else {
        let base = working_dir
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        normalize_project_name(&base)
    };
    if name.is_empty() {
        return Err(ComposeError::Project(
            "project name must not be empty".into(),
        ));
    }

    let mut profiles = opts.profiles.clone();
    if profiles.is_empty()
        && let Some(p) = environment.get("COMPOSE_PROFILES")
    {
        profiles = p
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    }

    for (sname, svc) in file.services.iter_mut() {
        normalize_service(sname, svc, &working_dir, &environment)?;
    }
    for (kind, defs) in [
        ("secrets", &mut file.secrets),
        ("configs", &mut file.configs),
    ] {
        for (n, o) in defs.iter_mut() {
            normalize_file_object(kind, n, o, &working_dir, &environment)?;
        }
    }
    validate(&file)?;
    let uses_default = file
        .services
        .values()
        .any(|s| s.networks.contains_key("default"));
    if uses_default && !file.networks.contains_key("default") {
        file.networks.insert("default".into(), Network::default());
    }

    let (mut services, mut disabled) = (IndexMap::new(), IndexMap::new());
    for (n, s) in file.services {
        let on =
            s.profiles.is_empty() || profiles.iter().any(|p| p == "*" || s.profiles.contains(p));
        if on {
            services.insert(n, s);
        } else {
            disabled.insert(n, s);
        }
    }
    Ok(Project {
        name,
        working_dir,
        config_files: files,
        env_files,
        services,
        disabled,
        networks: file.networks,
        volumes: file.volumes,
        secrets: file.secrets,
        configs: file.configs,
        profiles,
        environment,
        warnings,
    })
}

/// `mode: 0440` under a service's `secrets`/`configs` stays text, so the
/// model reads it as octal (YAML 1.2 would make it decimal 440).
fn octal_modes(root: &mut Node) {
    let Some(Value::Map(services)) = root.get_mut("services").map(|n| &mut n.value) else {
        return;
    };
    for (_, svc) in services.iter_mut() {
        for key in ["secrets", "configs"] {
            if let Some(Value::Seq(items)) = svc.get_mut(key).map(|n| &mut n.value) {
                for it in items.iter_mut() {
                    if let Some(Value::Scalar { plain, .. }) =
                        it.get_mut("mode").map(|n| &mut n.value)
                    {
                        *plain = false;
                    }
                }
            }
        }
    }
}

/// One top-level secret or config: exactly one source, a `file` made
/// absolute, an `environment` variable read now (as Compose does).
fn normalize_file_object(
    kind: &str,
    name: &str,
    o: &mut model::FileObject,
    dir: &Path,
    env: &HashMap<String, String>,
) -> Result<()> {
    let invalid = |key: &str, message: &str| ComposeError::Invalid {
        at: String::new(),
        path: format!("{kind}.{name}{key}"),
        message: message.into(),
    };
    if o.external {
        return Err(invalid(
            ".external",
            "not supported by pier compose yet (external secrets and configs are Swarm's)",
        ));
    }
    let sources = [&o.file, &o.environment, &o.content]
        .iter()
        .filter(|s| s.is_some())
        .count();
    if sources != 1 {
        return Err(invalid(
            "",
            "must have exactly one of file, environment or content",
        ));
    }
    if let Some(f) = &o.file {
        o.file = Some(
            absolute(dir, Path::new(&expand_home(f, env)))
                .display()
                .to_string(),
        );
    }
    if let Some(var) = &o.environment
        && !env.contains_key(var)
    {
        return Err(invalid(
            ".environment",
            &format!(
                "environment variable {var:?} required by {} {name:?} is not set",
                kind.trim_end_matches('s')
            ),
        ));
    }
    Ok(())
}

fn normalize_service(
    name: &str,
    svc: &mut Service,
    dir: &Path,
    env: &HashMap<String, String>,
) -> Result<()> {
    // env_file first, then `environment` over it, as Compose resolves them.
    let mut resolved: IndexMap<String, Option<String>> = IndexMap::new();
    for entry in svc.env_file.iter() {
        let (p, required) = entry.path_required();
        let path = absolute(dir, Path::new(&expand_home(p, env)));
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(ComposeError::Project(format!(
                    "env file {} not found: {e}",
                    path.display()
                )))
            }
        };
        let lookup = |n: &str| env.get(n).cloned();
        for (k, v) in dotenv::parse(&text, &path.display().to_string(), &lookup)
            .map_err(ComposeError::Project)?
        {
            resolved.insert(k, v);
        }
    }
    for (k, v) in std::mem::take(&mut svc.environment) {
        resolved.insert(k, v);
    }
    svc.environment = resolved
        .into_iter()
        .filter_map(|(k, v)| match v {
            Some(v) => Some((k, Some(v))),
            None => env.get(&k).map(|v| (k, Some(v.clone()))),
        })
        .collect();
    svc.env_file = Default::default();

    if let Some(b) = &svc.build {
        let mut l = b.long();
        let ctx = l.context.clone().unwrap_or_else(|| ".".into());
        if !ctx.contains("://") {
            l.context = Some(
                absolute(dir, Path::new(&expand_home(&ctx, env)))
                    .display()
                    .to_string(),
            );
        }
        if l.dockerfile.is_none() {
            l.dockerfile = Some("Dockerfile".into());
        }
        svc.build = Some(model::Build::Long(Box::new(l)));
    }
    for v in svc.volumes.iter_mut() {
        if v.kind == "bind"
            && let Some(s) = &v.source
        {
            let abs = absolute(dir, Path::new(&expand_home(s, env)));
            v.source = Some(abs.display().to_string());
        }
    }
    if svc.network_mode.is_none() && svc.networks.is_empty() {
        svc.networks.insert("default".into(), None);
    }
    if svc.image.is_none() && svc.build.is_none() {
        return Err(ComposeError::Invalid {
            at: String::new(),
            path: format!("services.{name}"),
            message: "has neither an image nor a build context specified: invalid compose project"
                .into(),
        });
    }
    Ok(())
}

fn validate(file: &ComposeFile) -> Result<()> {
    for (name, s) in &file.services {
        for (dep, d) in &s.depends_on {
            if d.restart {
                return Err(ComposeError::Invalid {
                    at: String::new(),
                    path: format!("services.{name}.depends_on.{dep}.restart"),
                    message: "not supported by pier compose yet".into(),
                });
            }
        }
        for dep in s.depends_on.keys() {
            if !file.services.contains_key(dep) {
                return Err(ComposeError::Project(format!(
                    "service {name:?} depends on undefined service {dep:?}: invalid compose project"
                )));
            }
        }
        for net in s.networks.keys() {
            if net != "default" && !file.networks.contains_key(net) {
                return Err(ComposeError::Project(format!(
                    "service {name:?} refers to undefined network {net}: invalid compose project"
                )));
            }
        }
        for v in &s.volumes {
            if v.kind == "volume"
                && let Some(src) = &v.source
                && !file.volumes.contains_key(src)
            {
                return Err(ComposeError::Project(format!(
                    "service {name:?} refers to undefined volume {src}: invalid compose project"
                )));
            }
        }
        for (kind, refs, defs) in [
            ("secret", &s.secrets, &file.secrets),
            ("config", &s.configs, &file.configs),
        ] {
            for r in refs {
                if !defs.contains_key(&r.source) {
                    return Err(ComposeError::Project(format!(
                        "service {name:?} refers to undefined {kind} {}: invalid compose project",
                        r.source
                    )));
                }
            }
        }
        if s.network_mode.is_some() && !s.networks.is_empty() {
            return Err(ComposeError::Project(format!(
                "service {name:?} declares mutually exclusive `network_mode` and `networks`: invalid compose project"
            )));
        }
    }
    Ok(())
}
