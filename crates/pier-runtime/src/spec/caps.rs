//! Capabilities: Docker's default set, its add/drop arithmetic, and what this
//! host can grant at all.

use super::{SpecError, SpecOptions};

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the runtime knows, in kernel order.
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Normalises a capability name to `CAP_XXX`, or "ALL".
fn norm_cap(name: &str) -> Result<String, SpecError> {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if ALL_CAPS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(SpecError::Capability(name.to_string()))
    }
}

/// Docker's capability arithmetic: start from the defaults, then add, then drop;
/// "ALL" in add means every capability, in drop means none left before adds.
pub fn compute_caps(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
) -> Result<Vec<String>, SpecError> {
    if privileged {
        return Ok(ALL_CAPS.iter().map(|s| s.to_string()).collect());
    }
    let add: Vec<String> = cap_add
        .iter()
        .map(|c| norm_cap(c))
        .collect::<Result<_, _>>()?;
    let drop: Vec<String> = cap_drop
        .iter()
        .map(|c| norm_cap(c))
        .collect::<Result<_, _>>()?;
    let mut caps: Vec<String> = if add.iter().any(|c| c == "ALL") {
        ALL_CAPS.iter().map(|s| s.to_string()).collect()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    if drop.iter().any(|c| c == "ALL") {
        // Drop ALL keeps only what is explicitly added.
        caps = add.iter().filter(|c| *c != "ALL").cloned().collect();
    } else {
        for c in &add {
            if c != "ALL" && !caps.contains(c) {
                caps.push(c.clone());
            }
        }
        caps.retain(|c| !drop.contains(c));
    }
    // Keep kernel order so specs are stable.
    caps.sort_by_key(|c| ALL_CAPS.iter().position(|a| a == c));
    caps.dedup();
    Ok(caps)
}

/// CapBnd of this process; all bits when it cannot be read.
pub(super) fn own_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// The capability set of the container's process.
pub(super) fn granted(o: &SpecOptions, bounding: u64) -> Result<Vec<String>, SpecError> {
    let mut caps = compute_caps(&o.cap_add, &o.cap_drop, o.privileged)?;
    // "All" is what this host can grant: a daemon started without, say,
    // CAP_SYS_RESOURCE cannot hand it on, and asking the kernel would fail the start.
    if o.privileged || o.cap_add.iter().any(|c| c.eq_ignore_ascii_case("ALL")) {
        caps.retain(|c| {
            let bit = ALL_CAPS.iter().position(|a| a == c).unwrap_or(0);
            bounding & (1u64 << bit) != 0
        });
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::build_spec_on;
    use crate::spec::tests::{host, opts};

    #[test]
    fn caps_add_drop_all() {
        let c = compute_caps(
            &["NET_ADMIN".into()],
            &["CAP_CHOWN".into(), "kill".into()],
            false,
        )
        .unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()));
        assert!(!c.contains(&"CAP_KILL".to_string()));
        let c = compute_caps(&["CHOWN".into()], &["ALL".into()], false).unwrap();
        assert_eq!(c, ["CAP_CHOWN"]);
        let c = compute_caps(&["all".into()], &["SYS_ADMIN".into()], false).unwrap();
        assert_eq!(c.len(), ALL_CAPS.len() - 1);
        assert!(compute_caps(&["BOGUS".into()], &[], false).is_err());
    }

    #[test]
    fn all_capabilities_are_those_the_host_can_grant() {
        let mut o = opts();
        o.privileged = true;
        let mut h = host();
        h.bounding = !(1u64 << 24); // no CAP_SYS_RESOURCE, as in some VMs
        let v = serde_json::to_value(build_spec_on(&o, &h, true).unwrap()).unwrap();
        let b = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert_eq!(b.len(), ALL_CAPS.len() - 1);
        assert!(!b.iter().any(|c| c == "CAP_SYS_RESOURCE"));
        o.privileged = false;
        o.cap_add = vec!["ALL".into()];
        let v = serde_json::to_value(build_spec_on(&o, &h, true).unwrap()).unwrap();
        let b = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert!(!b.iter().any(|c| c == "CAP_SYS_RESOURCE"));
        assert!(b.iter().any(|c| c == "CAP_SYS_ADMIN"));
    }
}
