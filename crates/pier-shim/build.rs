//! Packs the binary's relative relocations (RELR, `-z pack-relative-relocs`).
//! The binary stays position-independent (the toolchain's default), so a
//! root daemon is loaded at a random address; RELR keeps what that costs at
//! every start small: ~30,000 relocations become a bitmap of a few KiB that
//! the loader reads instead of 700 KiB of RELA entries. The pages they patch
//! are still copied; the CLI wins that back by building only the subcommand
//! it runs (clap `defer`, docs/architecture.md).
//! Needs glibc >= 2.36 at run time (the linker records GLIBC_ABI_DT_RELR).
fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
