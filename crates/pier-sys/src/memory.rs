//! Giving back memory a long-lived small process no longer needs.

use std::io;

/// Unmaps the resident pages of file-backed mappings that hold no anonymous
/// (copied-on-write) pages, e.g. program text and read-only data: they stay in
/// the page cache and fault back in when used. Returns the bytes released.
///
/// Startup code, relocation and one-off work leave megabytes of such pages
/// mapped; a supervisor that then sleeps in poll(2) needs a few dozen KiB.
pub fn release_clean_file_pages() -> io::Result<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")
        .map_err(|e| io::Error::new(e.kind(), format!("read /proc/self/smaps: {e}")))?;
    struct Map {
        start: usize,
        end: usize,
        file_backed: bool,
        rss_kb: u64,
        anon_kb: u64,
        locked: bool,
    }
    let mut maps: Vec<Map> = Vec::new();
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            let mut f = line.split_whitespace();
            let _range = f.next();
            let _perms = f.next();
            let _off = f.next();
            let _dev = f.next();
            let inode = f.next().unwrap_or("0");
            let path = f.next().unwrap_or("");
            maps.push(Map {
                start,
                end,
                file_backed: inode != "0" && path.starts_with('/'),
                rss_kb: 0,
                anon_kb: u64::MAX,
                locked: false,
            });
            continue;
        }
        let Some(m) = maps.last_mut() else { continue };
        let kb = |l: &str| -> u64 {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX)
        };
        if line.starts_with("Rss:") {
            m.rss_kb = kb(line);
        } else if line.starts_with("Anonymous:") {
            m.anon_kb = kb(line);
        } else if line.starts_with("Locked:") {
            m.locked = kb(line) != 0;
        }
    }
    let mut released = 0;
    for m in maps {
        if !m.file_backed || m.anon_kb != 0 || m.rss_kb == 0 || m.locked {
            continue;
        }
        // SAFETY: the range is a whole mapping of this process, backed by a file
        // and holding no anonymous pages, so every resident page is an unmodified
        // page-cache page: dropping it changes no content, the next access faults
        // the same bytes back in from the file.
        let r = unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            )
        };
        if r == 0 {
            released += m.rss_kb * 1024;
        }
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    #[test]
    fn release_keeps_process_working() {
        let n = super::release_clean_file_pages().unwrap();
        assert!(n > 0);
        // Code and data still work after their pages were dropped.
        let v: Vec<String> = (0..100).map(|i| format!("{i}")).collect();
        assert_eq!(v[42], "42");
    }
}
