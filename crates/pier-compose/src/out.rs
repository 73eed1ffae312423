//! Writing to stdout: a closed pipe (`pier compose ps | head`) is not an error.

use std::io::Write;

pub fn line(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
}

pub fn raw(b: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(b);
    let _ = out.flush();
}
