//! RUN: argv from shell/exec form and heredocs, environment, `--mount`,
//! `--network`, `--security`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use pier_dockerfile::{
    parse_heredoc, parse_mount, CommandLine, Mount, MountType, NetworkMode, Run, Security,
};
use pier_reference::Sha256Writer;

use super::stage::{set_env, StageState, DEFAULT_PATH};
use super::{short_id, Builder, PROXY_ARGS};
use crate::backend::{Network, OutputStream, RunMount, RunProcess};
use crate::error::{BuildError, Result};
use crate::fsutil::{hash_tree, lchown, resolve_in_root};

/// What a RUN needs besides argv and env.
struct Mounts {
    mounts: Vec<RunMount>,
    /// Cache-key material for the mounts.
    desc: Vec<String>,
    /// Secret values exposed as variables (kept out of the cache key).
    secret_env: Vec<(String, String)>,
}

impl Builder<'_> {
    pub(crate) fn run_step(&mut self, st: &mut StageState, r: &Run) -> Result<()> {
        let mut mounts = Mounts {
            mounts: Vec::new(),
            desc: Vec::new(),
            secret_env: Vec::new(),
        };
        let args = self.run_args(st, r, &mut mounts)?;
        let mut env = st.env();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        for (k, v) in st.arg_env() {
            set_env(&mut env, &k, &v);
        }
        let key_env = env.clone();
        for spec in &r.mount_specs {
            let m = parse_mount(spec, &|v| self.expand(st, v).map_err(|e| e.to_string()))
                .map_err(|e| BuildError::Invalid(format!("RUN --mount={spec}: {e}")))?;
            self.run_mount(st, &m, &mut mounts)?;
        }
        for p in PROXY_ARGS {
            let declared = st.args.iter().any(|(k, _)| k == p);
            if let (false, Some(Some(v))) = (declared, self.common.opts.build_args.get(p)) {
                set_env(&mut env, p, v);
            }
        }
        for (k, v) in &mounts.secret_env {
            set_env(&mut env, k, v);
        }
        let network = match r.network {
            NetworkMode::Default => self.common.opts.network.clone(),
            NetworkMode::None => Network::None,
            NetworkMode::Host => Network::Host,
        };
        let process = RunProcess {
            args: args.clone(),
            env,
            cwd: st.workdir(),
            user: st.user(),
            network: network.clone(),
            extra_hosts: self.common.opts.extra_hosts.clone(),
            privileged: r.security == Security::Insecure,
            mounts: mounts.mounts,
            shm_size: self.common.opts.shm_size,
        };
        let descriptor = serde_json::json!({
            "run": args,
            "env": key_env,
            "cwd": process.cwd,
            "user": process.user,
            "network": format!("{network:?}"),
            "privileged": process.privileged,
            "mounts": mounts.desc,
        })
        .to_string();
        let created_by = format!("RUN {} # buildkit", run_command_string(&args, st));
        let command = args.join(" ");
        self.fs_step(st, created_by, &descriptor, &mut |b, root| {
            let id = short_id(&root.key.replace(|c: char| !c.is_ascii_alphanumeric(), ""));
            b.say(&format!(" ---> Running in {id}\n"));
            // Per stream (stdout, stderr): bytes of an incomplete character.
            let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
            let progress = &mut *b.progress;
            let code = b.common.backend.run(root, &process, &mut |which, bytes| {
                let i = which as usize;
                let buf = &mut pending[i];
                buf.extend_from_slice(bytes);
                let valid = match std::str::from_utf8(buf) {
                    Ok(_) => buf.len(),
                    // Keep an incomplete character for the next chunk.
                    Err(e) if e.error_len().is_none() => e.valid_up_to(),
                    Err(_) => buf.len(),
                };
                if valid > 0 {
                    let text = String::from_utf8_lossy(&buf[..valid]).into_owned();
                    progress.stream(&colored(which, &text));
                    buf.drain(..valid);
                }
            })?;
            for (i, which) in [OutputStream::Stdout, OutputStream::Stderr]
                .into_iter()
                .enumerate()
            {
                if !pending[i].is_empty() {
                    let text = String::from_utf8_lossy(&pending[i]).into_owned();
                    b.say(&colored(which, &text));
                }
            }
            if code != 0 {
                return Err(BuildError::RunFailed {
                    command: command.clone(),
                    code,
                });
            }
            b.say(&format!(" ---> Removed intermediate container {id}\n"));
            Ok(())
        })
    }

    /// argv for RUN: exec form as is; shell form through SHELL, with heredoc
    /// bodies appended for the shell to read, or a lone heredoc run as the
    /// script itself (directly, when it starts with `#!`).
    fn run_args(&mut self, st: &StageState, r: &Run, mounts: &mut Mounts) -> Result<Vec<String>> {
        let cmd = match &r.command {
            CommandLine::Exec(a) => return Ok(a.clone()),
            CommandLine::Shell(s) => s.clone(),
        };
        let mut args = st.shell();
        if r.heredocs.is_empty() {
            args.push(cmd);
            return Ok(args);
        }
        let first = &r.heredocs[0];
        let lone = matches!(parse_heredoc(cmd.trim()), Ok(Some(h)) if h.name == first.name)
            && r.heredocs.len() == 1;
        if lone {
            let body = first.data();
            if body.starts_with("#!") {
                let dir = self.temp_dir()?;
                let file = dir.join(format!("heredoc-{}", mounts.mounts.len()));
                std::fs::write(&file, &body).map_err(BuildError::io("writing", &file))?;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
                    .map_err(BuildError::io("setting mode of", &file))?;
                let target = format!("/dev/pipes/{}", first.name);
                mounts.mounts.push(RunMount::Bind {
                    source: file,
                    target: target.clone(),
                    readonly: true,
                });
                mounts.desc.push(format!("heredoc-script {body}"));
                return Ok(vec![target]);
            }
            args.push(body);
            return Ok(args);
        }
        let mut script = cmd;
        for h in &r.heredocs {
            script.push('\n');
            script.push_str(&h.content);
            script.push_str(&h.name);
        }
        args.push(script);
        Ok(args)
    }

    fn run_mount(&mut self, st: &StageState, m: &Mount, out: &mut Mounts) -> Result<()> {
        let target = m.target.clone();
        let need_target = || {
            target
                .clone()
                .ok_or_else(|| BuildError::Invalid("mount target is required".into()))
        };
        match m.kind {
            MountType::Bind => {
                let target = need_target()?;
                let (root, what) = match &m.from {
                    None => (self.common.opts.context.clone(), "context".to_string()),
                    Some(f) => {
                        let f = self.expand(st, f)?;
                        let layers = self.layers_of(&f, st.index)?;
                        (self.borrow_root(&layers)?, f)
                    }
                };
                let src = m.source.clone().unwrap_or_else(|| "/".into());
                let mut host = resolve_in_root(&root, &src, true)
                    .map_err(BuildError::io("resolving", &src))?;
                if std::fs::symlink_metadata(&host).is_err() {
                    return Err(BuildError::Invalid(format!(
                        "failed to compute cache key: \"{src}\" not found in {what}"
                    )));
                }
                let shared = m.from.is_none() && self.common.opts.context_shared;
                if shared && (!m.read_only || !self.common.ignore.is_empty()) {
                    // The user's own directory: a RUN sees (and hashes) it
                    // without what .dockerignore leaves out, as a sent
                    // context would be, and writes to an rw bind are thrown
                    // away (BuildKit's rule), so it gets a filtered copy.
                    let base = crate::ignore::clean_path(&format!("/{src}"));
                    let base = base.trim_start_matches('/').to_string();
                    let ignore = self.common.ignore.clone();
                    let skip = move |rel: &str| {
                        let full = if base.is_empty() {
                            rel.to_string()
                        } else {
                            format!("{base}/{rel}")
                        };
                        ignore.is_excluded(&full)
                    };
                    let copy = self.unique_temp_dir()?.join("src");
                    crate::fsutil::copy_tree(&host, &copy, "", Default::default(), &skip)?;
                    host = copy;
                }
                let mut h = Sha256Writer::new();
                hash_tree(&mut h, &host, "", true, &|_| false)?;
                out.desc.push(format!(
                    "bind {target} {what}:{src} {} ro={}",
                    h.digest(),
                    m.read_only
                ));
                out.mounts.push(RunMount::Bind {
                    source: host,
                    target,
                    readonly: m.read_only,
                });
            }
            MountType::Cache => {
                let target = need_target()?;
                let id = m.id.clone().unwrap_or_else(|| target.clone());
                let dir = self.common.backend.cache_mount_dir(&id)?;
                let fresh = crate::fsutil::sorted_names(&dir)?.is_empty();
                if fresh {
                    let meta = std::fs::metadata(&dir).map_err(BuildError::io("reading", &dir))?;
                    let (uid, gid) = (m.uid.unwrap_or(0), m.gid.unwrap_or(0));
                    if (meta.uid(), meta.gid()) != (uid, gid) {
                        lchown(&dir, uid, gid)?;
                    }
                    let mode = m.mode.unwrap_or(0o755);
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                        .map_err(BuildError::io("setting mode of", &dir))?;
                }
                out.desc
                    .push(format!("cache {target} {id} ro={}", m.read_only));
                out.mounts.push(RunMount::Bind {
                    source: dir,
                    target,
                    readonly: m.read_only,
                });
            }
            MountType::Tmpfs => {
                let target = need_target()?;
                out.desc.push(format!("tmpfs {target} {}", m.size_limit));
                out.mounts.push(RunMount::Tmpfs {
                    target,
                    size: m.size_limit,
                });
            }
            MountType::Secret => {
                let id =
                    m.id.clone()
                        .or_else(|| m.source.clone())
                        .or_else(|| {
                            target
                                .as_deref()
                                .and_then(|t| t.rsplit('/').next())
                                .map(str::to_string)
                        })
                        .unwrap_or_default();
                let Some(src) = self.common.opts.secrets.get(&id).cloned() else {
                    if m.required {
                        return Err(BuildError::Invalid(format!("secret {id}: not found")));
                    }
                    return Ok(());
                };
                out.desc.push(format!("secret {id} {target:?} {:?}", m.env));
                if let Some(var) = &m.env {
                    let v = std::fs::read_to_string(&src)
                        .map_err(BuildError::io("reading secret", &src))?;
                    out.secret_env.push((var.clone(), v));
                    if target.is_none() {
                        return Ok(());
                    }
                }
                out.mounts.push(RunMount::Bind {
                    source: src,
                    target: target.unwrap_or_else(|| format!("/run/secrets/{id}")),
                    readonly: true,
                });
            }
            MountType::Ssh => {
                return Err(BuildError::Invalid(
                    "RUN --mount=type=ssh is not supported".into(),
                ))
            }
        }
        Ok(())
    }
}

/// BuildKit's history text for RUN: `|2 A=1 B=2 /bin/sh -c cmd` when the
/// stage has ARGs.
fn run_command_string(args: &[String], st: &StageState) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (k, v) in &st.args {
        let val = st.lookup(k).or_else(|| v.clone()).unwrap_or_default();
        let entry = format!("{k}={val}");
        match seen.iter().position(|s| s == k) {
            Some(i) => parts[i] = entry,
            None => {
                seen.push(k);
                parts.push(entry);
            }
        }
    }
    if !parts.is_empty() {
        parts.insert(0, format!("|{}", parts.len()));
    }
    parts.extend(args.iter().cloned());
    parts.join(" ")
}

/// RUN output as Docker's builder streams it: stderr wrapped in the
/// terminal's bright red and a reset.
fn colored(which: OutputStream, text: &str) -> String {
    match which {
        OutputStream::Stdout => text.to_string(),
        OutputStream::Stderr => format!("\x1b[91m{text}\x1b[0m"),
    }
}
