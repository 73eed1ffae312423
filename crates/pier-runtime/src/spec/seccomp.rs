//! Docker's default seccomp profile (moby profiles/seccomp), as a table.
//!
//! An allowlist: everything not matched fails with EPERM. Rules can depend on the
//! architecture, on capabilities in the bounding set and on the kernel version,
//! and are resolved when the spec is built, as Docker does.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use super::SpecError;

/// Syscalls every container may make.
const BASE_ALLOW: &str = "accept accept4 access adjtimex alarm bind brk capget capset chdir chmod \
chown chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime \
clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range \
creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 \
epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 \
fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat \
fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 \
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat \
getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups \
getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid \
getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname \
getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch \
inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents \
io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter \
io_uring_register io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset \
landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek \
lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier memfd_create memfd_secret mincore \
mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify \
mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap \
msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep \
newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 \
pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 \
prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead \
readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages \
removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending \
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 \
rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam sched_get_priority_max \
sched_get_priority_min sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 \
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select \
semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto \
setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid \
setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 \
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 \
setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn \
socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync \
sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun \
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime \
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit \
umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid \
waitpid write writev";

#[derive(Clone, Copy)]
enum Op {
    Eq,
    Ne,
    /// `(arg & mask) == 0`
    MaskedZero,
}

#[derive(Clone, Copy)]
struct Arg {
    index: usize,
    value: u64,
    op: Op,
}

/// One conditional rule. Empty condition lists mean "no condition".
struct Rule {
    names: &'static [&'static str],
    /// None = allow; Some(errno) = fail with that errno.
    errno: Option<u32>,
    args: &'static [Arg],
    arches: &'static [&'static str],
    caps: &'static [&'static str],
    not_arches: &'static [&'static str],
    not_caps: &'static [&'static str],
    min_kernel: Option<(u32, u32)>,
}

const fn allow(names: &'static [&'static str]) -> Rule {
    Rule {
        names,
        errno: None,
        args: &[],
        arches: &[],
        caps: &[],
        not_arches: &[],
        not_caps: &[],
        min_kernel: None,
    }
}

const fn allow_cap(names: &'static [&'static str], caps: &'static [&'static str]) -> Rule {
    Rule {
        caps,
        ..allow(names)
    }
}

const fn allow_arch(names: &'static [&'static str], arches: &'static [&'static str]) -> Rule {
    Rule {
        arches,
        ..allow(names)
    }
}

const fn personality(value: u64) -> Rule {
    Rule {
        args: match value {
            0 => &[Arg {
                index: 0,
                value: 0,
                op: Op::Eq,
            }],
            8 => &[Arg {
                index: 0,
                value: 8,
                op: Op::Eq,
            }],
            131072 => &[Arg {
                index: 0,
                value: 131072,
                op: Op::Eq,
            }],
            131080 => &[Arg {
                index: 0,
                value: 131080,
                op: Op::Eq,
            }],
            _ => &[Arg {
                index: 0,
                value: 0xffff_ffff,
                op: Op::Eq,
            }],
        },
        ..allow(&["personality"])
    }
}

/// CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP: clone may not make
/// namespaces without CAP_SYS_ADMIN.
const CLONE_NS_MASK: u64 = 2_114_060_288;

