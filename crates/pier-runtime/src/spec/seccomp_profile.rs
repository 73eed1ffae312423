//! Custom seccomp profiles in Docker's JSON format (`--security-opt seccomp=<json>`).
//!
//! Docker's format extends the OCI `linux.seccomp` object with rules that only
//! apply on some architectures, kernels or capability sets (`includes` /
//! `excludes`), an `archMap` from the native architecture to its sub-arches, and
//! the legacy single `name`. Those are resolved here, for the container being
//! built, into a plain OCI profile, which then goes through the same compile-once
//! path as the default profile (`pier-shim/src/filter.rs`).

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscallBuilder,
};
use serde::Deserialize;

use super::seccomp::{arch_map, go_arch, Host};
use super::SpecError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default)]
    default_action: Option<LinuxSeccompAction>,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "nullable")]
    architectures: Vec<Arch>,
    #[serde(default, deserialize_with = "nullable")]
    arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "nullable")]
    flags: Vec<LinuxSeccompFilterFlag>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    syscalls: Vec<Syscall>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: Arch,
    #[serde(default, deserialize_with = "nullable")]
    sub_architectures: Vec<Arch>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    names: Vec<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: usize,
    value: u64,
    #[serde(default, deserialize_with = "nullable")]
    value_two: u64,
    op: LinuxSeccompOperator,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default, deserialize_with = "nullable")]
    caps: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    arches: Vec<String>,
    #[serde(default, deserialize_with = "kernel_version")]
    min_kernel: Option<(u32, u32)>,
}

/// A JSON null reads as the empty value, as Go's decoder does: profiles written
/// by other tools often have `"args": null` or `"names": null`.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `"<kernel>.<major>"`, as Docker reads `minKernel`.
fn kernel_version<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<(u32, u32)>, D::Error> {
    let s = Option::<String>::deserialize(d)?.unwrap_or_default();
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || {
        serde::de::Error::custom(format!(
            "invalid kernel version: {s:?}, expected \"<kernel>.<major>\""
        ))
    };
    let (a, b) = s.split_once('.').ok_or_else(bad)?;
    let v = (
        a.parse::<u8>().map_err(|_| bad())? as u32,
        b.parse::<u8>().map_err(|_| bad())? as u32,
    );
    if v == (0, 0) {
        return Err(bad());
    }
    Ok(Some(v))
}

fn invalid(msg: impl Into<String>) -> SpecError {
    SpecError::Seccomp(msg.into())
}

/// Checks that `json` is a profile Pier can apply, without a container: the
/// create-time check, so a bad profile is refused before anything is made.
pub fn check_profile(json: &str) -> Result<(), SpecError> {
    let p = decode(json)?;
    validate(&p)
}

fn decode(json: &str) -> Result<Profile, SpecError> {
    serde_json::from_str(json).map_err(|e| invalid(format!("decoding seccomp profile failed: {e}")))
}

fn validate(p: &Profile) -> Result<(), SpecError> {
    if !p.architectures.is_empty() && !p.arch_map.is_empty() {
        return Err(invalid(
            "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'",
        ));
    }
    if p.default_action.is_none() && !p.syscalls.is_empty() {
        return Err(invalid(
            "the seccomp profile has rules but no 'defaultAction'",
        ));
    }
    // Notifications need a seccomp agent listening on the socket; Pier has none.
    if p.listener_path.as_deref().is_some_and(|l| !l.is_empty())
        || p.default_action == Some(LinuxSeccompAction::ScmpActNotify)
        || p.syscalls
            .iter()
            .any(|c| c.action == LinuxSeccompAction::ScmpActNotify)
    {
        return Err(invalid(
            "seccomp profiles with SCMP_ACT_NOTIFY or a listenerPath are not supported",
        ));
    }
    for c in &p.syscalls {
        if !c.name.is_empty() && !c.names.is_empty() {
            return Err(invalid(
                "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'",
            ));
        }
    }
    Ok(())
}

