//! What is mounted where, read from mountinfo, and unmounting it: shared by
//! the volume mounts, subpaths and removals.

use std::path::Path;

/// Whether something is mounted on `dir`, from mountinfo: a bind of a
/// directory on the same filesystem keeps the device number, so the
/// `stat` test of `fsops::is_mountpoint` cannot see it.
pub(crate) fn is_mounted(dir: &Path) -> bool {
    let mut want = String::new();
    for c in dir.display().to_string().chars() {
        match c {
            ' ' => want.push_str("\\040"),
            '\t' => want.push_str("\\011"),
            '\n' => want.push_str("\\012"),
            '\\' => want.push_str("\\134"),
            c => want.push(c),
        }
    }
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|info| {
            info.lines()
                .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
        })
        .unwrap_or(false)
}

/// Unmounts whatever is mounted on `dir` (a volume's `_data`); says whether
/// something still is.
pub(crate) fn unmount_dir(dir: &Path) -> bool {
    while is_mounted(dir) {
        if let Err(e) = pier_sys::unmount(dir, false) {
            tracing::warn!("{e}; detaching");
            if pier_sys::unmount(dir, true).is_err() {
                break;
            }
        }
    }
    is_mounted(dir)
}