const RULES: &[Rule] = &[
    Rule {
        min_kernel: Some((4, 8)),
        ..allow(&["process_vm_readv", "process_vm_writev", "ptrace"])
    },
    Rule {
        // AF_VSOCK (40) sockets are refused.
        args: &[Arg {
            index: 0,
            value: 40,
            op: Op::Ne,
        }],
        ..allow(&["socket"])
    },
    personality(0),
    personality(8),
    personality(131072),
    personality(131080),
    personality(0xffff_ffff),
    allow_arch(&["sync_file_range2", "swapcontext"], &["ppc64le"]),
    allow_arch(
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
        &["arm", "arm64"],
    ),
    allow_arch(&["arch_prctl"], &["amd64", "x32"]),
    allow_arch(&["modify_ldt"], &["amd64", "x32", "x86"]),
    allow_arch(
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
        &["s390", "s390x"],
    ),
    allow_arch(&["riscv_flush_icache"], &["riscv64"]),
    allow_cap(&["open_by_handle_at"], &["CAP_DAC_READ_SEARCH"]),
    allow_cap(
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
        &["CAP_SYS_ADMIN"],
    ),
    Rule {
        args: &[Arg {
            index: 0,
            value: CLONE_NS_MASK,
            op: Op::MaskedZero,
        }],
        not_caps: &["CAP_SYS_ADMIN"],
        not_arches: &["s390", "s390x"],
        ..allow(&["clone"])
    },
    Rule {
        // s390 passes clone's flags second.
        args: &[Arg {
            index: 1,
            value: CLONE_NS_MASK,
            op: Op::MaskedZero,
        }],
        arches: &["s390", "s390x"],
        not_caps: &["CAP_SYS_ADMIN"],
        ..allow(&["clone"])
    },
    Rule {
        // ENOSYS, so that libcs fall back to clone, which can be filtered by flags.
        errno: Some(38),
        not_caps: &["CAP_SYS_ADMIN"],
        ..allow(&["clone3"])
    },
    allow_cap(&["reboot"], &["CAP_SYS_BOOT"]),
    allow_cap(&["chroot"], &["CAP_SYS_CHROOT"]),
    allow_cap(
        &["delete_module", "init_module", "finit_module"],
        &["CAP_SYS_MODULE"],
    ),
    allow_cap(&["acct"], &["CAP_SYS_PACCT"]),
    allow_cap(
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        &["CAP_SYS_PTRACE"],
    ),
    allow_cap(&["iopl", "ioperm"], &["CAP_SYS_RAWIO"]),
    allow_cap(
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
        &["CAP_SYS_TIME"],
    ),
    allow_cap(&["vhangup"], &["CAP_SYS_TTY_CONFIG"]),
    allow_cap(
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        &["CAP_SYS_NICE"],
    ),
    allow_cap(&["syslog"], &["CAP_SYSLOG"]),
    allow_cap(&["bpf"], &["CAP_BPF"]),
    allow_cap(&["perf_event_open"], &["CAP_PERFMON"]),
];

/// Docker's (Go) name of an architecture, as used in the profile's conditions.
pub(crate) fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64" => "mips64",
        other => other,
    }
}

/// The native architecture and its compatible sub-architectures.
pub(crate) fn arch_map(rust_arch: &str) -> Vec<Arch> {
    match rust_arch {
        "x86_64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        "aarch64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        "mips64" => vec![
            Arch::ScmpArchMips64,
            Arch::ScmpArchMips,
            Arch::ScmpArchMips64n32,
        ],
        "s390x" => vec![Arch::ScmpArchS390x, Arch::ScmpArchS390],
        "riscv64" => vec![Arch::ScmpArchRiscv64],
        "powerpc64" => vec![Arch::ScmpArchPpc64le],
        _ => vec![Arch::ScmpArchNative],
    }
}

/// Inputs that decide which conditional rules apply.
pub(crate) struct Host<'a> {
    pub rust_arch: &'a str,
    pub kernel: (u32, u32),
    /// The daemon's own bounding set (bit n = capability n): "all capabilities"
    /// means all of these, as the kernel refuses to grant any other.
    pub bounding: u64,
}