/// The OCI profile for a container whose bounding set is `caps`; None when the
/// profile asks for no filtering (no default action and no rules, as Docker).
pub(crate) fn resolve(
    json: &str,
    caps: &[String],
    host: &Host<'_>,
) -> Result<Option<LinuxSeccomp>, SpecError> {
    let p = decode(json)?;
    validate(&p)?;
    let Some(default_action) = p.default_action else {
        return Ok(None);
    };
    let arch = go_arch(host.rust_arch);
    let native = arch_map(host.rust_arch);
    let mut architectures = p.architectures.clone();
    if let Some(m) = p
        .arch_map
        .iter()
        .find(|m| native.first() == Some(&m.architecture))
    {
        architectures.push(m.architecture);
        architectures.extend(m.sub_architectures.iter().copied());
    }
    let has_cap = |c: &String| caps.contains(c);
    let mut syscalls = Vec::new();
    for c in &p.syscalls {
        if let Some(x) = &c.excludes
            && (x.arches.iter().any(|a| a == arch)
                || x.caps.iter().any(has_cap)
                || x.min_kernel.is_some_and(|k| host.kernel >= k))
        {
            continue;
        }
        if let Some(i) = &c.includes
            && ((!i.arches.is_empty() && !i.arches.iter().any(|a| a == arch))
                || !i.caps.iter().all(has_cap)
                || i.min_kernel.is_some_and(|k| host.kernel < k))
        {
            continue;
        }
        let names = if c.name.is_empty() {
            c.names.clone()
        } else {
            vec![c.name.clone()]
        };
        let mut b = LinuxSyscallBuilder::default().names(names).action(c.action);
        if let Some(e) = c.errno_ret {
            b = b.errno_ret(e);
        }
        if let Some(args) = &c.args {
            let mut out = Vec::with_capacity(args.len());
            for a in args {
                let arg = LinuxSeccompArgBuilder::default().index(a.index).op(a.op);
                // Docker's profiles (like runc and libseccomp) give SCMP_CMP_MASKED_EQ
                // the mask in `value` and the datum in `valueTwo`; the compiler
                // behind our specs reads them the other way round (see the default
                // profile), so they are swapped here.
                let arg = if a.op == LinuxSeccompOperator::ScmpCmpMaskedEq {
                    arg.value(a.value_two).value_two(a.value)
                } else {
                    arg.value(a.value).value_two(a.value_two)
                };
                out.push(arg.build().map_err(SpecError::build)?);
            }
            b = b.args(out);
        }
        syscalls.push(b.build().map_err(SpecError::build)?);
    }
    let mut s = LinuxSeccompBuilder::default()
        .default_action(default_action)
        .syscalls(syscalls);
    if let Some(e) = p.default_errno_ret {
        s = s.default_errno_ret(e);
    }
    if !architectures.is_empty() {
        s = s.architectures(architectures);
    }
    if !p.flags.is_empty() {
        s = s.flags(p.flags.clone());
    }
    s.build().map(Some).map_err(SpecError::build)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::spec::tests::host;

    fn resolved(profile: Value, caps: &[&str]) -> Value {
        let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
        let s = resolve(&profile.to_string(), &caps, &host())
            .unwrap()
            .unwrap();
        serde_json::to_value(s).unwrap()
    }

    fn err(profile: &str) -> String {
        let e = check_profile(profile).unwrap_err().to_string();
        assert!(resolve(profile, &[], &host()).is_err());
        e
    }

    #[test]
    fn plain_rules_pass_through() {
        let v = resolved(
            json!({
                "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 38,
                "architectures": ["SCMP_ARCH_X86_64"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                     "comment": "ignored"},
                    {"name": "kill", "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]}
                ]
            }),
            &[],
        );
        assert_eq!(v["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(v["defaultErrnoRet"], 38);
        assert_eq!(v["architectures"], json!(["SCMP_ARCH_X86_64"]));
        assert_eq!(v["flags"], json!(["SECCOMP_FILTER_FLAG_LOG"]));
        assert_eq!(v["syscalls"][0]["names"], json!(["mkdir", "mkdirat"]));
        assert_eq!(v["syscalls"][0]["errnoRet"], 1);
        assert_eq!(v["syscalls"][1]["names"], json!(["kill"]));
        assert_eq!(v["syscalls"][1]["args"][0]["value"], 10);
        assert_eq!(v["syscalls"][1]["args"][0]["op"], "SCMP_CMP_EQ");
    }

    #[test]
    fn masked_eq_takes_the_mask_from_value() {
        let v = resolved(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["clone"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                           "op": "SCMP_CMP_MASKED_EQ"}]}]}),
            &[],
        );
        let a = &v["syscalls"][0]["args"][0];
        assert_eq!(a["value"], 0);
        assert_eq!(a["valueTwo"], 2114060288u64);
    }

    #[test]
    fn conditions_follow_caps_arch_and_kernel() {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
                {"architecture": "SCMP_ARCH_X86_64",
                 "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}
            ],
            "syscalls": [
                {"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["b"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["c"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}},
                {"names": ["d"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
                {"names": ["e"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
                {"names": ["f"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
                {"names": ["g"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
                {"names": ["h"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "4.8"}}
            ]
        });
        let names = |v: &Value| -> Vec<String> {
            v["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["names"][0].as_str().unwrap().to_string())
                .collect()
        };
        let plain = resolved(profile.clone(), &["CAP_CHOWN"]);
        assert_eq!(
            plain["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        assert_eq!(names(&plain), ["b", "d", "f"]);
        let admin = resolved(profile, &["CAP_CHOWN", "CAP_SYS_ADMIN"]);
        assert_eq!(names(&admin), ["a", "d", "f"]);
    }

    #[test]
    fn nulls_read_as_empty_like_go() {
        let v = resolved(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": null, "flags": null,
                   "syscalls": [{"name": "read", "names": null, "action": "SCMP_ACT_ALLOW",
                                 "args": null, "includes": {"caps": null, "minKernel": null},
                                 "excludes": {}}]}),
            &[],
        );
        assert_eq!(v["syscalls"][0]["names"], json!(["read"]));
        assert!(v.get("architectures").is_none(), "{v}");
    }

    #[test]
    fn empty_profile_means_no_filter() {
        assert!(resolve("{}", &[], &host()).unwrap().is_none());
    }

    #[test]
    fn bad_profiles_are_refused_with_dockers_words() {
        assert!(err("{not json").starts_with("decoding seccomp profile failed: "));
        assert!(err(r#"{"defaultAction": "SCMP_ACT_BOGUS"}"#)
            .starts_with("decoding seccomp profile failed: "));
        assert!(err(r#"{"defaultAction": 5}"#).starts_with("decoding seccomp profile failed: "));
        assert!(err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","includes":{"minKernel":"4"}}]}"#
        )
        .contains("invalid kernel version"));
        assert!(err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#
        )
        .contains("use either 'architectures' or 'archMap'"));
        assert!(err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}"#
        )
        .contains("use either 'name' or 'names'"));
        assert!(
            err(r#"{"syscalls":[{"names":["b"],"action":"SCMP_ACT_ERRNO"}]}"#)
                .contains("no 'defaultAction'")
        );
        assert!(err(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#).contains("not supported"));
    }
}
