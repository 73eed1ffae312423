//! Pier's Dockerfile builder.
//!
//! [`build`] turns a build context directory and a Dockerfile into an image,
//! the way `docker build` does: stages, ARG/ENV expansion, COPY/ADD, RUN,
//! the layer cache, `--target`, tags. Everything that needs the image store,
//! snapshots or the runtime goes through [`BuildBackend`], which the engine
//! implements; the builder itself only reads and writes files under the
//! roots the backend prepares.
//!
//! [`unpack_context`] safely unpacks the context tar of `POST /build`
//! ([`build_tar`] does that and builds); [`DockerIgnore`] implements
//! `.dockerignore`; [`JsonProgress`] writes the JSON message stream the
//! legacy `docker build` client prints, [`PlainProgress`] plain text.
//!
//! # What the engine implements
//!
//! - `find_image` / `pull`: images by name or ID, as [`BaseImage`] (config
//!   JSON parsed into [`ImageConfig`], layers bottom first).
//! - `prepare(layers)`: a writable overlay root on top of the snapshot for
//!   that layer stack (chain ID of the diff IDs), unpacking blobs whose
//!   snapshots are missing (cached layers from earlier builds). Also used
//!   read-only for `COPY --from` and bind mounts; every root is released.
//! - `run`: one process in the root like a container would run it (user
//!   resolved in the root, cwd created, mounts, network mode), output
//!   streamed, exit code returned.
//! - `commit`: the root's changes (the overlay upper dir, minus empty
//!   mount-point dirs it created) as a layer blob plus a snapshot; None when
//!   nothing changed.
//! - `create_image`: store the config bytes as given (the ID is their
//!   digest; the builder checks), register layers, apply tags.
//! - `cache_get`/`cache_put`: a key -> [`CacheRecord`] table; records pin
//!   their layer blobs against garbage collection; `cache_get` returns None
//!   when the layer is gone. `cache_mount_dir(id)`: a persistent directory.
//!
//! The builder is synchronous: call it from a blocking thread.

// The builder is synchronous: the server runs a build on a blocking thread.
#![allow(clippy::disallowed_methods)]

mod backend;
mod build;
mod context;
mod error;
mod fsutil;
mod ignore;
mod progress;
mod timefmt;
mod users;

pub use backend::{
    BackendError, BackendErrorKind, BackendResult, BaseImage, BuildBackend, CacheRecord, History,
    ImageConfig, ImageRole, LayerInfo, Network, OutputStream, RootFs, RunMount, RunProcess,
    WorkRoot,
};
pub use build::{build, build_tar, host_platform, BuildOptions, BuildResult};
pub use context::unpack_context;
pub use error::{BuildError, ErrorKind, Result};
pub use ignore::{clean_path, DockerIgnore, Glob};
pub use progress::{event_json, Event, JsonProgress, PlainProgress, Progress};

#[cfg(test)]
mod tests;
