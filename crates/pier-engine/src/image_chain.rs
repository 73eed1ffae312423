//! Parent chains of images: the classic builder leaves one untagged image
//! per step, each the parent of the next. As Docker, `images` hides such
//! intermediate images (untagged, with a child) unless `-a`, an image with
//! children cannot be deleted, and deleting an image also deletes the
//! untagged, unused parents it leaves childless.

use std::collections::HashSet;

use pier_api::models::ImageDeleteResponseItem;

use crate::records::ImageRecord;
use crate::{Engine, EngineError, Result};

/// The IDs that are some image's parent.
pub(crate) fn parents_of(images: &[(String, ImageRecord)]) -> HashSet<String> {
    images
        .iter()
        .filter(|(id, img)| !img.parent.is_empty() && &img.parent != id)
        .map(|(_, img)| img.parent.clone())
        .collect()
}

impl Engine {
    /// Docker's refusal to delete an image that others were built on.
    pub(crate) fn refuse_if_parent(&self, id: &str) -> Result<()> {
        let images = self.meta.images::<ImageRecord>()?;
        if parents_of(&images).contains(id) {
            return Err(EngineError::conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
                short(id)
            )));
        }
        Ok(())
    }

    /// After `deleted` went: deletes its parent, and that one's, while the
    /// parent is untagged, has no other child and no container uses it.
    /// Each deletion is added to `out`.
    pub(crate) fn delete_parents(
        &self,
        deleted: &ImageRecord,
        out: &mut Vec<ImageDeleteResponseItem>,
    ) -> Result<()> {
        let mut parent = deleted.parent.clone();
        let mut seen = HashSet::from([deleted.id.clone()]);
        while !parent.is_empty() && seen.insert(parent.clone()) {
            let Some(p) = self.meta.image::<ImageRecord>(&parent)? else {
                break;
            };
            if !self.meta.tags_of(&p.id)?.is_empty()
                || !self.meta.containers_using_image(&p.id)?.is_empty()
                || parents_of(&self.meta.images::<ImageRecord>()?).contains(&p.id)
            {
                break;
            }
            self.meta.delete_image(&p.id)?;
            self.image_event("delete", &p.id, "");
            out.push(ImageDeleteResponseItem {
                untagged: None,
                deleted: Some(p.id.clone()),
            });
            parent = p.parent;
        }
        Ok(())
    }
}

fn short(id: &str) -> &str {
    let hex = id.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}
