//! Issue #11 item 12: the daemon (the `pier` binary) and `pier-shim` run as
//! root, so they are position-independent executables: the kernel places
//! them at a random address (ASLR), not at a fixed one an exploit can count on.
//! Their relocations are packed (RELR), which keeps a PIE's start-up cheap.

use std::path::Path;

const ET_DYN: u16 = 3;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_RELR: i64 = 36;
const DT_FLAGS_1: i64 = 0x6fff_fffb;
const DF_1_PIE: u64 = 0x0800_0000;

struct Elf {
    e_type: u16,
    has_interp: bool,
    /// (tag, value) of the dynamic section.
    dynamic: Vec<(i64, u64)>,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Reads the parts of a 64-bit little-endian ELF file this test needs.
fn parse(path: &Path) -> Elf {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        b.len() > 64 && &b[..4] == b"\x7fELF" && b[4] == 2 && b[5] == 1,
        "{} is not a 64-bit little-endian ELF file",
        path.display()
    );
    let phoff = u64_at(&b, 32) as usize;
    let phentsize = u16_at(&b, 54) as usize;
    let phnum = u16_at(&b, 56) as usize;
    let mut elf = Elf {
        e_type: u16_at(&b, 16),
        has_interp: false,
        dynamic: Vec::new(),
    };
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        match u32_at(&b, ph) {
            PT_INTERP => elf.has_interp = true,
            PT_DYNAMIC => {
                let (off, size) = (u64_at(&b, ph + 8) as usize, u64_at(&b, ph + 32) as usize);
                for e in (off..off + size).step_by(16) {
                    let tag = u64_at(&b, e) as i64;
                    if tag == 0 {
                        break;
                    }
                    elf.dynamic.push((tag, u64_at(&b, e + 8)));
                }
            }
            _ => {}
        }
    }
    elf
}

fn binary(name: &str) -> std::path::PathBuf {
    let p = pier_tests::bin_dir().join(name);
    assert!(p.is_file(), "{} not built", p.display());
    p
}

#[test]
fn pier_and_the_shim_are_position_independent() {
    for name in ["pier", "pier-shim"] {
        let elf = parse(&binary(name));
        assert_eq!(
            elf.e_type, ET_DYN,
            "{name} is linked at a fixed address (ELF type {}), not as a PIE",
            elf.e_type
        );
        // ET_DYN alone also describes a shared library.
        assert!(elf.has_interp, "{name} has no program interpreter");
        let flags_1 = elf
            .dynamic
            .iter()
            .find(|(t, _)| *t == DT_FLAGS_1)
            .map_or(0, |(_, v)| *v);
        assert_ne!(flags_1 & DF_1_PIE, 0, "{name} lacks DF_1_PIE");
    }
}

#[test]
fn pier_and_the_shim_pack_their_relocations() {
    for name in ["pier", "pier-shim"] {
        let elf = parse(&binary(name));
        assert!(
            elf.dynamic.iter().any(|(t, _)| *t == DT_RELR),
            "{name} has no DT_RELR: its relative relocations are not packed \
             (link with -z pack-relative-relocs), so every start reads ~700 KiB of RELA entries"
        );
    }
}
