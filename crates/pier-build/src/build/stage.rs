//! One stage: FROM, the per-stage ARG/ENV state, metadata instructions and
//! the cached-step machinery shared by RUN, COPY, ADD and WORKDIR.

use std::collections::HashMap;

use pier_api::models::{ContainerConfig, HealthConfig};
use pier_dockerfile::{CommandLine, Healthcheck, Instruction};
use pier_reference::Digest;

use super::{short_id, Builder};
use crate::backend::{CacheRecord, History, ImageConfig, LayerInfo, WorkRoot};
use crate::error::{BuildError, Result};
use crate::ignore::clean_path;
use crate::timefmt::now_rfc3339;

const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The state of a stage being built (and, once done, its result).
#[derive(Debug, Clone)]
pub(crate) struct StageState {
    pub index: usize,
    pub config: ImageConfig,
    pub layers: Vec<LayerInfo>,
    /// Cache key of everything so far.
    pub key: String,
    /// The image of the last step (classic builder's ` ---> ID`); empty
    /// for a stage on scratch before its first step.
    pub image_id: String,
    /// ARGs declared in this stage, in order, with their values.
    pub args: Vec<(String, Option<String>)>,
    /// A CMD was given in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

impl StageState {
    pub fn cfg(&mut self) -> &mut ContainerConfig {
        self.config.config.get_or_insert_with(Default::default)
    }

    pub fn env(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
    }

    /// A variable as instructions see it: ENV wins over ARG.
    pub fn lookup(&self, k: &str) -> Option<String> {
        for e in self.env().iter().rev() {
            if let Some((ek, v)) = e.split_once('=')
                && ek == k
            {
                return Some(v.to_string());
            }
        }
        self.args
            .iter()
            .rev()
            .find(|(ak, _)| ak == k)
            .and_then(|(_, v)| v.clone())
    }

    pub fn workdir(&self) -> String {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    pub fn user(&self) -> String {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.user.clone())
            .unwrap_or_default()
    }

