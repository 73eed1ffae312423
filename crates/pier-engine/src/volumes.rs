//! Named and anonymous volumes, bind mounts and tmpfs mounts of containers.
//!
//! At create, `-v`, `--mount`, `--volumes-from` and the image's VOLUMEs are
//! resolved into [`MountRec`]s stored with the container; at start they
//! become bind mounts of the OCI spec.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pier_api::models::{MountPoint, MountType as MountTypeEnum, Volume, VolumePruneResponse};
use serde::{Deserialize, Serialize};

use crate::records::ContainerRecord;
use crate::util::{now_rfc3339, random_id};
use crate::{Engine, EngineError, Result};

const NS: &str = "volumes";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VolumeRec {
    pub name: String,
    pub created_at: String,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    #[serde(default)]
    pub options: HashMap<String, String>,
    /// Made for an image VOLUME or a bare `-v /path`: `rm -v` removes it.
    #[serde(default)]
    pub anonymous: bool,
}

/// One mount of a container, resolved at create.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountRec {
    /// "bind", "volume" or "tmpfs".
    pub kind: String,
    /// Volume name (volumes only).
    #[serde(default)]
    pub name: String,
    /// Host path (binds) or the volume's data dir.
    #[serde(default)]
    pub source: String,
    pub destination: String,
    pub rw: bool,
    /// tmpfs options (`size=64m,mode=1777`).
    #[serde(default)]
    pub options: String,
    /// Copy the image's content at the destination into an empty new volume.
    #[serde(default)]
    pub copy_up: bool,
    /// Bind propagation as given (`rshared`, `rslave`, ...); empty = rprivate.
    #[serde(default)]
    pub propagation: String,
}

/// A volume is a directory named after it, so a longer name cannot exist.
const MAX_VOLUME_NAME: usize = 255;

