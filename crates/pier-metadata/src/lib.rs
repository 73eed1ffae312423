//! The daemon's metadata database (SQLite in WAL mode).
//!
//! Records are stored as JSON documents keyed by their identity, with the few
//! columns that queries need (names, references) kept as real columns with
//! constraints, so that uniqueness (container names, tags) is enforced by the
//! database inside a transaction rather than by the caller.

mod reserve;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{de::DeserializeOwned, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("metadata: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("metadata record {key}: {source}")]
    Decode {
        key: String,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Conflict(String),
}

pub type Result<T> = std::result::Result<T, MetaError>;

pub use reserve::RESERVE_BYTES;

impl MetaError {
    /// SQLite found no room on the disk for the write.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self,
            MetaError::Sql(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DiskFull
        )
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS containers_image ON containers(image_id);
CREATE TABLE IF NOT EXISTS kv (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (ns, key)
);
";

/// A handle on the metadata database. Cheap to share behind an `Arc`.
pub struct Metadata {
    conn: Mutex<Connection>,
    /// Space given back when a write finds the disk full (reserve.rs).
    reserve: reserve::Reserve,
    /// Container records whose update found the disk full even after the
    /// reserve went, by ID: (name, JSON). Readers see them at once; they are
    /// written by [`Metadata::maintain`] when space returns.
    deferred: Mutex<HashMap<String, (String, String)>>,
}

fn encode<T: Serialize>(v: &T) -> String {
    // Serializing our own plain records cannot fail (no maps with non-string keys).
    serde_json::to_string(v).expect("metadata record serializes")
}

fn decode<T: DeserializeOwned>(key: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|source| MetaError::Decode {
        key: key.to_string(),
        source,
    })
}

impl Metadata {
    /// Opens (creating if needed) the database at `path`, with a reserve of
    /// [`RESERVE_BYTES`] beside it (`.reserve`).
    pub fn open(path: &Path) -> Result<Self> {
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::open_with_reserve(path, RESERVE_BYTES, &dir.join(".reserve"))
    }

    /// [`Metadata::open`] with a chosen reserve.
    pub fn open_with_reserve(path: &Path, reserve_bytes: u64, reserve: &Path) -> Result<Self> {
        let open_err = |source| MetaError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
        )
        .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
            reserve: reserve::Reserve::open(reserve.to_path_buf(), reserve_bytes),
            deferred: Mutex::new(HashMap::new()),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Connection) -> Result<R>) -> Result<R> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn)
    }

    /// Runs the write `f`; when it finds the disk full, it runs again once the
    /// reserve is given back. Only for writes that free space or record what
    /// happened (deletions, exits): growth must not eat the reserve.
    fn with_room<R>(&self, mut f: impl FnMut(&mut Connection) -> Result<R>) -> Result<R> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        match f(&mut conn) {
            Err(e) if e.is_disk_full() && self.reserve.release() => f(&mut conn),
            r => r,
        }
    }

    /// Whether the reserve is held (false after a full disk, until
    /// [`Metadata::maintain`] finds room again).
    pub fn reserve_held(&self) -> bool {
        self.reserve.held()
    }

    /// How many container updates wait for disk space.
    pub fn deferred_count(&self) -> usize {
        self.deferred().len()
    }

    fn deferred(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, String)>> {
        self.deferred.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Catches up after a full disk: writes deferred container updates and
    /// takes the reserve again when there is room. Cheap when nothing waits.
    pub fn maintain(&self) {
        let pending: Vec<(String, (String, String))> = self
            .deferred()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, (name, data)) in pending {
            let r = self.write_container(true, &id, &name, &data);
            match r {
                Ok(()) => {
                    let mut d = self.deferred();
                    // Unless a newer deferral replaced it meanwhile.
                    if d.get(&id).is_some_and(|(_, v)| *v == data) {
                        d.remove(&id);
                    }
                }
                Err(e) if e.is_disk_full() => break,
                Err(e) => {
                    tracing::warn!("writing deferred record of container {id}: {e}");
                    self.deferred().remove(&id);
                }
            }
        }
        if self.deferred().is_empty() {
            self.reserve.restore();
        }
    }

    // ---- images ----------------------------------------------------------

    pub fn put_image<T: Serialize>(&self, id: &str, image: &T) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO images(id, data) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                params![id, encode(image)],
            )?;
            Ok(())
        })
    }

    pub fn image<T: DeserializeOwned>(&self, id: &str) -> Result<Option<T>> {
        self.with(|c| {
            let s: Option<String> = c
                .query_row("SELECT data FROM images WHERE id = ?1", [id], |r| r.get(0))
                .optional()?;
            s.map(|s| decode(id, &s)).transpose()
        })
    }

    /// All image IDs starting with `prefix` (for short-ID lookups).
    pub fn image_ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT id FROM images WHERE id >= ?1 AND id < ?2")?;
            let rows = st.query_map(params![prefix, upper_bound(prefix)], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }

    pub fn images<T: DeserializeOwned>(&self) -> Result<Vec<(String, T)>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT id, data FROM images")?;
            let rows =
                st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, data) = row?;
                let v = decode(&id, &data)?;
                out.push((id, v));
            }
            Ok(out)
        })
    }

    /// Deletes an image and every tag pointing at it, in one transaction.
    pub fn delete_image(&self, id: &str) -> Result<()> {
        self.with_room(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM tags WHERE image_id = ?1", [id])?;
            tx.execute("DELETE FROM images WHERE id = ?1", [id])?;
            tx.commit()?;
            Ok(())
        })
    }

    // ---- tags ------------------------------------------------------------

    /// Points `name` at `image_id`; returns the image it pointed at before.
    pub fn set_tag(&self, name: &str, image_id: &str) -> Result<Option<String>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let old: Option<String> = tx
                .query_row("SELECT image_id FROM tags WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()?;
            tx.execute(
                "INSERT INTO tags(name, image_id) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                params![name, image_id],
            )?;
            tx.commit()?;
            Ok(old.filter(|o| o != image_id))
        })
    }

    pub fn tag(&self, name: &str) -> Result<Option<String>> {
        self.with(|c| {
            Ok(
                c.query_row("SELECT image_id FROM tags WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        })
    }

    pub fn delete_tag(&self, name: &str) -> Result<bool> {
        self.with_room(|c| Ok(c.execute("DELETE FROM tags WHERE name = ?1", [name])? > 0))
    }

    pub fn tags_of(&self, image_id: &str) -> Result<Vec<String>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT name FROM tags WHERE image_id = ?1 ORDER BY name")?;
            let rows = st.query_map([image_id], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }

    /// Every (tag, image id) pair.
    pub fn all_tags(&self) -> Result<Vec<(String, String)>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT name, image_id FROM tags ORDER BY name")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }

    // ---- containers --------------------------------------------------------

    /// Inserts a new container; fails with `Conflict` when the name is taken.
    pub fn insert_container<T: Serialize>(
        &self,
        id: &str,
        name: &str,
        image_id: &str,
        rec: &T,
    ) -> Result<()> {
        self.with(|c| {
            let r = c.execute(
                "INSERT INTO containers(id, name, image_id, data) VALUES (?1, ?2, ?3, ?4)",
                params![id, name, image_id, encode(rec)],
            );
            match r {
                Ok(_) => Ok(()),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Err(MetaError::Conflict(name.to_string()))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    pub fn update_container<T: Serialize>(&self, id: &str, name: &str, rec: &T) -> Result<()> {
        self.write_container(false, id, name, &encode(rec))
    }

    /// Updates a container row (with the reserve if `room`); the write
    /// supersedes any deferred one.
    fn write_container(&self, room: bool, id: &str, name: &str, data: &str) -> Result<()> {
        let write = |c: &mut Connection| {
            let r = c.execute(
                "UPDATE containers SET name = ?2, data = ?3 WHERE id = ?1",
                params![id, name, data],
            );
            match r {
                Ok(_) => Ok(()),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Err(MetaError::Conflict(name.to_string()))
                }
                Err(e) => Err(e.into()),
            }
        };
        if room {
            self.with_room(write)?;
        } else {
            self.with(write)?;
        }
        self.deferred().remove(id);
        Ok(())
    }

    /// [`Metadata::update_container`] for records that must not be lost to a
    /// full disk (a process exit, a stop asked for): it may spend the reserve,
    /// and when even that does not make room, the record is kept in memory,
    /// served to readers and written by [`Metadata::maintain`]. Returns
    /// whether it was written now. A rename is never deferred (the name index
    /// would not see it).
    pub fn update_container_or_defer<T: Serialize>(
        &self,
        id: &str,
        name: &str,
        rec: &T,
    ) -> Result<bool> {
        let data = encode(rec);
        match self.write_container(true, id, name, &data) {
            Ok(()) => Ok(true),
            Err(e) if e.is_disk_full() => {
                let stored: Option<String> = self.with(|c| {
                    Ok(
                        c.query_row("SELECT name FROM containers WHERE id = ?1", [id], |r| {
                            r.get(0)
                        })
                        .optional()?,
                    )
                })?;
                if stored.as_deref() != Some(name) {
                    return Err(e);
                }
                tracing::warn!(
                    "disk full: the record of container {id} is written when space returns"
                );
                self.deferred()
                    .insert(id.to_string(), (name.to_string(), data));
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub fn container<T: DeserializeOwned>(&self, id: &str) -> Result<Option<T>> {
        if let Some((_, data)) = self.deferred().get(id) {
            return decode(id, data).map(Some);
        }
        self.with(|c| {
            let s: Option<String> = c
                .query_row("SELECT data FROM containers WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            s.map(|s| decode(id, &s)).transpose()
        })
    }

    pub fn container_id_by_name(&self, name: &str) -> Result<Option<String>> {
        self.with(|c| {
            Ok(
                c.query_row("SELECT id FROM containers WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        })
    }

    pub fn container_ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT id FROM containers WHERE id >= ?1 AND id < ?2")?;
            let rows = st.query_map(params![prefix, upper_bound(prefix)], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }

    pub fn containers<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT id, data FROM containers")?;
            let rows =
                st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let deferred = self.deferred();
            let mut out = Vec::new();
            for row in rows {
                let (id, data) = row?;
                let data = deferred.get(&id).map_or(&data, |(_, d)| d);
                out.push(decode(&id, data)?);
            }
            Ok(out)
        })
    }

    /// How many containers use `image_id`.
    pub fn containers_using_image(&self, image_id: &str) -> Result<Vec<String>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT id FROM containers WHERE image_id = ?1")?;
            let rows = st.query_map([image_id], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }

    pub fn delete_container(&self, id: &str) -> Result<bool> {
        let gone =
            self.with_room(|c| Ok(c.execute("DELETE FROM containers WHERE id = ?1", [id])? > 0))?;
        self.deferred().remove(id);
        Ok(gone)
    }

    // ---- generic namespaced records (build cache, volumes, networks) -------

    pub fn kv_put<T: Serialize>(&self, ns: &str, key: &str, v: &T) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO kv(ns, key, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT(ns, key) DO UPDATE SET data = excluded.data",
                params![ns, key, encode(v)],
            )?;
            Ok(())
        })
    }

    pub fn kv_get<T: DeserializeOwned>(&self, ns: &str, key: &str) -> Result<Option<T>> {
        self.with(|c| {
            let s: Option<String> = c
                .query_row(
                    "SELECT data FROM kv WHERE ns = ?1 AND key = ?2",
                    params![ns, key],
                    |r| r.get(0),
                )
                .optional()?;
            s.map(|s| decode(key, &s)).transpose()
        })
    }

    pub fn kv_list<T: DeserializeOwned>(&self, ns: &str) -> Result<Vec<(String, T)>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT key, data FROM kv WHERE ns = ?1 ORDER BY key")?;
            let rows = st.query_map([ns], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (k, d) = row?;
                let v = decode(&k, &d)?;
                out.push((k, v));
            }
            Ok(out)
        })
    }

    pub fn kv_delete(&self, ns: &str, key: &str) -> Result<bool> {
        self.with_room(|c| {
            Ok(c.execute(
                "DELETE FROM kv WHERE ns = ?1 AND key = ?2",
                params![ns, key],
            )? > 0)
        })
    }
}

/// The smallest string greater than every string starting with `prefix`
/// (prefixes here are lowercase hex, so bumping the last byte is enough).
fn upper_bound(prefix: &str) -> String {
    let mut s = prefix.to_string();
    s.push('\u{10FFFF}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Rec {
        n: u32,
    }

    fn db() -> (tempfile::TempDir, Metadata) {
        let d = tempfile::tempdir().unwrap();
        let m = Metadata::open(&d.path().join("meta.db")).unwrap();
        (d, m)
    }

    #[test]
    fn container_names_are_unique() {
        let (_d, m) = db();
        m.insert_container("aaa1", "web", "img", &Rec { n: 1 })
            .unwrap();
        let err = m.insert_container("bbb2", "web", "img", &Rec { n: 2 });
        assert!(matches!(err, Err(MetaError::Conflict(n)) if n == "web"));
        assert_eq!(
            m.container_id_by_name("web").unwrap().as_deref(),
            Some("aaa1")
        );
        assert_eq!(m.container_ids_with_prefix("aa").unwrap(), vec!["aaa1"]);
        assert!(m.container_ids_with_prefix("c").unwrap().is_empty());
        assert!(m.delete_container("aaa1").unwrap());
        assert_eq!(m.container::<Rec>("aaa1").unwrap(), None);
    }

    #[test]
    fn tags_move_and_go_with_their_image() {
        let (_d, m) = db();
        m.put_image("i1", &Rec { n: 1 }).unwrap();
        m.put_image("i2", &Rec { n: 2 }).unwrap();
        assert_eq!(m.set_tag("busybox:latest", "i1").unwrap(), None);
        assert_eq!(
            m.set_tag("busybox:latest", "i2").unwrap().as_deref(),
            Some("i1")
        );
        m.set_tag("b:1", "i2").unwrap();
        assert_eq!(m.tags_of("i2").unwrap(), vec!["b:1", "busybox:latest"]);
        m.delete_image("i2").unwrap();
        assert!(m.all_tags().unwrap().is_empty());
        assert_eq!(m.image::<Rec>("i1").unwrap(), Some(Rec { n: 1 }));
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Big {
        s: String,
    }

    /// A database that cannot grow past its current size: writes that need
    /// a new page fail with SQLITE_FULL, as on a full disk.
    fn cap(m: &Metadata) {
        m.with(|c| {
            let n: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            c.query_row(&format!("PRAGMA max_page_count = {n}"), [], |_| Ok(()))?;
            Ok(())
        })
        .unwrap();
    }

    fn uncap(m: &Metadata) {
        m.with(|c| {
            c.query_row("PRAGMA max_page_count = 1000000", [], |_| Ok(()))?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_full_disk_defers_container_updates_until_maintain() {
        let d = tempfile::tempdir().unwrap();
        let m = Metadata::open_with_reserve(
            &d.path().join("meta.db"),
            1 << 16,
            &d.path().join(".reserve"),
        )
        .unwrap();
        let small = Big { s: "up".into() };
        m.insert_container("c1", "web", "img", &small).unwrap();
        m.insert_container("c2", "db", "img", &small).unwrap();
        cap(&m);
        let big = Big {
            s: "x".repeat(64 << 10),
        };
        // A plain update fails, and growth does not spend the reserve...
        let e = m.update_container("c1", "web", &big).unwrap_err();
        assert!(e.is_disk_full(), "{e}");
        assert!(m.reserve_held());
        // ...a deferrable one spends it (which does not help a capped
        // database), then is kept and served to readers.
        assert!(!m.update_container_or_defer("c1", "web", &big).unwrap());
        assert!(!m.reserve_held());
        assert_eq!(m.deferred_count(), 1);
        assert_eq!(
            m.container::<Big>("c1").unwrap(),
            Some(Big { s: big.s.clone() })
        );
        let all = m.containers::<Big>().unwrap();
        assert!(all.contains(&Big { s: big.s.clone() }) && all.contains(&small));
        // A rename is never deferred.
        assert!(m
            .update_container_or_defer("c1", "other", &big)
            .unwrap_err()
            .is_disk_full());
        // Still full: maintain keeps it.
        m.maintain();
        assert_eq!(m.deferred_count(), 1);
        uncap(&m);
        m.maintain();
        assert_eq!(m.deferred_count(), 0);
        assert!(
            m.reserve_held(),
            "the reserve is taken again once there is room"
        );
        let reopened = Metadata::open(&d.path().join("meta.db")).unwrap();
        assert_eq!(reopened.container::<Big>("c1").unwrap(), Some(big));
        assert_eq!(reopened.container::<Big>("c2").unwrap(), Some(small));
    }

    #[test]
    fn a_newer_write_or_a_removal_supersedes_a_deferred_record() {
        let (_d, m) = db();
        m.insert_container("c1", "web", "img", &Big { s: "a".into() })
            .unwrap();
        m.insert_container("c2", "db", "img", &Big { s: "a".into() })
            .unwrap();
        cap(&m);
        let big = Big {
            s: "x".repeat(64 << 10),
        };
        assert!(!m.update_container_or_defer("c1", "web", &big).unwrap());
        assert!(!m.update_container_or_defer("c2", "db", &big).unwrap());
        uncap(&m);
        m.update_container("c1", "web", &Big { s: "b".into() })
            .unwrap();
        assert!(m.delete_container("c2").unwrap());
        assert_eq!(m.deferred_count(), 0);
        m.maintain();
        assert_eq!(
            m.container::<Big>("c1").unwrap(),
            Some(Big { s: "b".into() })
        );
        assert_eq!(m.container::<Big>("c2").unwrap(), None);
    }

    #[test]
    fn kv_roundtrip() {
        let (_d, m) = db();
        m.kv_put("vol", "a", &Rec { n: 5 }).unwrap();
        assert_eq!(m.kv_get::<Rec>("vol", "a").unwrap(), Some(Rec { n: 5 }));
        assert_eq!(m.kv_list::<Rec>("vol").unwrap().len(), 1);
        assert!(m.kv_delete("vol", "a").unwrap());
    }
}
