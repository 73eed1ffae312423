//! Helpers shared by the options_* tests of issue 15.
#![allow(dead_code)]

use pier_tests::TestDaemon;

pub fn run_d(d: &TestDaemon, args: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    d.pier_ok(&a).trim().to_string()
}

pub fn state(d: &TestDaemon, c: &str) -> (String, i64) {
    let v = d.inspect(c);
    (
        v["State"]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        v["RestartCount"].as_i64().unwrap_or(-1),
    )
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A directory under /tmp removed when dropped, also when a test fails.
pub struct TmpDir(pub std::path::PathBuf);

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn tmp_dir(tag: &str) -> TmpDir {
    let dir = std::path::PathBuf::from(format!(
        "/tmp/pier-opts-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    TmpDir(dir)
}
