//! `--device HOST[:CONTAINER[:PERMS]]` and `--device-cgroup-rule`: a node
//! made in the container's /dev plus a device cgroup allow rule, as Docker
//! does. CDI names and `--gpus` go through the CDI specs (`cdi.rs`).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

use pier_api::models::{DeviceRequest, HostConfig};
use pier_runtime::spec::{BindMount, Device, DeviceRule};

use crate::{EngineError, Result};

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::invalid_argument(msg.into())
}

fn access_ok(a: &str) -> bool {
    !a.is_empty() && a.len() <= 3 && a.chars().all(|c| "rwm".contains(c))
}

/// moby's `deviceCgroupRuleRegex`: `[acb] (N|*):(N|*) [rwm]{1,3}`.
fn cgroup_rule(rule: &str) -> Result<DeviceRule> {
    let err = || bad(format!("invalid device cgroup rule format: '{rule}'"));
    let parts: Vec<&str> = rule.split(' ').collect();
    let [kind, nums, access] = parts.as_slice() else {
        return Err(err());
    };
    let kind = match *kind {
        "a" | "b" | "c" => kind.chars().next().unwrap_or('a'),
        _ => return Err(err()),
    };
    let (major, minor) = nums.split_once(':').ok_or_else(err)?;
    let num = |n: &str| -> Result<Option<i64>> {
        if n == "*" {
            Ok(None)
        } else if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            n.parse().map(Some).map_err(|_| err())
        } else {
            Err(err())
        }
    };
    if !access_ok(access) {
        return Err(err());
    }
    Ok(DeviceRule {
        kind,
        major: num(major)?,
        minor: num(minor)?,
        access: access.to_string(),
    })
}

/// What a container's devices add to its spec.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    pub devices: Vec<Device>,
    pub rules: Vec<DeviceRule>,
    /// From CDI specs.
    pub env: Vec<String>,
    pub binds: Vec<BindMount>,
}

/// NVIDIA's CDI kind, which `--gpus` maps to (as Docker 28 does with CDI on).
const GPU_KIND: &str = "nvidia.com/gpu";

/// CDI names a device request asks for: Docker's `cdi` driver carries them
/// as device IDs; a GPU request becomes NVIDIA's CDI devices.
fn request_names(r: &DeviceRequest, cdi_dirs: &[PathBuf]) -> Result<Vec<String>> {
    if r.driver.as_deref() == Some("cdi") {
        return Ok(r.device_ids.clone().unwrap_or_default());
    }
    let gpu = r
        .capabilities
        .iter()
        .flatten()
        .any(|c| c.iter().any(|c| c == "gpu"));
    let nvidia = matches!(r.driver.as_deref(), None | Some("") | Some("nvidia"));
    if gpu && nvidia && crate::cdi::has_kind(cdi_dirs, GPU_KIND)? {
        let ids: Vec<String> = match (&r.device_ids, r.count.unwrap_or(0)) {
            (Some(ids), _) if !ids.is_empty() => ids.clone(),
            (_, n) if n > 0 => (0..n).map(|i| i.to_string()).collect(),
            _ => vec!["all".into()],
        };
        return Ok(ids.iter().map(|i| format!("{GPU_KIND}={i}")).collect());
    }
    // Docker's answer when no device driver takes the request.
    let caps: Vec<String> = r
        .capabilities
        .iter()
        .flatten()
        .map(|c| format!("[{}]", c.join(" ")))
        .collect();
    Err(bad(format!(
        "could not select device driver {:?} with capabilities: [{}]",
        r.driver.as_deref().unwrap_or(""),
        caps.join(" ")
    )))
}

