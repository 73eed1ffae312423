//! The container's seccomp profile, compiled once and loaded as a BPF program.
//!
//! libcontainer compiles the profile with libseccomp inside every container's
//! init: 9-14 ms per start for Docker's profile (some 350 syscalls on three
//! architectures), most of a `run --rm`. The program only depends on the profile,
//! so we compile each distinct profile once into a cache file and load the bytes
//! in our own executor just before the workload's exec.
//!
//! Without no_new_privileges, loading a filter needs CAP_SYS_ADMIN, which most
//! containers do not keep. So the spec handed to libcontainer keeps CAP_SYS_ADMIN
//! and CAP_SETPCAP in the bounding, effective and permitted sets, and the executor
//! loads the filter and then drops to the real sets with libcontainer's own
//! `drop_privileges`. That is runc's order too (filter first, then the capability
//! drop), so a profile has to allow the same calls as under runc.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{
    Arch, LinuxCapabilities, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, Spec,
};
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use serde_json::Value;

/// Annotation on the rewritten spec: where the compiled program is, and its
/// load flags. Execs read it from the bundle's config.json.
pub const ANNOTATION: &str = "org.pier.seccomp.program";

/// Capabilities the process holds until the filter is loaded.
const HELD: [&str; 2] = ["CAP_SYS_ADMIN", "CAP_SETPCAP"];

/// Loads a compiled filter, drops to the process's real capabilities, then runs
/// the workload like libcontainer's default executor.
#[derive(Clone)]
pub struct FilterExecutor {
    program: Vec<u8>,
    flags: u32,
    caps: Option<LinuxCapabilities>,
}

impl Executor for FilterExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        pier_sys::load_seccomp_filter(&self.program, self.flags)
            .map_err(|e| ExecutorError::Other(e.to_string()))?;
        if let Some(caps) = &self.caps {
            let sys = libcontainer::syscall::syscall::create_syscall();
            libcontainer::capabilities::drop_privileges(caps, sys.as_ref())
                .map_err(|e| ExecutorError::Other(format!("drop capabilities: {e}")))?;
        }
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}

/// Rewrites the bundle's config.json for a precompiled filter: the profile goes,
/// the annotation names the program, and the process holds [`HELD`] until the
/// executor drops them. Returns the executor, or None when the spec has no
/// profile or one we leave to libcontainer (user notification).
pub fn prepare_init(bundle: &Path, cache_dir: &Path) -> Result<Option<FilterExecutor>, String> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut spec: Value =
        serde_json::from_slice(&data).map_err(|e| format!("parse {}: {e}", path.display()))?;
    let Some(profile) = spec.pointer("/linux/seccomp").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let seccomp: LinuxSeccomp = serde_json::from_value(profile.clone())
        .map_err(|e| format!("seccomp profile in {}: {e}", path.display()))?;
    if uses_notify(&seccomp) {
        return Ok(None);
    }
    let flags = kernel_flags(&seccomp);
    let program_path = compiled(&seccomp, cache_dir)?;
    let program = std::fs::read(&program_path)
        .map_err(|e| format!("read {}: {e}", program_path.display()))?;

    let caps = take_caps(spec.pointer_mut("/process/capabilities"))?;
    if let Some(linux) = spec.get_mut("linux").and_then(Value::as_object_mut) {
        linux.remove("seccomp");
    }
    let note = format!("{flags} {}", program_path.display());
    match spec.get_mut("annotations").and_then(Value::as_object_mut) {
        Some(a) => {
            a.insert(ANNOTATION.into(), note.into());
        }
        None => spec["annotations"] = serde_json::json!({ ANNOTATION: note }),
    }
    let out = serde_json::to_vec(&spec).map_err(|e| format!("encode spec: {e}"))?;
    std::fs::write(&path, out).map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(Some(FilterExecutor {
        program,
        flags,
        caps,
    }))
}

/// For an exec into a container whose spec [`prepare_init`] rewrote: the same
/// program, and the exec process file rewritten to hold [`HELD`] until loaded.
pub fn prepare_exec(bundle: &Path, process_file: &Path) -> Result<Option<FilterExecutor>, String> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let spec: Value =
        serde_json::from_slice(&data).map_err(|e| format!("parse {}: {e}", path.display()))?;
    let Some(note) = spec
        .pointer(&format!("/annotations/{}", ANNOTATION.replace('/', "~1")))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let (flags, program_path) = note
        .split_once(' ')
        .and_then(|(f, p)| Some((f.parse::<u32>().ok()?, PathBuf::from(p))))
        .ok_or_else(|| format!("bad {ANNOTATION} annotation {note:?}"))?;
    let program = std::fs::read(&program_path)
        .map_err(|e| format!("read {}: {e}", program_path.display()))?;

    let data =
        std::fs::read(process_file).map_err(|e| format!("read {}: {e}", process_file.display()))?;
    let mut process: Value = serde_json::from_slice(&data)
        .map_err(|e| format!("parse {}: {e}", process_file.display()))?;
    let caps = take_caps(process.get_mut("capabilities"))?;
    let out = serde_json::to_vec(&process).map_err(|e| format!("encode process: {e}"))?;
    std::fs::write(process_file, out)
        .map_err(|e| format!("write {}: {e}", process_file.display()))?;
    Ok(Some(FilterExecutor {
        program,
        flags,
        caps,
    }))
}

