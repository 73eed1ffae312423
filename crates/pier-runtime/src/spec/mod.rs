//! OCI runtime specs shaped like the ones Docker generates.
//!
//! `build_spec` assembles the spec from one part per file: the process
//! (`process`, with `caps`), the mounts (`mounts`) and the `linux` section
//! (namespaces, cgroup resources, devices, and the `seccomp` profile). The inputs
//! are in `options`. Facts about the host (kernel, bounding set, swap accounting)
//! are read here once, so tests can build specs for any host.

mod caps;
mod linux;
mod mounts;
mod options;
mod process;
mod seccomp;
mod seccomp_profile;

use oci_spec::runtime::Spec;
use serde_json::json;

pub use caps::{compute_caps, ALL_CAPS, DEFAULT_CAPS};
pub use linux::{host_supports_swap_limit, MASKED_PATHS, READONLY_PATHS};
pub use options::{
    BindMount, Device, DeviceRule, Namespace, NetworkNs, Resources, Shm, SpecOptions,
    ThrottleDevice, TmpfsMount, Ulimit, WeightDevice,
};
pub use process::DEFAULT_PATH;
pub use seccomp_profile::check_profile as check_seccomp_profile;

/// Errors from building a spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("invalid capability {0:?}")]
    Capability(String),
    #[error("invalid ulimit {0:?}: {1}")]
    Ulimit(String, String),
    /// A custom seccomp profile that cannot be applied; the text is Docker's
    /// where it has one (`decoding seccomp profile failed: ...`).
    #[error("{0}")]
    Seccomp(String),
    #[error("invalid spec option: {0}")]
    Invalid(String),
    #[error("building the OCI spec: {0}")]
    Build(String),
}

impl SpecError {
    fn build(e: impl std::fmt::Display) -> Self {
        SpecError::Build(e.to_string())
    }
}

fn kernel_version() -> (u32, u32) {
    let rel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut it = rel.split(|c: char| !c.is_ascii_digit());
    let major = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (major, minor)
}

/// Builds a Docker-like OCI spec.
pub fn build_spec(o: &SpecOptions) -> Result<Spec, SpecError> {
    build_spec_on(
        o,
        &seccomp::Host {
            rust_arch: std::env::consts::ARCH,
            kernel: kernel_version(),
            bounding: caps::own_bounding_set(),
        },
        o.resources.memory.is_some() && host_supports_swap_limit(),
    )
}

fn build_spec_on(
    o: &SpecOptions,
    host: &seccomp::Host<'_>,
    swap_ok: bool,
) -> Result<Spec, SpecError> {
    if o.args.is_empty() {
        return Err(SpecError::Invalid("no command given".into()));
    }
    if o.cgroups_path.is_empty() {
        return Err(SpecError::Invalid("cgroups_path must be set".into()));
    }
    let caps = caps::granted(o, host.bounding)?;
    let process = process::process(o, &caps)?;
    let mounts = mounts::mounts(o);
    let linux = linux::linux(o, &caps, host, swap_ok)?;

    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": o.rootfs, "readonly": o.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    });
    if !o.uts_host {
        if let Some(h) = &o.hostname {
            spec["hostname"] = json!(h);
        }
        if let Some(d) = o.domainname.as_ref().filter(|d| !d.is_empty()) {
            spec["domainname"] = json!(d);
        }
    }
    if !o.annotations.is_empty() {
        spec["annotations"] = json!(o.annotations);
    }
    serde_json::from_value(spec).map_err(SpecError::build)
}

#[cfg(test)]
mod tests;
