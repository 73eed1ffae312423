//! What classic-API build clients see: `shmsize` / `--shm-size` for RUN
//! steps, and the classic builder's output and intermediate images.

use pier_tests::tar::{build as tar, Entry};
use pier_tests::TestDaemon;

/// A context directory with one Dockerfile, removed when dropped.
struct Context(std::path::PathBuf);

impl Context {
    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn context(dockerfile: &str) -> Context {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("pier-bclient-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    Context(dir)
}

/// `POST /build` with a context holding only `dockerfile`; status and the JSON messages.
fn api_build(d: &TestDaemon, query: &str, dockerfile: &str) -> (u16, Vec<serde_json::Value>) {
    let body = tar(&[Entry::File {
        name: "Dockerfile",
        data: dockerfile.as_bytes(),
    }]);
    let r = d.http(
        "POST",
        &format!("/build?{query}"),
        Some("application/x-tar"),
        &body,
    );
    let msgs = r
        .text()
        .split("\r\n")
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    (r.status, msgs)
}

/// The size of the tmpfs on /dev/shm as the RUN step saw it, from `/proc/mounts`.
const SHM_PROBE: &str = "FROM busybox\nRUN grep ' /dev/shm ' /proc/mounts > /shm.txt\n";

fn shm_size_kb(mounts_line: &str) -> String {
    mounts_line
        .split(&[',', ' '][..])
        .find_map(|o| o.strip_prefix("size="))
        .unwrap_or_else(|| panic!("no size= in {mounts_line:?}"))
        .to_string()
}

#[test]
fn run_steps_get_the_asked_shm_size() {
    let d = TestDaemon::with_busybox();
    // docker-py's test_build_shmsize: `shmsize` in bytes on the API.
    let (status, msgs) = api_build(&d, "t=shm-api&shmsize=134217728", SHM_PROBE);
    assert_eq!(status, 200, "{msgs:?}");
    assert!(
        msgs.iter().any(|m| m.pointer("/aux/ID").is_some()),
        "{msgs:?}"
    );
    let out = d.pier_ok(&["run", "--rm", "shm-api", "cat", "/shm.txt"]);
    assert_eq!(shm_size_kb(&out), "131072k", "{out}");

    // The CLI flag takes units, as docker's.
    let c = context(SHM_PROBE);
    d.pier_ok(&[
        "build",
        "-q",
        "--no-cache",
        "--shm-size",
        "32m",
        "-t",
        "shm-cli",
        c.arg(),
    ]);
    let out = d.pier_ok(&["run", "--rm", "shm-cli", "cat", "/shm.txt"]);
    assert_eq!(shm_size_kb(&out), "32768k", "{out}");

    // Without it: the runtime's 64 MB, as Docker's.
    d.pier_ok(&["build", "-q", "--no-cache", "-t", "shm-default", c.arg()]);
    let out = d.pier_ok(&["run", "--rm", "shm-default", "cat", "/shm.txt"]);
    assert_eq!(shm_size_kb(&out), "65536k", "{out}");

    // Not a number of bytes: refused before anything runs.
    let (status, msgs) = api_build(&d, "shmsize=lots", SHM_PROBE);
    assert_eq!(status, 400, "{msgs:?}");
    d.assert_clean();
}