/// The nodes, allow rules and CDI edits the container's `Devices`,
/// `DeviceCgroupRules` and `DeviceRequests` ask for; checked at create,
/// resolved again at start.
pub(crate) fn resolve(h: &HostConfig, cdi_dirs: &[PathBuf]) -> Result<Resolved> {
    let mut devices = Vec::new();
    let mut rules = Vec::new();
    let mut cdi_names = Vec::new();
    for r in h.device_requests.iter().flatten() {
        cdi_names.extend(request_names(r, cdi_dirs)?);
    }
    for d in h.devices.iter().flatten() {
        let host = d.path_on_host.as_deref().unwrap_or("");
        if crate::cdi::is_cdi_name(host) {
            cdi_names.push(host.to_string());
            continue;
        }
        let inside = d
            .path_in_container
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(host);
        if !inside.starts_with('/') {
            return Err(bad(format!("{inside} is not an absolute path")));
        }
        let perms = d.cgroup_permissions.as_deref().unwrap_or("rwm");
        let perms = if perms.is_empty() { "rwm" } else { perms };
        if !access_ok(perms) {
            return Err(bad(format!("bad mode specified: {perms}")));
        }
        let gather = |why: String| {
            bad(format!(
                "error gathering device information while adding custom device {host:?}: {why}"
            ))
        };
        let md = std::fs::metadata(host).map_err(|e| gather(e.to_string()))?;
        let kind = if md.file_type().is_char_device() {
            'c'
        } else if md.file_type().is_block_device() {
            'b'
        } else if md.is_dir() {
            return Err(bad(format!(
                "not supported by Pier: --device with a directory ({host})"
            )));
        } else {
            return Err(gather("not a device node".into()));
        };
        let (major, minor) = (
            nix::sys::stat::major(md.rdev()),
            nix::sys::stat::minor(md.rdev()),
        );
        devices.push(Device {
            path: inside.to_string(),
            kind,
            major,
            minor,
            file_mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
        });
        rules.push(DeviceRule {
            kind,
            major: Some(major as i64),
            minor: Some(minor as i64),
            access: perms.to_string(),
        });
    }
    for r in h.device_cgroup_rules.iter().flatten() {
        rules.push(cgroup_rule(r)?);
    }
    let cdi = crate::cdi::resolve(cdi_dirs, &cdi_names)?;
    devices.extend(cdi.devices);
    rules.extend(cdi.rules);
    Ok(Resolved {
        devices,
        rules,
        env: cdi.env,
        binds: cdi.binds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pier_api::models::DeviceMapping;

    #[test]
    fn cgroup_rules_parse_like_moby() {
        let r = cgroup_rule("c 42:* rmw").unwrap();
        assert_eq!((r.kind, r.major, r.minor), ('c', Some(42), None));
        assert_eq!(cgroup_rule("a *:* m").unwrap().kind, 'a');
        for bad in ["x 1:2 r", "c 1 r", "c 1:2 rx", "c 1:2", "c a:2 r"] {
            assert_eq!(
                cgroup_rule(bad).unwrap_err().to_string(),
                format!("invalid device cgroup rule format: '{bad}'")
            );
        }
    }

    #[test]
    fn devices_resolve_from_the_host() {
        let h = HostConfig {
            devices: Some(vec![DeviceMapping {
                path_on_host: Some("/dev/null".into()),
                path_in_container: Some("/dev/xnull".into()),
                cgroup_permissions: Some("rw".into()),
            }]),
            ..Default::default()
        };
        let r = resolve(&h, &[]).unwrap();
        let d = &r.devices;
        assert_eq!((d[0].kind, d[0].major, d[0].minor), ('c', 1, 3));
        assert_eq!(d[0].path, "/dev/xnull");
        assert_eq!(r.rules[0].access, "rw");
        let mut h2 = h.clone();
        h2.devices.as_mut().unwrap()[0].path_on_host = Some("/dev/nonexistent-x".into());
        assert!(resolve(&h2, &[])
            .unwrap_err()
            .to_string()
            .starts_with("error gathering device information"));
        h2.devices.as_mut().unwrap()[0].path_on_host = Some("vendor.com/gpu=0".into());
        assert!(resolve(&h2, &[])
            .unwrap_err()
            .to_string()
            .contains("unresolvable CDI devices vendor.com/gpu=0"));
    }
}
