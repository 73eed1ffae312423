//! Reading a container's log files in bounded memory: the rotated files
//! (`<log>.N`, `<log>.N.gz`) oldest first, then the live file; `--tail`
//! reads backwards from the end in blocks; following survives rotation.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Read size when scanning backwards for line starts.
const BLOCK: usize = 64 * 1024;

/// A rotated file of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rotated {
    pub path: PathBuf,
    pub gz: bool,
}

/// The rotated files of `live`, oldest first. While the shim compresses
/// `.1`, both `.1` and `.1.gz` may exist: the plain one is read.
// Log readers run on blocking threads (logs.rs spawns them there).
#[allow(clippy::disallowed_methods)]
pub(crate) fn rotated_files(live: &Path) -> Vec<Rotated> {
    let (Some(dir), Some(name)) = (live.parent(), live.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let mut found: Vec<(u32, bool, PathBuf)> = Vec::new();
    for e in rd.flatten() {
        let f = e.file_name();
        let Some(rest) = f.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let (num, gz) = match rest.strip_suffix(".gz") {
            Some(n) => (n, true),
            None => (rest, false),
        };
        if let Ok(n) = num.parse::<u32>() {
            found.push((n, gz, e.path()));
        }
    }
    // Highest number (oldest) first; plain before gz for the same number.
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    found.dedup_by_key(|f| f.0);
    found
        .into_iter()
        .map(|(_, gz, path)| Rotated { path, gz })
        .collect()
}

/// The byte range `[start, stop)` of the last `n` lines of `f` up to `end`.
/// With `complete` the bytes after the last newline count as a line (a
/// finished file); otherwise they are a line still being written and `stop`
/// is just after the last newline.
pub(crate) fn tail_range(
    f: &File,
    end: u64,
    n: usize,
    complete: bool,
) -> std::io::Result<(u64, u64)> {
    let mut stop = complete.then_some(end);
    if n == 0 && complete {
        return Ok((end, end));
    }
    let mut seen = 0usize;
    let mut pos = end;
    let mut buf = vec![0u8; BLOCK];
    while pos > 0 {
        let len = (BLOCK as u64).min(pos) as usize;
        pos -= len as u64;
        f.read_exact_at(&mut buf[..len], pos)?;
        for i in (0..len).rev() {
            if buf[i] != b'\n' {
                continue;
            }
            let o = pos + i as u64;
            match stop {
                None => {
                    stop = Some(o + 1);
                    if n == 0 {
                        return Ok((o + 1, o + 1));
                    }
                }
                // The newline ending the last line starts nothing.
                Some(s) if o + 1 == s => {}
                Some(s) => {
                    seen += 1;
                    if seen == n {
                        return Ok((o + 1, s));
                    }
                }
            }
        }
    }
    Ok((0, stop.unwrap_or(0)))
}

/// The lines of `r` (each with its newline, when it has one).
fn lines_of(r: impl Read, mut each: impl FnMut(Vec<u8>) -> bool) -> std::io::Result<()> {
    let mut r = BufReader::with_capacity(BLOCK, r);
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if !each(line) {
            return Ok(());
        }
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    File::open(path).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// The last `n` lines of a rotated file.
fn tail_rotated(r: &Rotated, n: usize) -> std::io::Result<VecDeque<Vec<u8>>> {
    let f = match open(&r.path) {
        Ok(f) => f,
        // Rotated away meanwhile.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(VecDeque::new()),
        Err(e) => return Err(e),
    };
    let mut out = VecDeque::new();
    if r.gz {
        // A gzip stream reads forward only: keep the last n lines.
        lines_of(flate2::read::GzDecoder::new(f), |l| {
            if out.len() == n {
                out.pop_front();
            }
            if n > 0 {
                out.push_back(l);
            }
            true
        })?;
    } else {
        let end = f.metadata()?.len();
        let (start, stop) = tail_range(&f, end, n, true)?;
        let mut r = f;
        r.seek(SeekFrom::Start(start))?;
        lines_of(r.take(stop - start), |l| {
            out.push_back(l);
            true
        })?;
    }
    Ok(out)
}

/// Calls `each` with every line of every rotated file, oldest first; stops
/// when it returns false.
pub(crate) fn read_rotated(
    files: &[Rotated],
    mut each: impl FnMut(Vec<u8>) -> bool,
) -> std::io::Result<bool> {
    for r in files {
        let f = match open(&r.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut go_on = true;
        let res = if r.gz {
            lines_of(flate2::read::GzDecoder::new(f), |l| {
                go_on = each(l);
                go_on
            })
        } else {
            lines_of(f, |l| {
                go_on = each(l);
                go_on
            })
        };
        res?;
        if !go_on {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Calls `each` with every line of an open (uncompressed) file; false once
/// `each` returned false.
pub(crate) fn read_rotated_file(
    f: File,
    mut each: impl FnMut(Vec<u8>) -> bool,
) -> std::io::Result<bool> {
    let mut go_on = true;
    lines_of(f, |l| {
        go_on = each(l);
        go_on
    })?;
    Ok(go_on)
}

/// The last `n` complete lines before `end` of the live file `live`, taking
/// older ones from the rotated files when the live file has fewer. Returns
/// the lines oldest first and the offset in `live` after the last of them.
pub(crate) fn tail(
    live: &File,
    end: u64,
    rotated: &[Rotated],
    n: usize,
) -> std::io::Result<(Vec<Vec<u8>>, u64)> {
    let (start, stop) = tail_range(live, end, n, false)?;
    let mut newest = Vec::new();
    let mut r = live.try_clone()?;
    r.seek(SeekFrom::Start(start))?;
    lines_of(r.take(stop - start), |l| {
        newest.push(l);
        true
    })?;
    let mut older: Vec<VecDeque<Vec<u8>>> = Vec::new();
    let mut have = newest.len();
    if start == 0 {
        for f in rotated.iter().rev() {
            if have >= n {
                break;
            }
            let part = tail_rotated(f, n - have)?;
            have += part.len();
            older.push(part);
        }
    }
    let mut all: Vec<Vec<u8>> = Vec::with_capacity(have);
    for part in older.into_iter().rev() {
        all.extend(part);
    }
    all.extend(newest);
    Ok((all, stop))
}

/// The device and inode of a file, which rotation (a rename) keeps.
fn identity(m: &std::fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// The rotated files written after `old` and before `new` (both open; `new`
/// may itself have been rotated already), opened and in order. None when
/// `old` cannot be found any more (compressed or dropped): nothing to add.
///
/// Names shift under a busy writer while we look, so files are opened first and
/// told apart by inode afterwards. A rotation moves every file one number up,
/// highest first; walking `.1`, `.2`, ... in the same direction sees a moving
/// file again (a duplicate, skipped) but never steps over one, so the order of
/// first sightings is the files' age, newest first. A rename in flight leaves
/// one number empty for a moment, so a gap alone does not end the walk.
pub(crate) fn between(live: &Path, old: &File, new: &File) -> Option<Vec<File>> {
    const GAPS: u32 = 3;
    const MOST: u32 = 100_000;
    let old = identity(&old.metadata().ok()?);
    let new = identity(&new.metadata().ok()?);
    let name = live.file_name()?.to_str()?;
    let mut newest_first: Vec<((u64, u64), File)> = Vec::new();
    let mut missing = 0;
    let mut found_old = false;
    for n in 1..MOST {
        let Ok(f) = File::open(live.with_file_name(format!("{name}.{n}"))) else {
            missing += 1;
            if missing > GAPS {
                break;
            }
            continue;
        };
        missing = 0;
        let id = identity(&f.metadata().ok()?);
        if id == old {
            found_old = true;
            break;
        }
        if !newest_first.iter().any(|(seen, _)| *seen == id) {
            newest_first.push((id, f));
        }
    }
    if !found_old {
        return None;
    }
    // Files newer than `new` (rotated since it was opened) come before it.
    let after_new = newest_first
        .iter()
        .position(|(id, _)| *id == new)
        .map_or(0, |i| i + 1);
    Some(
        newest_first
            .into_iter()
            .skip(after_new)
            .rev()
            .map(|(_, f)| f)
            .collect(),
    )
}

/// Whether `live` (open) is still the file at `path`: false after the shim
/// rotated it.
pub(crate) fn same_file(live: &File, path: &Path) -> bool {
    match (live.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn strs(v: &[Vec<u8>]) -> Vec<String> {
        v.iter()
            .map(|l| String::from_utf8(l.clone()).unwrap())
            .collect()
    }

    #[test]
    fn tail_of_one_file() {
        let d = tempfile::tempdir().unwrap();
        let p = file_with(d.path(), "l", b"a\nb\nc\nd\npartial");
        let f = File::open(&p).unwrap();
        let end = f.metadata().unwrap().len();
        let (lines, stop) = tail(&f, end, &[], 2).unwrap();
        assert_eq!(strs(&lines), ["c\n", "d\n"]);
        assert_eq!(stop, 8, "the partial line is left for a follower");
        let (lines, _) = tail(&f, end, &[], 100).unwrap();
        assert_eq!(strs(&lines), ["a\n", "b\n", "c\n", "d\n"]);
        let (lines, stop) = tail(&f, end, &[], 0).unwrap();
        assert!(lines.is_empty());
        assert_eq!(stop, 8);
    }

    #[test]
    fn tail_keeps_crlf_and_empty_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = file_with(d.path(), "l", b"a\r\n\n\r\nb\r\n");
        let f = File::open(&p).unwrap();
        let (lines, _) = tail(&f, 9, &[], 3).unwrap();
        assert_eq!(strs(&lines), ["\n", "\r\n", "b\r\n"]);
    }

    #[test]
    fn tail_across_blocks_and_files() {
        let d = tempfile::tempdir().unwrap();
        let long = "x".repeat(BLOCK + 7);
        let live = file_with(d.path(), "c.log", format!("{long}\nlast\n").as_bytes());
        // .2 is compressed, .1 plain without a final newline.
        file_with(d.path(), "c.log.1", b"one\ntwo");
        let gz = File::create(d.path().join("c.log.2.gz")).unwrap();
        let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
        enc.write_all(b"old1\nold2\n").unwrap();
        enc.finish().unwrap();
        file_with(d.path(), "c.log.1.gz.tmp", b"ignored\n");
        let rot = rotated_files(&live);
        assert_eq!(
            rot.iter()
                .map(|r| r.path.file_name().unwrap().to_str().unwrap())
                .collect::<Vec<_>>(),
            ["c.log.2.gz", "c.log.1"]
        );
        let f = File::open(&live).unwrap();
        let end = f.metadata().unwrap().len();
        let (lines, _) = tail(&f, end, &rot, 5).unwrap();
        assert_eq!(
            strs(&lines),
            ["old2\n", "one\n", "two", &format!("{long}\n"), "last\n"]
        );
        let mut all = Vec::new();
        read_rotated(&rot, |l| {
            all.push(l);
            true
        })
        .unwrap();
        assert_eq!(strs(&all), ["old1\n", "old2\n", "one\n", "two"]);
    }

    #[test]
    fn files_between_two_rotations_are_found() {
        let d = tempfile::tempdir().unwrap();
        let live = file_with(d.path(), "c.log", b"a\n");
        let old = File::open(&live).unwrap();
        // Three rotations since `old` was live; `new` is .1 by now.
        std::fs::rename(&live, d.path().join("c.log.3")).unwrap();
        file_with(d.path(), "c.log.4", b"z\n");
        file_with(d.path(), "c.log.2", b"b\n");
        let new_path = file_with(d.path(), "c.log.1", b"c\n");
        let new = File::open(&new_path).unwrap();
        file_with(d.path(), "c.log", b"d\n");
        let mid = between(&live, &old, &new).unwrap();
        assert_eq!(mid.len(), 1);
        let mut s = String::new();
        (&mid[0]).read_to_string(&mut s).unwrap();
        assert_eq!(s, "b\n");
        // `new` still live: everything after `old`.
        let new = File::open(&live).unwrap();
        assert_eq!(between(&live, &old, &new).unwrap().len(), 2);
    }

    #[test]
    fn a_rename_in_flight_does_not_hide_older_files() {
        let d = tempfile::tempdir().unwrap();
        let live = file_with(d.path(), "c.log", b"a\n");
        let old = File::open(&live).unwrap();
        std::fs::rename(&live, d.path().join("c.log.4")).unwrap();
        file_with(d.path(), "c.log.3", b"b\n");
        // .2 is being renamed to .3's old place: for a moment there is no .2,
        // and .1 is the same file seen again a moment later.
        let newer = file_with(d.path(), "c.log.1", b"c\n");
        let new = file_with(d.path(), "c.log", b"d\n");
        let new = File::open(&new).unwrap();
        let mid = between(&live, &old, &new).unwrap();
        let texts: Vec<String> = mid
            .iter()
            .map(|mut f| {
                let mut s = String::new();
                f.read_to_string(&mut s).unwrap();
                s
            })
            .collect();
        assert_eq!(texts, ["b\n", "c\n"]);
        drop(newer);
    }

    #[test]
    fn plain_wins_over_gz_being_written() {
        let d = tempfile::tempdir().unwrap();
        let live = file_with(d.path(), "c.log", b"");
        file_with(d.path(), "c.log.1", b"x\n");
        file_with(d.path(), "c.log.1.gz", b"half");
        let rot = rotated_files(&live);
        assert_eq!(rot.len(), 1);
        assert!(!rot[0].gz);
    }
}
