//! The volume store: named and anonymous volumes, their records and their
//! directories under `<data-root>/volumes`. It owns what it needs (the
//! metadata handle, the event sink, its root) so that its methods reach no
//! other part of the engine; containers come in only as the mounts their
//! records name, to tell which volumes are in use.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use pier_api::models::{EventMessageTypeEnum, Volume, VolumePruneResponse};
use pier_metadata::Metadata;
use serde::{Deserialize, Serialize};

use crate::events::Events;
use crate::records::ContainerRecord;
use crate::util::{now_rfc3339, random_id};
use crate::{EngineError, Result};

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

/// Volumes: `/volumes/...` of the API, and the volumes containers mount.
pub struct VolumeService {
    meta: Arc<Metadata>,
    events: Arc<Events>,
    /// `<data-root>/volumes`: one directory per volume, its data in `_data`.
    root: PathBuf,
}

impl VolumeService {
    pub(crate) fn new(meta: Arc<Metadata>, events: Arc<Events>, root: PathBuf) -> Self {
        VolumeService { meta, events, root }
    }

    /// Where the volume's data is (what containers mount).
    pub(crate) fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    fn describe(&self, v: &VolumeRec) -> Volume {
        Volume {
            name: v.name.clone(),
            driver: "local".into(),
            mountpoint: self.dir(&v.name).display().to_string(),
            created_at: Some(v.created_at.clone()),
            labels: v.labels.clone(),
            scope: Some(pier_api::models::VolumeScopeEnum::LOCAL),
            options: v.options.clone(),
            ..Default::default()
        }
    }

    /// `POST /volumes/create` (idempotent for an existing name, like Docker).
    pub fn create(
        &self,
        name: Option<&str>,
        labels: HashMap<String, String>,
        options: HashMap<String, String>,
    ) -> Result<Volume> {
        let (name, anonymous) = match name.filter(|n| !n.is_empty()) {
            Some(n) => (n.to_string(), false),
            None => (random_id(), true),
        };
        Ok(self.describe(&self.ensure(&name, anonymous, labels, options)?))
    }

