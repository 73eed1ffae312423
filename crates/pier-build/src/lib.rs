//! Pier's Dockerfile builder.
//!
//! [`build`] turns a build context directory and a Dockerfile into an image,
//! the way `docker build` does: stages, ARG/ENV expansion, COPY/ADD, RUN,
//! the layer cache, `--target`, tags. Everything that needs the image store,
//! snapshots or the runtime goes through [`BuildBackend`], which the engine
//! implements; the builder itself only reads and writes files under the
//! roots the backend prepares.
//!
//! [`unpack_context`] safely unpacks the context tar of `POST /build`;
//! [`DockerIgnore`] implements `.dockerignore`; [`JsonProgress`] writes the
//! JSON message stream the legacy `docker build` client prints.

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
    ImageConfig, LayerInfo, Network, RootFs, RunMount, RunProcess, WorkRoot,
};
pub use build::{build, build_tar, host_platform, BuildOptions, BuildResult};
pub use context::unpack_context;
pub use error::{BuildError, ErrorKind, Result};
pub use ignore::{clean_path, DockerIgnore, Glob};
pub use progress::{event_json, Event, JsonProgress, PlainProgress, Progress};

#[cfg(test)]
mod tests;
