//! Content store (an OCI image layout of blobs by digest), layer compression, and image
//! archive formats (`docker save`/`load`/`import`).
//!
//! ```text
//! root/oci-layout, root/index.json
//! root/blobs/sha256/<hex>     committed blobs, verified before the rename
//! root/ingest/                writes in progress; leftovers removed by cleanup_ingest
//! ```

// A synchronous store: the engine calls it from blocking threads.
#![allow(clippy::disallowed_methods)]

pub mod archive;
pub mod compression;
mod error;
pub mod gzip;
pub mod readahead;
mod store;

pub use archive::{
    import_rootfs, layer_diff_id, read_docker_archive, write_docker_archive, write_oci_layout,
    ImageToSave, LayerRef, LoadedImage,
};
pub use compression::{decompress, decompress_detect, media_types, Compression};
pub use error::{ContentError, Result};
pub use store::{BlobWriter, ContentStore, DEFAULT_READ_LIMIT};