/// Returns the real capability sets and adds [`HELD`] to the bounding,
/// effective and permitted lists in place. None when the process sets no
/// capabilities (libcontainer then changes none, and neither do we).
fn take_caps(caps: Option<&mut Value>) -> Result<Option<LinuxCapabilities>, String> {
    let Some(caps) = caps.filter(|c| !c.is_null()) else {
        return Ok(None);
    };
    let real: LinuxCapabilities =
        serde_json::from_value(caps.clone()).map_err(|e| format!("process capabilities: {e}"))?;
    for set in ["bounding", "effective", "permitted"] {
        let list = caps
            .as_object_mut()
            .ok_or("process capabilities are not an object")?
            .entry(set)
            .or_insert_with(|| Value::Array(Vec::new()));
        let Some(list) = list.as_array_mut() else {
            return Err(format!("process capabilities.{set} is not a list"));
        };
        for cap in HELD {
            if !list.iter().any(|c| c == cap) {
                list.push(cap.into());
            }
        }
    }
    Ok(Some(real))
}

fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls()
            .iter()
            .flatten()
            .any(|c| c.action() == LinuxSeccompAction::ScmpActNotify)
}

fn kernel_flags(s: &LinuxSeccomp) -> u32 {
    s.flags()
        .iter()
        .flatten()
        .map(|f| match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        } as u32)
        .fold(0, |a, f| a | f)
}

/// The cached program for this profile, compiling it first if needed. The key
/// covers the profile and the libseccomp version that compiles it.
fn compiled(s: &LinuxSeccomp, cache_dir: &Path) -> Result<PathBuf, String> {
    let mut keyed = format!("{:?}\n", libseccomp::ScmpVersion::current().ok()).into_bytes();
    keyed.extend(serde_json::to_vec(s).map_err(|e| format!("encode seccomp profile: {e}"))?);
    let digest = pier_reference::Digest::sha256(&keyed);
    let key = digest.hex();
    let path = cache_dir.join(format!("{key}.bpf"));
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(cache_dir)
        .map_err(|e| format!("create {}: {e}", cache_dir.display()))?;
    // Another shim may compile the same profile at the same moment: each writes
    // its own file and renames it into place, so readers see whole programs only.
    let tmp = cache_dir.join(format!(".{key}.{}", std::process::id()));
    let ctx = build_filter(s)?;
    let mut f =
        std::fs::File::create(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    ctx.export_bpf(&f)
        .map_err(|e| format!("compile seccomp profile: {e}"))?;
    f.flush()
        .map_err(|e| format!("write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("rename {}: {e}", tmp.display()))?;
    Ok(path)
}

/// The profile as a libseccomp filter, translated the way libcontainer 0.7's
/// `initialize_seccomp` does (which can only load, not export).
fn build_filter(s: &LinuxSeccomp) -> Result<ScmpFilterContext, String> {
    let err = |what: &str, e: libseccomp::error::SeccompError| format!("seccomp {what}: {e}");
    let default = action(s.default_action(), s.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| err("new filter", e))?;
    for &a in s.architectures().iter().flatten() {
        ctx.add_arch(arch(a)).map_err(|e| err("add arch", e))?;
    }
    for call in s.syscalls().iter().flatten() {
        let act = action(call.action(), call.errno_ret())?;
        if act == default {
            continue;
        }
        for name in call.names() {
            // Names this libseccomp does not know are skipped, as libcontainer does.
            let Ok(sc) = libseccomp::ScmpSyscall::from_name(name) else {
                continue;
            };
            let Some(args) = call.args() else {
                ctx.add_rule(act, sc).map_err(|e| err(name, e))?;
                continue;
            };
            let cmps: Vec<ScmpArgCompare> = args
                .iter()
                .map(|a| {
                    ScmpArgCompare::new(a.index() as u32, op(a.op(), a.value_two()), a.value())
                })
                .collect();
            let mut seen = HashSet::new();
            if args.iter().all(|a| seen.insert(a.index())) {
                ctx.add_rule_conditional(act, sc, &cmps)
                    .map_err(|e| err(name, e))?;
            } else {
                // libseccomp cannot AND two comparisons of one argument: one rule each.
                for c in &cmps {
                    ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                        .map_err(|e| err(name, e))?;
                }
            }
        }
    }
    Ok(ctx)
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction, String> {
    let errno = errno.map(|e| e as i32).unwrap_or(libc::EPERM);
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(
            u16::try_from(errno)
                .map_err(|_| format!("seccomp trace value {errno} out of range"))?,
        ),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    })
}

fn op(o: LinuxSeccompOperator, value_two: Option<u64>) -> ScmpCompareOp {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value_two.unwrap_or(0)),
    }
}

fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_caps_are_added_and_the_real_ones_returned() {
        let mut caps = serde_json::json!({
            "bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]
        });
        let real = take_caps(Some(&mut caps)).unwrap().unwrap();
        assert_eq!(real.bounding().as_ref().unwrap().len(), 1);
        for set in ["bounding", "effective", "permitted"] {
            let l: Vec<&str> = caps[set]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(l, ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_SETPCAP"], "{set}");
        }
        assert!(take_caps(None).unwrap().is_none());
    }

    #[test]
    fn profiles_compile_once_into_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["read", "write", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}
            ]
        }))
        .unwrap();
        let p = compiled(&s, dir.path()).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            !bytes.is_empty() && bytes.len().is_multiple_of(8),
            "{}",
            bytes.len()
        );
        let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
        assert_eq!(compiled(&s, dir.path()).unwrap(), p);
        assert_eq!(std::fs::metadata(&p).unwrap().modified().unwrap(), mtime);
        assert_eq!(kernel_flags(&s), 0);
    }
}
