//! Loading a compiled seccomp BPF program into the calling thread.

use std::io;

/// One classic-BPF instruction as the kernel reads it (`struct sock_filter`).
const INSN_LEN: usize = 8;

/// Installs `program` (an array of `struct sock_filter` in native byte order, as
/// libseccomp's `seccomp_export_bpf` writes it) with `seccomp(SET_MODE_FILTER)`.
///
/// Without no_new_privileges the caller needs CAP_SYS_ADMIN in its effective set.
pub fn load_seccomp_filter(program: &[u8], flags: u32) -> io::Result<()> {
    if program.is_empty() || !program.len().is_multiple_of(INSN_LEN) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "seccomp program of {} bytes is not a whole number of instructions",
                program.len()
            ),
        ));
    }
    let len = u16::try_from(program.len() / INSN_LEN).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "seccomp program longer than 65535 instructions",
        )
    })?;
    // The kernel reads the instructions through a pointer that must be aligned for
    // `sock_filter`; copy them into a properly typed buffer rather than casting.
    let insns: Vec<libc::sock_filter> = program
        .chunks_exact(INSN_LEN)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let prog = libc::sock_fprog {
        len,
        filter: insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `len` initialised instructions that outlive the
    // call; the kernel copies them and keeps no pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("load seccomp filter: {e}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_partial_instructions() {
        let e = load_seccomp_filter(&[0u8; 12], 0).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(load_seccomp_filter(&[], 0).is_err());
    }
}
