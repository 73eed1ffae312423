//! Links the binary as a fixed-address (non-PIE) executable. A PIE of this
//! size carries ~30,000 relative relocations that the loader applies at every
//! start, copying on write every page they touch: ~160 page faults and 0.6 ms
//! per `pier` command on a VM where a fault costs ~4 µs (docs/architecture.md).
//! The shared libraries it loads are still placed at random.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
