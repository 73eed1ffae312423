//! Named and anonymous volumes, bind mounts and tmpfs mounts of containers.
//!
//! At create, `-v`, `--mount`, `--volumes-from` and the image's VOLUMEs are
//! resolved into [`MountRec`](crate::records::MountRec)s stored with the container; at start they
//! become bind mounts of the OCI spec. The volumes themselves are
//! [`VolumeService`]'s.

mod service;

pub(crate) use service::VolumeRec;
pub use service::VolumeService;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pier_api::models::{MountPoint, MountType as MountTypeEnum};

use crate::records::{ContainerRecord, MountRec};
use crate::util::random_id;
use crate::{Engine, EngineError, Result};

fn clean_dest(d: &str) -> Result<String> {
    if !d.starts_with('/') {
        return Err(EngineError::invalid_argument(format!(
            "invalid mount config: invalid mount path: '{d}' mount path must be absolute"
        )));
    }
    let p: PathBuf = Path::new(d).components().collect();
    Ok(p.display().to_string())
}

impl Engine {
    pub(crate) fn volume_dir(&self, name: &str) -> PathBuf {
        self.volumes.dir(name)
    }

    pub(crate) fn volume_recs(&self) -> Vec<VolumeRec> {
        self.volumes.recs().unwrap_or_default()
    }

    pub(crate) fn volume_rec(&self, name: &str) -> Option<VolumeRec> {
        self.volumes.get(name).ok().flatten()
    }

    /// Resolves a new container's mounts: binds, named and anonymous volumes,
    /// `--mount`, `--volumes-from`, tmpfs, and the image's VOLUMEs.
    pub(crate) fn resolve_mounts(&self, rec: &ContainerRecord) -> Result<Vec<MountRec>> {
        let h = &rec.host_config;
        let mut mounts: Vec<MountRec> = Vec::new();
        let add = |m: MountRec, mounts: &mut Vec<MountRec>| -> Result<()> {
            if mounts.iter().any(|x| x.destination == m.destination) {
                return Err(EngineError::invalid_argument(format!(
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
                    return Err(EngineError::invalid_argument(format!(
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
                    subpath: String::new(),
                }
            } else {
                let anonymous = src.is_empty();
                let name = if anonymous {
                    random_id()
                } else {
                    src.to_string()
                };
                let fresh = self.volumes.get(&name)?.is_none();
                self.volumes
                    .ensure(&name, anonymous, HashMap::new(), HashMap::new())?;
                MountRec {
                    kind: "volume".into(),
                    source: self.volumes.dir(&name).display().to_string(),
                    name,
                    destination: dst,
                    rw,
                    options: String::new(),
                    copy_up: fresh && !opts.split(',').any(|o| o == "nocopy"),
                    propagation: String::new(),
                    subpath: String::new(),
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
                        return Err(EngineError::invalid_argument(format!(
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
                        subpath: String::new(),
                    }
                }
                Some(MountTypeEnum::VOLUME) | None => {
                    let src = m.source.clone().unwrap_or_default();
                    let anonymous = src.is_empty();
                    let name = if anonymous { random_id() } else { src };
                    let fresh = self.volumes.get(&name)?.is_none();
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
                        return Err(EngineError::not_found(format!(
                            "error looking up volume plugin {d}: plugin \"{d}\" not found"
                        )));
                    }
                    let subpath = m
                        .volume_options
                        .as_ref()
                        .and_then(|o| o.subpath.clone())
                        .unwrap_or_default();
                    if !subpath.is_empty() {
                        crate::volume_subpath::check(&subpath)?;
                    }
                    let options = driver.and_then(|d| d.options.clone()).unwrap_or_default();
                    self.volumes.ensure(&name, anonymous, labels, options)?;
                    let nocopy = m
                        .volume_options
                        .as_ref()
                        .and_then(|o| o.no_copy)
                        .unwrap_or(false);
                    MountRec {
                        kind: "volume".into(),
                        source: self.volumes.dir(&name).display().to_string(),
                        name,
                        destination: dst,
                        rw,
                        options: String::new(),
                        // A subpath exists before the container does: as in
                        // Docker, the image's content fills it while it is empty.
                        copy_up: (fresh || !subpath.is_empty()) && !nocopy,
                        propagation: String::new(),
                        subpath,
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
                        // API 1.46: flags as `[["noexec"]]`, values as `[["uid", "1000"]]`.
                        for o in t.options.iter().flatten() {
                            match o.as_slice() {
                                // The options travel comma-joined.
                                parts if parts.iter().any(|p| p.contains(',')) => {
                                    return Err(EngineError::invalid_argument(format!(
                                        "invalid tmpfs option {o:?}: no commas allowed"
                                    )))
                                }
                                [flag] => opts.push(flag.clone()),
                                [key, value] => opts.push(format!("{key}={value}")),
                                _ => {
                                    return Err(EngineError::invalid_argument(format!(
                                        "invalid tmpfs option {o:?}: expected a flag or a key and a value"
                                    )))
                                }
                            }
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
                        subpath: String::new(),
                    }
                }
                Some(other) => {
                    return Err(EngineError::invalid_argument(format!(
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
            self.volumes
                .ensure(&name, true, HashMap::new(), HashMap::new())?;
            mounts.push(MountRec {
                kind: "volume".into(),
                source: self.volumes.dir(&name).display().to_string(),
                name,
                destination: dst,
                rw: true,
                options: String::new(),
                copy_up: true,
                propagation: String::new(),
                subpath: String::new(),
            });
        }
        Ok(mounts)
    }

    /// Before the first start: fills empty new volumes with the image's
    /// content at their destination, as Docker does. Blocking.
    // Part of prepare_bundle, which runs on a blocking thread.
    #[allow(clippy::disallowed_methods)]
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
                        EngineError::internal(format!("copying into volume {}", m.name))
                            .with_source(e)
                    })?;
                if !out.status.success() {
                    return Err(EngineError::internal(format!(
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
            if let Ok(Some(v)) = self.volumes.get(&m.name)
                && v.anonymous
            {
                let _ = self.volumes.remove(&m.name, false);
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
            std::fs::create_dir_all(&src).map_err(|e| EngineError::from_io(&src, e))?;
        }
        binds.push(pier_runtime::spec::BindMount {
            source: src,
            destination: m.destination.clone(),
            readonly: !m.rw,
        });
    }
    Ok((binds, tmpfs))
}