/// Builds Docker's default profile for a container whose bounding set is `caps`
/// (names with the CAP_ prefix).
pub(crate) fn default_profile(caps: &[String], host: &Host<'_>) -> Result<LinuxSeccomp, SpecError> {
    let arch = go_arch(host.rust_arch);
    let has_cap = |c: &str| caps.iter().any(|x| x == c);
    let mut syscalls: Vec<LinuxSyscall> = Vec::with_capacity(RULES.len() + 1);
    syscalls.push(
        LinuxSyscallBuilder::default()
            .names(
                BASE_ALLOW
                    .split_whitespace()
                    .map(String::from)
                    .collect::<Vec<_>>(),
            )
            .action(LinuxSeccompAction::ScmpActAllow)
            .build()
            .map_err(SpecError::build)?,
    );
    for r in RULES {
        if !r.arches.is_empty() && !r.arches.contains(&arch) {
            continue;
        }
        if !r.caps.iter().all(|c| has_cap(c)) {
            continue;
        }
        if r.not_arches.contains(&arch) || r.not_caps.iter().any(|c| has_cap(c)) {
            continue;
        }
        if let Some(min) = r.min_kernel
            && host.kernel < min
        {
            continue;
        }
        let mut b = LinuxSyscallBuilder::default()
            .names(r.names.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        b = match r.errno {
            None => b.action(LinuxSeccompAction::ScmpActAllow),
            Some(e) => b.action(LinuxSeccompAction::ScmpActErrno).errno_ret(e),
        };
        if !r.args.is_empty() {
            let mut args = Vec::new();
            for a in r.args {
                let arg = match a.op {
                    Op::Eq => LinuxSeccompArgBuilder::default()
                        .index(a.index)
                        .value(a.value)
                        .op(LinuxSeccompOperator::ScmpCmpEq),
                    Op::Ne => LinuxSeccompArgBuilder::default()
                        .index(a.index)
                        .value(a.value)
                        .op(LinuxSeccompOperator::ScmpCmpNe),
                    // libcontainer reads `value` as the datum and `valueTwo` as the
                    // mask (runc reads them the other way round), so the mask goes
                    // in valueTwo here.
                    Op::MaskedZero => LinuxSeccompArgBuilder::default()
                        .index(a.index)
                        .value(0u64)
                        .value_two(a.value)
                        .op(LinuxSeccompOperator::ScmpCmpMaskedEq),
                }
                .build()
                .map_err(SpecError::build)?;
                args.push(arg);
            }
            b = b.args(args);
        }
        syscalls.push(b.build().map_err(SpecError::build)?);
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(1u32)
        .architectures(arch_map(host.rust_arch))
        .syscalls(syscalls)
        .build()
        .map_err(SpecError::build)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::spec::tests::{opts, r#gen};

    fn syscall_rules<'a>(v: &'a Value, name: &str) -> Vec<&'a Value> {
        v["linux"]["seccomp"]["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn seccomp_profile_shape() {
        let v = r#gen(&opts());
        let sc = &v["linux"]["seccomp"];
        assert_eq!(sc["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(sc["defaultErrnoRet"], 1);
        assert_eq!(
            sc["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        // Plain allowlist entries.
        assert!(!syscall_rules(&v, "read").is_empty());
        assert!(!syscall_rules(&v, "arch_prctl").is_empty());
        // Cap-conditional: no CAP_SYS_ADMIN -> mount not allowed, clone masked, clone3 ENOSYS.
        assert!(syscall_rules(&v, "mount").is_empty());
        let clone = syscall_rules(&v, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone[0]["args"][0]["valueTwo"], CLONE_NS_MASK_FOR_TEST);
        let clone3 = syscall_rules(&v, "clone3");
        assert_eq!(clone3[0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(clone3[0]["errnoRet"], 38);
        // Arch-specific rules for other arches are left out.
        assert!(syscall_rules(&v, "s390_runtime_instr").is_empty());
        assert_eq!(syscall_rules(&v, "personality").len(), 5);
        assert_eq!(
            syscall_rules(&v, "socket")[0]["args"][0]["op"],
            "SCMP_CMP_NE"
        );
    }

    const CLONE_NS_MASK_FOR_TEST: u64 = 2_114_060_288;

    #[test]
    fn seccomp_with_sys_admin() {
        let mut o = opts();
        o.cap_add = vec!["sys_admin".into()];
        let v = r#gen(&o);
        assert!(!syscall_rules(&v, "mount").is_empty());
        let clone = syscall_rules(&v, "clone");
        assert_eq!(clone.len(), 1);
        assert!(clone[0].get("args").is_none_or(|a| a.is_null()));
        assert!(v["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "CAP_SYS_ADMIN"));
    }
}
