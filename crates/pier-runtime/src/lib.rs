//! Container runtime pieces for the engine: Docker-like OCI specs, user lookup in
//! a rootfs, the shim protocol, and (feature "client") the async shim client.

pub mod proto;
pub mod spec;
pub mod user;

pub use spec::{build_spec, SpecError, SpecOptions};
pub use user::{resolve_user, ResolvedUser, UserError};

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
pub use client::{spawn_shim, ShimClient, ShimError, ShimHandle, ShimOptions};