fn validate_volume_name(n: &str) -> Result<()> {
    if n.len() > MAX_VOLUME_NAME {
        return Err(EngineError::InvalidArgument(format!(
            "create {}...: invalid volume name: {} characters is longer than the limit of {MAX_VOLUME_NAME}",
            &n[..n.floor_char_boundary(32)],
            n.len()
        )));
    }
    let mut c = n.chars();
    let ok = n.len() >= 2
        && c.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && c.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidArgument(format!(
            "create {n}: \"{n}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )))
    }
}

fn clean_dest(d: &str) -> Result<String> {
    if !d.starts_with('/') {
        return Err(EngineError::InvalidArgument(format!(
            "invalid mount config: invalid mount path: '{d}' mount path must be absolute"
        )));
    }
    let p: PathBuf = Path::new(d).components().collect();
    Ok(p.display().to_string())
}

impl Engine {
    pub(crate) fn volume_dir(&self, name: &str) -> PathBuf {
        self.cfg.data_root.join("volumes").join(name).join("_data")
    }

    pub(crate) fn volume_recs(&self) -> Vec<VolumeRec> {
        self.meta
            .kv_list::<VolumeRec>(NS)
            .map(|l| l.into_iter().map(|(_, v)| v).collect())
            .unwrap_or_default()
    }

    pub(crate) fn volume_rec(&self, name: &str) -> Option<VolumeRec> {
        self.meta.kv_get::<VolumeRec>(NS, name).ok().flatten()
    }

    fn volume_json(&self, v: &VolumeRec) -> Volume {
        Volume {
            name: v.name.clone(),
            driver: "local".into(),
            mountpoint: self.volume_dir(&v.name).display().to_string(),
            created_at: Some(v.created_at.clone()),
            labels: v.labels.clone(),
            scope: Some(pier_api::models::VolumeScopeEnum::LOCAL),
            options: v.options.clone(),
            ..Default::default()
        }
    }

    /// `POST /volumes/create` (idempotent for an existing name, like Docker).
    pub fn create_volume(
        &self,
        name: Option<&str>,
        labels: HashMap<String, String>,
        options: HashMap<String, String>,
    ) -> Result<Volume> {
        let (name, anonymous) = match name.filter(|n| !n.is_empty()) {
            Some(n) => (n.to_string(), false),
            None => (random_id(), true),
        };
        Ok(self.volume_json(&self.ensure_volume(&name, anonymous, labels, options)?))
    }

    fn ensure_volume(
        &self,
        name: &str,
        anonymous: bool,
        labels: HashMap<String, String>,
        options: HashMap<String, String>,
    ) -> Result<VolumeRec> {
        validate_volume_name(name)?;
        if let Some(v) = self.meta.kv_get::<VolumeRec>(NS, name)? {
            return Ok(v);
        }
        crate::volume_mount::check_options(&options)?;
        let dir = self.volume_dir(name);
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
        let v = VolumeRec {
            name: name.to_string(),
            created_at: now_rfc3339(),
            labels,
            options,
            anonymous,
        };
        self.meta.kv_put(NS, name, &v)?;
        self.events.emit(
            pier_api::models::EventMessageTypeEnum::VOLUME,
            "create",
            name,
            HashMap::from([("driver".to_string(), "local".to_string())]),
        );
        Ok(v)
    }

    pub fn inspect_volume(&self, name: &str) -> Result<Volume> {
        let v = self
            .meta
            .kv_get::<VolumeRec>(NS, name)?
            .ok_or_else(|| EngineError::NotFound(format!("get {name}: no such volume")))?;
        Ok(self.volume_json(&v))
    }

    pub fn list_volumes(&self, filters: &HashMap<String, Vec<String>>) -> Result<Vec<Volume>> {
        crate::util::check_filter_keys(filters, &["name", "dangling", "label", "driver"])?;
        let used = self.volumes_in_use()?;
        let mut out = Vec::new();
        for (_, v) in self.meta.kv_list::<VolumeRec>(NS)? {
            let ok = filters.iter().all(|(k, vals)| {
                if k == "label" {
                    return crate::util::labels_match(vals, &v.labels);
                }
                vals.iter().any(|val| match k.as_str() {
                    "name" => v.name.contains(val.as_str()),
                    "dangling" => (val == "true" || val == "1") != used.contains_key(&v.name),
                    "driver" => val == "local",
                    _ => true,
                })
            });
            if ok {
                out.push(self.volume_json(&v));
            }
        }
        Ok(out)
    }

    /// Volume name -> IDs of the containers that mount it.
    fn volumes_in_use(&self) -> Result<HashMap<String, Vec<String>>> {
        let mut used: HashMap<String, Vec<String>> = HashMap::new();
        for c in self.meta.containers::<ContainerRecord>()? {
            for m in c.mounts.iter().filter(|m| m.kind == "volume") {
                used.entry(m.name.clone()).or_default().push(c.id.clone());
            }
        }
        Ok(used)
    }

    /// `DELETE /volumes/{name}`.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        if self.meta.kv_get::<VolumeRec>(NS, name)?.is_none() {
            if force {
                return Ok(());
            }
            return Err(EngineError::NotFound(format!("get {name}: no such volume")));
        }
        if let Some(users) = self.volumes_in_use()?.get(name) {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        // A device still mounted there (a daemon that died with it) is the
        // user's data: unmount it rather than delete what it holds.
        if self.unmount_volume(name) {
            return Err(EngineError::Conflict(format!(
                "remove {name}: {} is still mounted",
                self.volume_dir(name).display()
            )));
        }
        let dir = self.cfg.data_root.join("volumes").join(name);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(EngineError::io(&dir, e));
            }
        }
        self.meta.kv_delete(NS, name)?;
        self.events.emit(
            pier_api::models::EventMessageTypeEnum::VOLUME,
            "destroy",
            name,
            HashMap::new(),
        );
        Ok(())
    }

    /// `POST /volumes/prune`: unused anonymous volumes (all unused with
    /// `all`) that the filters allow.
    pub fn prune_volumes(
        &self,
        all: bool,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<VolumePruneResponse> {
        let f = crate::prune_filter::PruneFilter::parse(filters, &["all"])?;
        let used = self.volumes_in_use()?;
        let mut deleted = Vec::new();
        let mut reclaimed = 0i64;
        for (_, v) in self.meta.kv_list::<VolumeRec>(NS)? {
            if used.contains_key(&v.name)
                || (!v.anonymous && !all)
                || !f.allows(&v.created_at, &v.labels)
            {
                continue;
            }
            reclaimed += pier_snapshot::usage(&self.volume_dir(&v.name)).unwrap_or(0) as i64;
            self.remove_volume(&v.name, true)?;
            deleted.push(v.name);
        }
        Ok(VolumePruneResponse {
            volumes_deleted: Some(deleted),
            space_reclaimed: Some(reclaimed),
        })
    }

    /// Resolves a new container's mounts: binds, named and anonymous volumes,
    /// `--mount`, `--volumes-from`, tmpfs, and the image's VOLUMEs.
    pub(crate) fn resolve_mounts(&self, rec: &ContainerRecord) -> Result<Vec<MountRec>> {
        let h = &rec.host_config;
        let mut mounts: Vec<MountRec> = Vec::new();
        let add = |m: MountRec, mounts: &mut Vec<MountRec>| -> Result<()> {
            if mounts.iter().any(|x| x.destination == m.destination) {
                return Err(EngineError::InvalidArgument(format!(
                    "Duplicate mount point: {}",
                    m.destination
                )));
            }
            mounts.push(m);
            Ok(())
        };
        for from in h.volumes_from.iter().flatten() {
            let (name, mode) = from.split_once(':').unwrap_or((from, ""));
            let other = self.find_container(name)?;
            for m in other.mounts.iter().filter(|m| m.kind != "tmpfs") {
                let mut m = m.clone();
                m.copy_up = false;
                if mode == "ro" {
                    m.rw = false;
                }
                add(m, &mut mounts)?;
            }
        }
        for b in h.binds.iter().flatten() {
            let parts: Vec<&str> = b.split(':').collect();
            let (src, dst, opts) = match parts.as_slice() {
                [d] => ("", *d, ""),
                [s, d] => (*s, *d, ""),
                [s, d, o] => (*s, *d, *o),
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid volume specification: '{b}'"
                    )))
                }
            };
            let dst = clean_dest(dst)?;
            let rw = !opts.split(',').any(|o| o == "ro");
            let propagation = opts
                .split(',')
                .find(|o| {
                    matches!(
                        *o,
                        "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"
                    )
                })
                .unwrap_or("")
                .to_string();
            let m = if src.starts_with('/') {
                MountRec {
                    kind: "bind".into(),
                    name: String::new(),
                    source: src.to_string(),
                    destination: dst,
                    rw,
                    options: String::new(),
                    copy_up: false,
                    propagation,
                }
            } else {
                let anonymous = src.is_empty();
                let name = if anonymous {
                    random_id()
                } else {
                    src.to_string()
                };
                let fresh = self.meta.kv_get::<VolumeRec>(NS, &name)?.is_none();
                self.ensure_volume(&name, anonymous, HashMap::new(), HashMap::new())?;
                MountRec {
                    kind: "volume".into(),
                    source: self.volume_dir(&name).display().to_string(),
                    name,
                    destination: dst,
                    rw,
                    options: String::new(),
                    copy_up: fresh && !opts.split(',').any(|o| o == "nocopy"),
                    propagation: String::new(),
                }
            };
            mounts.retain(|x| x.destination != m.destination);
            add(m, &mut mounts)?;
        }
        for m in h.mounts.iter().flatten() {
            let dst = clean_dest(m.target.as_deref().unwrap_or(""))?;
            let rw = !m.read_only.unwrap_or(false);
            let rec = match m.typ {
                Some(MountTypeEnum::BIND) => {
                    let src = m.source.clone().unwrap_or_default();
                    if !Path::new(&src).exists() {
                        return Err(EngineError::InvalidArgument(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                        )));
                    }
                    MountRec {
                        kind: "bind".into(),
                        name: String::new(),
                        source: src,
                        destination: dst,
                        rw,
                        options: String::new(),
                        copy_up: false,
                        propagation: String::new(),
                    }
                }
                Some(MountTypeEnum::VOLUME) | None => {
                    let src = m.source.clone().unwrap_or_default();
                    let anonymous = src.is_empty();
                    let name = if anonymous { random_id() } else { src };
                    let fresh = self.meta.kv_get::<VolumeRec>(NS, &name)?.is_none();
                    let labels = m
                        .volume_options
                        .as_ref()
                        .and_then(|o| o.labels.clone())
                        .unwrap_or_default();
                    let driver = m
                        .volume_options
                        .as_ref()
                        .and_then(|o| o.driver_config.as_ref());
                    if let Some(d) = driver
                        .and_then(|d| d.name.as_deref())
                        .filter(|d| !d.is_empty() && *d != "local")
                    {
                        return Err(EngineError::NotFound(format!(
                            "error looking up volume plugin {d}: plugin \"{d}\" not found"
                        )));
                    }
                    let options = driver.and_then(|d| d.options.clone()).unwrap_or_default();
                    self.ensure_volume(&name, anonymous, labels, options)?;
                    let nocopy = m
                        .volume_options
                        .as_ref()
                        .and_then(|o| o.no_copy)
                        .unwrap_or(false);
                    MountRec {
                        kind: "volume".into(),
                        source: self.volume_dir(&name).display().to_string(),
                        name,
                        destination: dst,
                        rw,
                        options: String::new(),
                        copy_up: fresh && !nocopy,
                        propagation: String::new(),
                    }
                }
                Some(MountTypeEnum::TMPFS) => {
                    let mut opts = Vec::new();
                    if let Some(t) = &m.tmpfs_options {
                        if let Some(s) = t.size_bytes {
                            opts.push(format!("size={s}"));
                        }
                        if let Some(mode) = t.mode {
                            opts.push(format!("mode={mode:o}"));
                        }
                    }
                    MountRec {
                        kind: "tmpfs".into(),
                        name: String::new(),
                        source: String::new(),
                        destination: dst,
                        rw,
                        options: opts.join(","),
                        copy_up: false,
                        propagation: String::new(),
                    }
                }
                Some(other) => {
                    return Err(EngineError::InvalidArgument(format!(
                        "mount type {other} is not supported"
                    )))
                }
            };
            add(rec, &mut mounts)?;
        }
        let tmpfs_dests: Vec<String> = h.tmpfs.iter().flatten().map(|(d, _)| d.clone()).collect();
        for v in rec.config.volumes.iter().flatten() {
            let dst = clean_dest(v)?;
            if mounts.iter().any(|m| m.destination == dst) || tmpfs_dests.contains(&dst) {
                continue;
            }
            let name = random_id();
            self.ensure_volume(&name, true, HashMap::new(), HashMap::new())?;
            mounts.push(MountRec {
                kind: "volume".into(),
                source: self.volume_dir(&name).display().to_string(),
                name,
                destination: dst,
                rw: true,
                options: String::new(),
                copy_up: true,
                propagation: String::new(),
            });
        }
        Ok(mounts)
    }

    /// Before the first start: fills empty new volumes with the image's
    /// content at their destination, as Docker does. Blocking.
    pub(crate) fn copy_up_volumes(&self, rec: &mut ContainerRecord, rootfs: &Path) -> Result<bool> {
        let mut changed = false;
        for m in rec.mounts.iter_mut().filter(|m| m.copy_up) {
            m.copy_up = false;
            changed = true;
            let src = crate::fsops::resolve_in_root(rootfs, &m.destination)?;
            let dst = PathBuf::from(&m.source);
            let empty = std::fs::read_dir(&dst)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if src.is_dir() && empty {
                let out = std::process::Command::new("cp")
                    .arg("-a")
                    .arg(format!("{}/.", src.display()))
                    .arg(&dst)
                    .output()
                    .map_err(|e| {
                        EngineError::Internal(format!("copying into volume {}: {e}", m.name))
                    })?;
                if !out.status.success() {
                    return Err(EngineError::Internal(format!(
                        "copying into volume {}: {}",
                        m.name,
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
            }
        }
        Ok(changed)
    }

    /// After `rm -v`: removes the container's anonymous volumes.
    pub(crate) fn remove_anonymous_volumes(&self, rec: &ContainerRecord) {
        for m in rec.mounts.iter().filter(|m| m.kind == "volume") {
            if let Ok(Some(v)) = self.meta.kv_get::<VolumeRec>(NS, &m.name) {
                if v.anonymous {
                    let _ = self.remove_volume(&m.name, false);
                }
            }
        }
    }
}

/// The container's `Mounts` as Docker reports them.
pub(crate) fn mount_points(rec: &ContainerRecord) -> Vec<MountPoint> {
    rec.mounts
        .iter()
        .filter(|m| m.kind != "tmpfs")
        .map(|m| MountPoint {
            typ: Some(m.kind.clone()),
            name: (m.kind == "volume").then(|| m.name.clone()),
            source: Some(m.source.clone()),
            destination: Some(m.destination.clone()),
            driver: (m.kind == "volume").then(|| "local".to_string()),
            mode: Some(if m.rw { String::new() } else { "ro".into() }),
            rw: Some(m.rw),
            propagation: Some(match (m.kind.as_str(), m.propagation.as_str()) {
                ("bind", "") => "rprivate".into(),
                (_, p) => p.to_string(),
            }),
        })
        .collect()
}

/// Bind mounts and tmpfs mounts for the OCI spec.
pub(crate) fn spec_mounts(
    rec: &ContainerRecord,
) -> Result<(
    Vec<pier_runtime::spec::BindMount>,
    Vec<pier_runtime::spec::TmpfsMount>,
)> {
    let mut binds = Vec::new();
    let mut tmpfs = Vec::new();
    for m in &rec.mounts {
        if m.kind == "tmpfs" {
            tmpfs.push(pier_runtime::spec::TmpfsMount {
                destination: m.destination.clone(),
                options: m
                    .options
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(str::to_string)
                    .collect(),
            });
            continue;
        }
        let src = PathBuf::from(&m.source);
        if m.kind == "bind" && !src.exists() {
            // `-v /host/dir:/dst` creates a missing host directory, as Docker does.
            std::fs::create_dir_all(&src).map_err(|e| EngineError::io(&src, e))?;
        }
        binds.push(pier_runtime::spec::BindMount {
            source: src,
            destination: m.destination.clone(),
            readonly: !m.rw,
        });
    }
    Ok((binds, tmpfs))
}