    /// The volume's record, made (with its directory) if it does not exist.
    pub(crate) fn ensure(
        &self,
        name: &str,
        anonymous: bool,
        labels: HashMap<String, String>,
        options: HashMap<String, String>,
    ) -> Result<VolumeRec> {
        validate_volume_name(name)?;
        if let Some(v) = self.get(name)? {
            return Ok(v);
        }
        crate::volume_mount::check_options(&options)?;
        let dir = self.dir(name);
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::from_io(&dir, e))?;
        let v = VolumeRec {
            name: name.to_string(),
            created_at: now_rfc3339(),
            labels,
            options,
            anonymous,
        };
        self.meta.kv_put(NS, name, &v)?;
        self.events.emit(
            EventMessageTypeEnum::VOLUME,
            "create",
            name,
            HashMap::from([("driver".to_string(), "local".to_string())]),
        );
        Ok(v)
    }

    /// Every volume's record.
    pub(crate) fn recs(&self) -> Result<Vec<VolumeRec>> {
        Ok(self
            .meta
            .kv_list::<VolumeRec>(NS)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    pub(crate) fn get(&self, name: &str) -> Result<Option<VolumeRec>> {
        Ok(self.meta.kv_get::<VolumeRec>(NS, name)?)
    }

    /// `GET /volumes/{name}`.
    pub fn inspect(&self, name: &str) -> Result<Volume> {
        let v = self
            .get(name)?
            .ok_or_else(|| EngineError::not_found(format!("get {name}: no such volume")))?;
        Ok(self.describe(&v))
    }

    /// `GET /volumes`.
    pub fn list(&self, filters: &HashMap<String, Vec<String>>) -> Result<Vec<Volume>> {
        crate::util::check_filter_keys(filters, &["name", "dangling", "label", "driver"])?;
        let used = self.in_use()?;
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
                out.push(self.describe(&v));
            }
        }
        Ok(out)
    }

    /// Volume name -> IDs of the containers that mount it.
    fn in_use(&self) -> Result<HashMap<String, Vec<String>>> {
        let mut used: HashMap<String, Vec<String>> = HashMap::new();
        for c in self.meta.containers::<ContainerRecord>()? {
            for m in c.mounts.iter().filter(|m| m.kind == "volume") {
                used.entry(m.name.clone()).or_default().push(c.id.clone());
            }
        }
        Ok(used)
    }

    /// Every volume with its `UsageData` (`GET /system/df`): bytes under it
    /// (-1 when they cannot be read) and how many containers mount it. Walks
    /// the volumes' files: call it off the async workers.
    pub(crate) fn with_usage(&self) -> Result<Vec<Volume>> {
        let used = self.in_use()?;
        let mut volumes = self.list(&HashMap::new())?;
        for v in &mut volumes {
            let size = pier_snapshot::usage(&self.dir(&v.name))
                .ok()
                .and_then(|s| i64::try_from(s).ok())
                .unwrap_or(-1);
            let ref_count = used.get(&v.name).map_or(0, Vec::len) as i64;
            v.usage_data = Some(pier_api::models::VolumeUsageData { size, ref_count });
        }
        Ok(volumes)
    }

    /// `DELETE /volumes/{name}`.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        if self.get(name)?.is_none() {
            if force {
                return Ok(());
            }
            return Err(EngineError::not_found(format!(
                "get {name}: no such volume"
            )));
        }
        if let Some(users) = self.in_use()?.get(name) {
            return Err(EngineError::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        // A device still mounted there (a daemon that died with it) is the
        // user's data: unmount it rather than delete what it holds.
        if crate::mountinfo::unmount_dir(&self.dir(name)) {
            return Err(EngineError::conflict(format!(
                "remove {name}: {} is still mounted",
                self.dir(name).display()
            )));
        }
        // A volume may hold any amount of data: renamed away now, deleted in
        // the background (trash.rs), into the data root's trash.
        let dir = self.root.join(name);
        let data_root = self.root.parent().unwrap_or(&self.root);
        crate::trash::discard_dir(data_root, &dir)?;
        self.meta.kv_delete(NS, name)?;
        self.events.emit(
            EventMessageTypeEnum::VOLUME,
            "destroy",
            name,
            HashMap::new(),
        );
        Ok(())
    }

    /// `POST /volumes/prune`: unused anonymous volumes (all unused with
    /// `all`) that the filters allow.
    pub fn prune(
        &self,
        all: bool,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<VolumePruneResponse> {
        let f = crate::prune_filter::PruneFilter::parse(filters, &["all"])?;
        let used = self.in_use()?;
        let mut deleted = Vec::new();
        let mut reclaimed = 0i64;
        for (_, v) in self.meta.kv_list::<VolumeRec>(NS)? {
            if used.contains_key(&v.name)
                || (!v.anonymous && !all)
                || !f.allows(&v.created_at, &v.labels)
            {
                continue;
            }
            reclaimed += pier_snapshot::usage(&self.dir(&v.name)).unwrap_or(0) as i64;
            self.remove(&v.name, true)?;
            deleted.push(v.name);
        }
        Ok(VolumePruneResponse {
            volumes_deleted: Some(deleted),
            space_reclaimed: Some(reclaimed),
        })
    }
}

/// A volume is a directory named after it, so a longer name cannot exist.
const MAX_VOLUME_NAME: usize = 255;

fn validate_volume_name(n: &str) -> Result<()> {
    if n.len() > MAX_VOLUME_NAME {
        return Err(EngineError::invalid_argument(format!(
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
        Err(EngineError::invalid_argument(format!(
            "create {n}: \"{n}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(dir: &std::path::Path) -> (VolumeService, Arc<Events>) {
        let meta = Arc::new(Metadata::open(&dir.join("meta.db")).unwrap());
        let events = Arc::new(Events::new());
        let s = VolumeService::new(meta, events.clone(), dir.join("volumes"));
        (s, events)
    }

    #[test]
    fn volumes_live_in_their_own_directories_and_records() {
        let tmp = tempfile::tempdir().unwrap();
        let (s, events) = service(tmp.path());
        let labels = HashMap::from([("tier".to_string(), "db".to_string())]);
        let v = s
            .create(Some("data"), labels.clone(), HashMap::new())
            .unwrap();
        let dir = tmp.path().join("volumes/data/_data");
        assert_eq!(v.mountpoint, dir.display().to_string());
        assert!(dir.is_dir());
        // Creating it again is no error and keeps the first labels.
        let again = s
            .create(Some("data"), HashMap::new(), HashMap::new())
            .unwrap();
        assert_eq!((again.labels, again.created_at), (labels, v.created_at));

        let anon = s.create(None, HashMap::new(), HashMap::new()).unwrap();
        assert_eq!(anon.name.len(), 64);
        let by_name = HashMap::from([("name".to_string(), vec!["dat".to_string()])]);
        let names: Vec<String> = s
            .list(&by_name)
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, ["data"]);

        // Prune without `all` takes the anonymous volume only.
        let pruned = s.prune(false, &HashMap::new()).unwrap();
        assert_eq!(pruned.volumes_deleted, Some(vec![anon.name.clone()]));
        assert!(s.inspect("data").is_ok());

        s.remove("data", false).unwrap();
        assert!(!tmp.path().join("volumes/data").exists());
        assert!(matches!(s.inspect("data"), Err(e) if e.kind() == crate::ErrorKind::NotFound));
        assert!(matches!(
            s.remove("data", false),
            Err(e) if e.kind() == crate::ErrorKind::NotFound
        ));
        s.remove("data", true).unwrap();

        let (past, _) = events.subscribe();
        let actions: Vec<String> = past.into_iter().filter_map(|e| e.action).collect();
        assert_eq!(actions, ["create", "create", "destroy", "destroy"]);
    }

    #[test]
    fn names_that_cannot_be_directories_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (s, _) = service(tmp.path());
        for bad in ["a", "../x", "a/b", &"v".repeat(256)] {
            assert!(
                matches!(
                    s.create(Some(bad), HashMap::new(), HashMap::new()),
                    Err(e) if e.kind() == crate::ErrorKind::InvalidArgument
                ),
                "{bad}"
            );
        }
        assert!(!tmp.path().join("x").exists());
    }
}
