//! An OCI distribution client: pull images into the content store, push
//! them back out, log in; credentials from Docker's config file.
//!
//! - [`Client`] / [`Session`]: HTTP with the auth handshake (anonymous,
//!   Basic, Bearer tokens cached per scope); plain HTTP for loopback.
//! - [`pull()`] / [`push()`] / [`login`]: the transfers, reporting [`Progress`].
//! - [`DockerConfig`]: `~/.docker/config.json` and credential helpers.
//! - [`manifest`]: manifests, indexes, platforms.
//! - [`hosts`]: mirrors (containerd's `hosts.toml`, dockerd's `registry-mirrors`).

mod auth;
mod client;
mod config;
mod error;
pub mod hosts;
pub mod manifest;
mod progress;
mod pull;
mod push;
mod transport;
mod unpack;

pub use auth::{parse_www_authenticate, AuthConfig, Challenge};
pub use client::{is_loopback, Client, Session};
pub use config::{auth_key, default_config_dir, DockerConfig, DOCKER_HUB_AUTH_KEY};
pub use error::{RegistryError, Result};
pub use hosts::{Capabilities, Endpoint};
pub use manifest::{Descriptor, Platform};
pub use progress::{no_progress, short_id, Progress, ProgressFn};
pub use pull::{
    fetch_manifest, inspect, list_tags, pull, resolve_platform, DistributionInfo, FetchedManifest,
    PullOptions, PulledImage,
};
pub use push::{login, push, PushImage, PushOptions, PushResult};
pub use transport::{RegistryOptions, DEFAULT_CERTS_DIRS};
pub use unpack::{LayerUnpacker, StagedLayer};
