//! Options of Docker's `local` volume driver (`type`, `device`, `o`): such a
//! volume is a mount(2) of `device` on the volume's `_data` directory, made
//! when a container using it starts and undone when the last one stops, as
//! moby's `volume/local` does. Without options a volume is a plain directory.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::mountinfo::{is_mounted, unmount_dir};
use crate::records::ContainerRecord;
use crate::volumes::VolumeRec;
use crate::{Engine, EngineError, Result};

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::invalid_argument(msg.into())
}

/// Containers that mounted each volume in this daemon's life. A restarted
/// daemon has forgotten them; the records of running containers cover that.
static USERS: Mutex<Option<HashMap<String, HashSet<String>>>> = Mutex::new(None);

/// moby's `validateOpts`: only `type`, `device`, `o` (and `size`, which needs
/// quota support Pier does not have); `type` and `device` go together, and
/// `o` needs both.
pub(crate) fn check_options(opts: &HashMap<String, String>) -> Result<()> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o" | "size") {
            return Err(bad(format!("invalid option: {k:?}")));
        }
    }
    if opts.contains_key("size") {
        return Err(bad("quota size requested but no quota support"));
    }
    let required: [(&str, &[&str]); 3] = [
        ("device", &["type"]),
        ("type", &["device"]),
        ("o", &["device", "type"]),
    ];
    for (opt, needs) in required {
        if opts.contains_key(opt)
            && let Some(missing) = needs.iter().find(|n| !opts.contains_key(**n))
        {
            return Err(bad(format!("missing required option: {missing:?}")));
        }
    }
    Ok(())
}

fn mounted_kind(v: &VolumeRec) -> bool {
    v.options.contains_key("device")
}

impl Engine {
    fn option_volumes(&self, rec: &ContainerRecord) -> Vec<VolumeRec> {
        rec.mounts
            .iter()
            .filter(|m| m.kind == "volume")
            .filter_map(|m| self.volume_rec(&m.name))
            .filter(mounted_kind)
            .collect()
    }

    /// Mounts the option volumes `rec` uses that are not mounted yet. Blocking.
    pub(crate) fn mount_volumes(&self, rec: &ContainerRecord) -> Result<()> {
        let vols = self.option_volumes(rec);
        if vols.is_empty() {
            return Ok(());
        }
        let mut users = USERS.lock().unwrap_or_else(|e| e.into_inner());
        let users = users.get_or_insert_with(HashMap::new);
        for v in vols {
            let dir = self.volume_dir(&v.name);
            if !is_mounted(&dir) {
                let o = |k: &str| v.options.get(k).map(String::as_str).unwrap_or("");
                pier_sys::mount_with_options(o("device"), &dir, o("type"), o("o")).map_err(
                    |e| {
                        EngineError::internal(format!(
                            "error while mounting volume '{}': failed to mount local volume: {e}",
                            dir.display()
                        ))
                    },
                )?;
            }
            users.entry(v.name).or_default().insert(rec.id.clone());
        }
        Ok(())
    }

    /// Unmounts the option volumes of `rec` that no other container uses
    /// any more (called when it stops or fails to start).
    pub(crate) fn release_volumes(&self, rec: &ContainerRecord) {
        let vols = self.option_volumes(rec);
        if vols.is_empty() {
            return;
        }
        let others: Vec<ContainerRecord> = self
            .meta
            .containers::<ContainerRecord>()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.id != rec.id && matches!(c.state.status.as_str(), "running" | "paused"))
            .collect();
        let mut users = USERS.lock().unwrap_or_else(|e| e.into_inner());
        let users = users.get_or_insert_with(HashMap::new);
        for v in vols {
            let set = users.entry(v.name.clone()).or_default();
            set.remove(&rec.id);
            let in_use = !set.is_empty()
                || others.iter().any(|c| {
                    c.mounts
                        .iter()
                        .any(|m| m.kind == "volume" && m.name == v.name)
                });
            if in_use {
                continue;
            }
            users.remove(&v.name);
            if self.unmount_volume(&v.name) {
                tracing::warn!(volume = %v.name, "still mounted after its last user stopped");
            }
        }
    }

    /// At daemon start: unmounts option volumes whose users all stopped
    /// while no daemon watched.
    pub(crate) fn sweep_volume_mounts(&self, live: &HashSet<String>, recs: &[ContainerRecord]) {
        let used: HashSet<&str> = recs
            .iter()
            .filter(|r| live.contains(&r.id))
            .flat_map(|r| r.mounts.iter().filter(|m| m.kind == "volume"))
            .map(|m| m.name.as_str())
            .collect();
        for v in self.volume_recs() {
            if mounted_kind(&v) && !used.contains(v.name.as_str()) {
                self.unmount_volume(&v.name);
            }
        }
    }

    /// Unmounts a volume's `_data` if something is mounted there; says
    /// whether something still is.
    pub(crate) fn unmount_volume(&self, name: &str) -> bool {
        unmount_dir(&self.volume_dir(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_are_checked_like_the_local_driver() {
        let err = |kv: &[(&str, &str)]| check_options(&opts(kv)).unwrap_err().to_string();
        assert!(check_options(&opts(&[])).is_ok());
        assert!(check_options(&opts(&[("type", "none"), ("o", "bind"), ("device", "/x")])).is_ok());
        assert_eq!(err(&[("foo", "bar")]), "invalid option: \"foo\"");
        assert_eq!(
            err(&[("type", "tmpfs")]),
            "missing required option: \"device\""
        );
        assert_eq!(
            err(&[("device", "tmpfs")]),
            "missing required option: \"type\""
        );
        assert_eq!(
            err(&[("o", "size=1m")]),
            "missing required option: \"device\""
        );
        assert_eq!(
            err(&[("size", "1g")]),
            "quota size requested but no quota support"
        );
    }
}
