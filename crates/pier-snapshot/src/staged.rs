//! Unpacks that are not yet snapshots: a layer unpacked while its blob is
//! still downloading waits here, invisible, until the blob checks out.

use std::fs;
use std::io::Read;
use std::path::PathBuf;

use pier_reference::{chain_id, Digest};

use crate::{Result, SnapshotError, Snapshotter};

/// A layer unpacked into a hidden temporary directory. [`Staged::commit`]
/// makes it the snapshot of its chain ID; dropping it uncommitted removes it
/// (and a crash leaves a `.tmp-*` directory for [`Snapshotter::cleanup`]).
#[derive(Debug)]
pub struct Staged {
    snaps: Snapshotter,
    tmp: Option<PathBuf>,
    parent: Option<Digest>,
    chain: Digest,
}

impl Snapshotter {
    /// The chain ID of `diff_id` on top of `parent`.
    pub fn chain_of(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
        match parent {
            None => diff_id.clone(),
            Some(p) => chain_id(&[p.clone(), diff_id.clone()]),
        }
    }

    /// Unpacks an uncompressed layer tar that will sit on `parent` (a chain
    /// ID), without making it visible. Overlay layers are independent
    /// directories, so `parent` need not exist yet: it must only exist by
    /// the time the result is committed. The stream must hash to `diff_id`.
    pub fn stage(
        &self,
        parent: Option<&Digest>,
        layer: impl Read,
        diff_id: &Digest,
    ) -> Result<Staged> {
        let s = Staged {
            snaps: self.clone(),
            tmp: Some(self.tmp_dir()),
            parent: parent.cloned(),
            chain: Self::chain_of(parent, diff_id),
        };
        let tmp = s.tmp.as_ref().expect("set above");
        self.fill(tmp, parent, layer, diff_id)?;
        Ok(s)
    }
}

impl Staged {
    /// The chain ID this becomes.
    pub fn chain(&self) -> &Digest {
        &self.chain
    }

    /// Publishes the snapshot (a rename). Its parent must exist by now; an
    /// existing snapshot of the same chain wins and this one is dropped.
    pub fn commit(mut self) -> Result<Digest> {
        if let Some(p) = &self.parent
            && !self.snaps.exists(p)
        {
            return Err(SnapshotError::NotFound(p.to_string()));
        }
        let tmp = self.tmp.take().expect("present until commit");
        if let Err(e) = self.snaps.commit(&tmp, &self.chain) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        Ok(self.chain.clone())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_dir_all(&tmp);
        }
    }
}
