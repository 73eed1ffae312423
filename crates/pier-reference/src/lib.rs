//! Image names, references and content digests: types only, no I/O.
//!
//! - [`Digest`]: `sha256:<hex>` with validation, hashing helpers and OCI chain IDs.
//! - [`Reference`]: Docker's reference grammar with Docker Hub normalisation.
//! - [`looks_like_id`] / [`id_prefix`] / [`ImageRef`]: telling image IDs from names.

mod digest;
mod reference;

pub use digest::{
    chain_id, chain_ids, Algorithm, Digest, DigestError, HashingReader, HashingWriter, Sha256Writer,
};
pub use reference::{
    id_prefix, looks_like_id, ImageRef, Reference, ReferenceError, DEFAULT_DOMAIN, DEFAULT_TAG,
    LEGACY_DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX,
};
