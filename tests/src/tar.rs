//! A tiny ustar writer, so tests can craft archives that no well-behaved tar tool
//! would produce (`../` names, absolute names, writes through symlinks).

pub enum Entry<'a> {
    File { name: &'a str, data: &'a [u8] },
    Dir { name: &'a str },
    Symlink { name: &'a str, target: &'a str },
    Hardlink { name: &'a str, target: &'a str },
}

fn field(h: &mut [u8], off: usize, len: usize, val: &[u8]) {
    assert!(
        val.len() <= len,
        "tar field too long: {:?}",
        String::from_utf8_lossy(val)
    );
    h[off..off + val.len()].copy_from_slice(val);
}

fn octal(h: &mut [u8], off: usize, len: usize, v: u64) {
    let s = format!("{v:0w$o}\0", w = len - 1);
    field(h, off, len, s.as_bytes());
}

fn header(name: &str, mode: u64, size: u64, kind: u8, link: &str) -> [u8; 512] {
    let mut h = [0u8; 512];
    field(&mut h, 0, 100, name.as_bytes());
    octal(&mut h, 100, 8, mode);
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, 0);
    h[156] = kind;
    field(&mut h, 157, 100, link.as_bytes());
    field(&mut h, 257, 6, b"ustar\0");
    field(&mut h, 263, 2, b"00");
    field(&mut h, 265, 32, b"root");
    field(&mut h, 297, 32, b"root");
    // The checksum is computed with its own field read as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// Builds an uncompressed tar archive from `entries`, in order.
pub fn build(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        match e {
            Entry::File { name, data } => {
                out.extend_from_slice(&header(name, 0o644, data.len() as u64, b'0', ""));
                out.extend_from_slice(data);
                out.resize(out.len().div_ceil(512) * 512, 0);
            }
            Entry::Dir { name } => out.extend_from_slice(&header(name, 0o755, 0, b'5', "")),
            Entry::Symlink { name, target } => {
                out.extend_from_slice(&header(name, 0o777, 0, b'2', target))
            }
            Entry::Hardlink { name, target } => {
                out.extend_from_slice(&header(name, 0o644, 0, b'1', target))
            }
        }
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_tar_reads_it() {
        let data = build(&[
            Entry::Dir { name: "d/" },
            Entry::File {
                name: "d/f",
                data: b"hello",
            },
            Entry::Symlink {
                name: "l",
                target: "/etc",
            },
        ]);
        let mut child = std::process::Command::new("tar")
            .args(["-tvf", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("tar");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&data).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("d/f"), "{text}");
        assert!(text.contains("l -> /etc"), "{text}");
    }
}
