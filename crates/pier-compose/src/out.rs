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

/// Rows (the first is the header) as Go's tabwriter lays them out: each
/// column as wide as its widest cell plus `padding`, at least `min`, the
/// last one unpadded.
pub fn table(rows: &[Vec<String>], min: usize, padding: usize) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut w = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count() + padding).max(min);
        }
    }
    for r in rows {
        let mut s = String::new();
        for (i, c) in r.iter().enumerate() {
            s.push_str(c);
            if i + 1 < r.len() {
                s.push_str(&" ".repeat(w[i] - c.chars().count()));
            }
        }
        line(s.trim_end());
    }
}