    pub fn shell(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.shell.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// The stage's ARGs with values as `KEY=value`, unless ENV has the name.
    pub fn arg_env(&self) -> Vec<(String, String)> {
        let env = self.env();
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in &self.args {
            let Some(v) = v else { continue };
            if env.iter().any(|e| e.split('=').next() == Some(k)) {
                continue;
            }
            out.retain(|(ok, _)| ok != k);
            out.push((k.clone(), v.clone()));
        }
        out
    }

    pub fn add_history(&mut self, created: String, created_by: String, empty: bool) {
        self.config.history.push(History {
            created: Some(created),
            created_by: Some(created_by),
            author: None,
            comment: Some(HISTORY_COMMENT.into()),
            empty_layer: empty,
        });
    }
}

pub(crate) fn next_key(prev: &str, descriptor: &str) -> String {
    Digest::sha256(format!("{prev}\n{descriptor}").as_bytes()).to_string()
}

/// `key=value` ENV list with `k` set to `v` (replacing an earlier value).
pub(crate) fn set_env(env: &mut Vec<String>, k: &str, v: &str) {
    let entry = format!("{k}={v}");
    match env.iter_mut().find(|e| e.split('=').next() == Some(k)) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// Go's `%q` of a string slice: `["a" "b"]`.
pub(crate) fn go_quote_list(items: &[String]) -> String {
    let q: Vec<String> = items
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", q.join(" "))
}

impl Builder<'_> {
    pub(crate) fn expand(&self, st: &StageState, word: &str) -> Result<String> {
        self.expand_with(word, &|k| st.lookup(k))
    }

    pub(crate) fn expand_words(&self, st: &StageState, word: &str) -> Result<Vec<String>> {
        self.common
            .lexer
            .process_words(word, &|k: &str| st.lookup(k))
            .map_err(|e| BuildError::Invalid(e.to_string()))
    }

    pub(crate) fn build_stage(&mut self, index: usize) -> Result<StageState> {
        let stage = self.common.stages[index].clone();
        self.next_step(&stage.from.original)?;
        let image = self.expand_with(&stage.image, &self.global_lookup())?;
        let platform = match &stage.platform {
            Some(p) => Some(self.expand_with(p, &self.global_lookup())?),
            None => self.common.opts.platform.clone(),
        };
        let plat = platform
            .clone()
            .unwrap_or_else(|| self.common.platform.clone());
        let base_stage = self.stage_ref_named(&image, index);
        let mut st =
            if let Some(j) = base_stage {
                let base =
                    self.common.done.get(&j).cloned().ok_or_else(|| {
                        BuildError::Invalid(format!("stage {image} was not built"))
                    })?;
                self.say(&format!(" ---> {}\n", short_id(&base.image_id)));
                StageState {
                    index,
                    key: next_key(&base.key, &format!("FROM stage\n{plat}")),
                    image_id: base.image_id,
                    config: base.config,
                    layers: base.layers,
                    args: Vec::new(),
                    cmd_set: false,
                }
            } else if image.eq_ignore_ascii_case("scratch") {
                let mut parts = plat.split('/');
                let os = parts.next().unwrap_or("linux").to_string();
                let arch = parts.next().unwrap_or("amd64").to_string();
                let variant = parts.next().map(str::to_string);
                let config = ImageConfig {
                    architecture: arch,
                    os,
                    variant,
                    // BuildKit gives a scratch stage a working dir of `/`.
                    config: Some(ContainerConfig {
                        env: Some(vec![format!("PATH={DEFAULT_PATH}")]),
                        working_dir: Some("/".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                // As Docker's classic builder: scratch is no image.
                self.say(" ---> \n");
                StageState {
                    index,
                    key: next_key("", &format!("FROM scratch\n{plat}")),
                    image_id: String::new(),
                    config,
                    layers: Vec::new(),
                    args: Vec::new(),
                    cmd_set: false,
                }
            } else {
                let img = self.resolve_image(&image, platform.as_deref())?;
                self.say(&format!(" ---> {}\n", short_id(&img.id)));
                let mut config = img.config.clone();
                // BuildKit reads the base into an OCI image, which has none
                // of Docker's own fields.
                config.comment = None;
                config.docker_version = None;
                config.container = None;
                config.container_config = None;
                if config.config.is_none() {
                    config.config = Some(ContainerConfig::default());
                }
                StageState {
                    index,
                    key: next_key("", &format!("FROM {}\n{plat}", img.id)),
                    image_id: img.id.clone(),
                    config,
                    layers: img.layers.clone(),
                    args: Vec::new(),
                    cmd_set: false,
                }
            };
        let triggers = st.cfg().on_build.take().unwrap_or_default();
        if !triggers.is_empty() {
            let n = triggers.len();
            let s = if n == 1 { "" } else { "s" };
            self.say(&format!("# Executing {n} build trigger{s}\n"));
            for t in triggers {
                let df = pier_dockerfile::parse(&t).map_err(|e| {
                    BuildError::Invalid(format!("invalid ONBUILD trigger {t:?}: {e}"))
                })?;
                let cmds = df.commands().map_err(|e| {
                    BuildError::Invalid(format!("invalid ONBUILD trigger {t:?}: {e}"))
                })?;
                for c in cmds {
                    self.dispatch(&mut st, &c.instruction, &c.original)?;
                }
            }
        }
        for cmd in &stage.commands {
            self.next_step(&cmd.original)?;
            self.dispatch(&mut st, &cmd.instruction, &cmd.original)?;
        }
        Ok(st)
    }

    /// A FROM name that refers to an earlier stage (names only, not indexes).
    fn stage_ref_named(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_lowercase();
        self.common.stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(&lower))
    }

    fn dispatch(&mut self, st: &mut StageState, ins: &Instruction, _original: &str) -> Result<()> {
        match ins {
            Instruction::From(_) => Err(BuildError::Invalid("unexpected FROM".into())),
            // Roots borrowed for a step's sources are released after it.
            Instruction::Run(r) => {
                let mark = self.borrowed_mark();
                let res = self.run_step(st, r);
                self.release_since(mark);
                res
            }
            Instruction::Copy(c) => {
                let mark = self.borrowed_mark();
                let res = self.copy_step(st, c);
                self.release_since(mark);
                res
            }
            Instruction::Add(a) => self.add_step(st, a),
            Instruction::Workdir(w) => self.workdir_step(st, w),
            Instruction::Arg(decls) => {
                let mut parts = Vec::new();
                for d in decls {
                    self.consumed.insert(d.name.clone());
                    let default = match &d.default {
                        Some(raw) => Some(self.expand(st, raw)?),
                        None => None,
                    };
                    let value = match self.common.opts.build_args.get(&d.name) {
                        Some(Some(v)) => Some(v.clone()),
                        _ => default
                            .clone()
                            .or_else(|| self.common.globals.get(&d.name).cloned().flatten()),
                    };
                    parts.push(match &default {
                        Some(v) => format!("{}={v}", d.name),
                        None => d.name.clone(),
                    });
                    st.args.push((d.name.clone(), value));
                }
                let vals: Vec<String> = st.args.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                self.meta_step(st, format!("ARG {}", parts.join(" ")), &vals.join("\n"))
            }
            Instruction::Env(kvs) => {
                let mut pairs = Vec::new();
                for kv in kvs {
                    pairs.push((kv.key.clone(), self.expand(st, &kv.value)?));
                }
                let mut env = st.env();
                let mut msg = String::from("ENV");
                for (k, v) in &pairs {
                    set_env(&mut env, k, v);
                    msg.push_str(&format!(" {k}={v}"));
                }
                st.cfg().env = Some(env);
                self.meta_step(st, msg.clone(), &msg)
            }
            Instruction::Label(kvs) => {
                let mut msg = String::from("LABEL");
                let mut pairs = Vec::new();
                for kv in kvs {
                    let k = self.expand(st, &kv.key)?;
                    let v = self.expand(st, &kv.value)?;
                    msg.push_str(&format!(" {k}={v}"));
                    pairs.push((k, v));
                }
                let labels = st.cfg().labels.get_or_insert_with(HashMap::new);
                labels.extend(pairs);
                self.meta_step(st, msg.clone(), &msg)
            }
            Instruction::Expose(ports) => {
                let mut all = st.cfg().exposed_ports.clone().unwrap_or_default();
                let mut new = Vec::new();
                for p in ports {
                    for w in self.expand_words(st, p)? {
                        new.extend(parse_port_spec(&w)?);
                    }
                }
                new.sort();
                new.dedup();
                all.extend(new.iter().cloned());
                all.sort();
                all.dedup();
                st.cfg().exposed_ports = Some(all);
                let shown: Vec<String> = new.iter().map(|p| format!("{p}:{{}}")).collect();
                let msg = format!("EXPOSE map[{}]", shown.join(" "));
                self.meta_step(st, msg.clone(), &msg)
            }
            Instruction::User(u) => {
                let u = self.expand(st, u)?;
                st.cfg().user = Some(u.clone());
                self.meta_step(st, format!("USER {u}"), &format!("USER {u}"))
            }
            Instruction::Volume(vols) => {
                let mut list = Vec::new();
                for v in vols {
                    let v = self.expand(st, v)?;
                    if v.is_empty() {
                        return Err(BuildError::Invalid(
                            "VOLUME specified can not be an empty string".into(),
                        ));
                    }
                    list.push(v);
                }
                let cfg = st.cfg();
                let vs = cfg.volumes.get_or_insert_with(Vec::new);
                vs.extend(list.iter().cloned());
                vs.sort();
                vs.dedup();
                let msg = format!("VOLUME [{}]", list.join(" "));
                self.meta_step(st, msg.clone(), &msg)
            }
            Instruction::StopSignal(s) => {
                let s = self.expand(st, s)?;
                validate_signal(&s)?;
                st.cfg().stop_signal = Some(s.clone());
                self.meta_step(st, format!("STOPSIGNAL {s}"), &format!("STOPSIGNAL {s}"))
            }
            Instruction::Shell(sh) => {
                st.cfg().shell = Some(sh.clone());
                let msg = format!("SHELL [{}]", sh.join(" "));
                self.meta_step(st, msg.clone(), &msg)
            }
            Instruction::Maintainer(m) => {
                st.config.author = Some(m.clone());
                self.meta_step(st, format!("MAINTAINER {m}"), &format!("MAINTAINER {m}"))
            }
            Instruction::Cmd(cl) => {
                let args = self.command_args(st, cl);
                let cfg = st.cfg();
                cfg.cmd = Some(args.clone());
                cfg.args_escaped = Some(true);
                st.cmd_set = true;
                let msg = format!("CMD {}", go_quote_list(&args));
                self.meta_step(st, msg.clone(), &msg)
            }
            Instruction::Entrypoint(cl) => {
                let args = self.command_args(st, cl);
                let keep_cmd = st.cmd_set;
                let cfg = st.cfg();
                cfg.entrypoint = Some(args.clone());
                if !keep_cmd {
                    cfg.cmd = None;
                }
                let msg = format!("ENTRYPOINT {}", go_quote_list(&args));
                self.meta_step(st, msg.clone(), &msg)
            }
            Instruction::Healthcheck(h) => {
                let hc = match h {
                    Healthcheck::None => HealthConfig {
                        test: Some(vec!["NONE".into()]),
                        ..Default::default()
                    },
                    Healthcheck::Check(c) => {
                        let ns = |d: Option<std::time::Duration>| {
                            d.map(|d| d.as_nanos() as i64).filter(|&n| n > 0)
                        };
                        HealthConfig {
                            test: Some(c.test.clone()),
                            interval: ns(c.interval),
                            timeout: ns(c.timeout),
                            start_period: ns(c.start_period),
                            start_interval: ns(c.start_interval),
                            retries: c.retries.map(i64::from).filter(|&r| r > 0),
                        }
                    }
                };
                let d = |n: Option<i64>| format!("{:?}", go_duration(n.unwrap_or(0)));
                // Docker before 25 has no start interval in its struct and so
                // prints three durations; 25+ prints four. We print the fourth
                // only when it is set (it cannot be with the older Docker).
                let mut durations = vec![d(hc.interval), d(hc.timeout), d(hc.start_period)];
                if hc.start_interval.is_some() {
                    durations.push(d(hc.start_interval));
                }
                let msg = format!(
                    "HEALTHCHECK &{{{} {} '\\x{:02x}'}}",
                    go_quote_list(&hc.test.clone().unwrap_or_default()),
                    durations.join(" "),
                    hc.retries.unwrap_or(0)
                );
                st.cfg().healthcheck = Some(hc);
                self.meta_step(st, msg.clone(), &msg)
            }
            Instruction::Onbuild(o) => {
                st.cfg()
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(o.expression.clone());
                // BuildKit records no history for ONBUILD.
                st.key = next_key(&st.key, &format!("ONBUILD {}", o.expression));
                self.step_image(st)
            }
        }
    }

    /// CMD/ENTRYPOINT argv: exec form as written, shell form through SHELL.
    fn command_args(&self, st: &StageState, cl: &CommandLine) -> Vec<String> {
        match cl {
            CommandLine::Exec(a) => a.clone(),
            CommandLine::Shell(s) => {
                let mut a = st.shell();
                a.push(s.clone());
                a
            }
        }
    }

    /// A step that only changes the config: cached so that its history
    /// timestamp (and so the image ID) is stable across rebuilds.
    pub(crate) fn meta_step(
        &mut self,
        st: &mut StageState,
        created_by: String,
        descriptor: &str,
    ) -> Result<()> {
        st.key = next_key(&st.key, descriptor);
        let rec = self.cache_lookup(st, &st.key, &created_by)?;
        let created = match rec {
            Some(r) => {
                self.say(" ---> Using cache\n");
                r.created
            }
            None => {
                let created = now_rfc3339();
                self.common.backend.cache_put(
                    &st.key,
                    &CacheRecord {
                        layer: None,
                        created: created.clone(),
                    },
                )?;
                created
            }
        };
        st.add_history(created, created_by, true);
        self.step_image(st)
    }

    /// The cached result of the step `created_by` with `key` on top of `st`,
    /// when the cache may be used.
    pub(crate) fn cache_lookup(
        &self,
        st: &StageState,
        key: &str,
        created_by: &str,
    ) -> Result<Option<CacheRecord>> {
        if self.common.opts.no_cache {
            return Ok(None);
        }
        let rec = self.common.backend.cache_get(key)?;
        Ok(rec.filter(|r| self.in_cache_from(st, r.layer.as_ref(), created_by)))
    }

    /// With `--cache-from`, Docker's classic builder takes a step from the
    /// cache only when one of those images has it: the same layers and
    /// history up to and including the step.
    fn in_cache_from(&self, st: &StageState, layer: Option<&LayerInfo>, created_by: &str) -> bool {
        let Some(images) = &self.common.cache_from else {
            return true;
        };
        let diffs: Vec<&str> = st
            .layers
            .iter()
            .chain(layer)
            .map(|l| l.diff_id.as_str())
            .collect();
        let history: Vec<Option<&str>> = st
            .config
            .history
            .iter()
            .map(|h| h.created_by.as_deref())
            .chain(std::iter::once(Some(created_by)))
            .collect();
        images.iter().any(|img| {
            img.layers.len() >= diffs.len()
                && img.layers.iter().zip(&diffs).all(|(l, d)| l.diff_id == *d)
                && img.config.history.len() >= history.len()
                && img
                    .config
                    .history
                    .iter()
                    .zip(&history)
                    .all(|(h, c)| h.created_by.as_deref() == *c)
        })
    }

    /// A step that changes files: looked up in the cache by `descriptor`,
    /// otherwise `op` runs on a fresh root on top of the stage's layers and
    /// the changes become a layer.
    pub(crate) fn fs_step(
        &mut self,
        st: &mut StageState,
        created_by: String,
        descriptor: &str,
        op: &mut dyn FnMut(&mut Self, &WorkRoot) -> Result<()>,
    ) -> Result<()> {
        let key = next_key(&st.key, descriptor);
        let rec = match self.cache_lookup(st, &key, &created_by)? {
            Some(r) => {
                self.say(" ---> Using cache\n");
                r
            }
            None => {
                let root = self.common.backend.prepare(&st.layers)?;
                let res = op(self, &root);
                let layer = match res {
                    Ok(()) => self.common.backend.commit(&root),
                    Err(e) => {
                        let _ = self.common.backend.release(root);
                        return Err(e);
                    }
                };
                let layer = match layer {
                    Ok(l) => {
                        self.common.backend.release(root)?;
                        l
                    }
                    Err(e) => {
                        let _ = self.common.backend.release(root);
                        return Err(e.into());
                    }
                };
                let rec = CacheRecord {
                    layer,
                    created: now_rfc3339(),
                };
                self.common.backend.cache_put(&key, &rec)?;
                rec
            }
        };
        st.key = key;
        let empty = rec.layer.is_none();
        if let Some(l) = rec.layer {
            st.layers.push(l);
        }
        st.add_history(rec.created, created_by, empty);
        self.step_image(st)
    }

    fn workdir_step(&mut self, st: &mut StageState, w: &str) -> Result<()> {
        let w = self.expand(st, w)?;
        let wd = if w.starts_with('/') {
            clean_path(&w)
        } else {
            clean_path(&format!("{}/{w}", st.workdir()))
        };
        st.cfg().working_dir = Some(wd.clone());
        let msg = format!("WORKDIR {wd}");
        if wd == "/" {
            return self.meta_step(st, msg.clone(), &msg);
        }
        let user = st.user();
        let descriptor = format!("{msg}\nuser={user}");
        self.fs_step(st, msg, &descriptor, &mut |_, root| {
            let owner = crate::users::resolve_user(&root.root, &user);
            crate::fsutil::mkdir_all_in_root(&root.root, &wd, owner)?;
            Ok(())
        })
    }
}

/// `80`, `80/udp`, `8000-8002/tcp` into `port/proto` keys.
fn parse_port_spec(spec: &str) -> Result<Vec<String>> {
    let bad = || BuildError::Invalid(format!("invalid containerPort: {spec}"));
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(BuildError::Invalid(format!("invalid proto: {proto}")));
    }
    // `ip:host:container` specs are accepted by Docker; only the container
    // port matters for EXPOSE.
    let ports = ports.rsplit(':').next().unwrap_or(ports);
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// Go's `time.Duration` printout for whole seconds and milliseconds.
fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    if ns % 1_000_000_000 != 0 {
        return format!("{}ms", ns / 1_000_000);
    }
    let s = ns / 1_000_000_000;
    let (h, m, s) = (s / 3600, s % 3600 / 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

fn validate_signal(s: &str) -> Result<()> {
    // Docker's signal.ParseSignal: a number, or a name in any case with or
    // without the SIG prefix.
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let ok = s.parse::<u32>().is_ok_and(|n| n > 0)
        || (!name.is_empty()
            && name.starts_with(|c: char| c.is_ascii_uppercase())
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+' || c == '-'));
    if ok {
        Ok(())
    } else {
        Err(BuildError::Invalid(format!("Invalid signal: {s}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port_spec("80").unwrap(), ["80/tcp"]);
        assert_eq!(parse_port_spec("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(
            parse_port_spec("8000-8002").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(parse_port_spec("x").is_err());
        assert!(parse_port_spec("80/foo").is_err());
    }

    #[test]
    fn signals() {
        assert!(validate_signal("SIGTERM").is_ok());
        assert!(validate_signal("9").is_ok());
        assert!(validate_signal("RTMIN+3").is_ok());
        assert!(validate_signal("sigterm").is_ok());
        assert!(validate_signal("SIG").is_err());
        assert!(validate_signal("0").is_err());
        assert!(validate_signal("bad signal").is_err());
    }
}
