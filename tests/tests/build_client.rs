//! What classic-API build clients see: `shmsize` / `--shm-size` for RUN
//! steps, and the classic builder's output and intermediate images.

use pier_tests::tar::{build as tar, Entry};
use pier_tests::{OutputExt, TestDaemon};

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
    // (No body: the answer may come before a body is read.)
    let r = d.http("POST", "/build?shmsize=lots", None, b"");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("invalid shmsize"), "{}", r.text());
    d.assert_clean();
}

/// The short IDs of the ` ---> ID` lines, in order.
fn step_ids(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix(" ---> "))
        .filter(|r| r.len() == 12 && r.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string)
        .collect()
}

fn image_ids(d: &TestDaemon, args: &[&str]) -> Vec<String> {
    d.pier_ok(&[&["images", "-q", "--no-trunc"], args].concat())
        .lines()
        .map(|l| l.trim_start_matches("sha256:")[..12].to_string())
        .collect()
}

#[test]
fn classic_output_names_images_that_exist_and_rmi_takes_the_chain() {
    let d = TestDaemon::with_busybox();
    let busybox = d.inspect("busybox")["Id"].as_str().unwrap().to_string();
    let c = context("FROM busybox\nENV A=1\nRUN echo hi > /f\nCOPY x /x\nCMD [\"cat\", \"/f\"]\n");
    std::fs::write(c.0.join("x"), "x").unwrap();

    // stdout is a pipe here: the classic builder's text.
    let out = d.pier_ok(&["build", "-t", "classic", c.arg()]);
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("Reading build context in place") && first.ends_with(c.arg()),
        "{out}"
    );
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("Step ")).collect();
    assert_eq!(
        steps,
        [
            "Step 1/5 : FROM busybox",
            "Step 2/5 : ENV A=1",
            "Step 3/5 : RUN echo hi > /f",
            "Step 4/5 : COPY x /x",
            "Step 5/5 : CMD [\"cat\", \"/f\"]",
        ],
        "{out}"
    );
    let ids = step_ids(&out);
    assert_eq!(ids.len(), 5, "{out}");
    assert_eq!(ids[0], busybox.trim_start_matches("sha256:")[..12], "{out}");
    let built = out
        .lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(built, ids[4], "{out}");
    assert!(
        out.ends_with("Successfully tagged classic:latest\n"),
        "{out}"
    );
    // Every step's image runs and inspects; each one's parent is the step before.
    for (i, id) in ids.iter().enumerate().skip(1) {
        let img = d.inspect(id);
        let parent = img["Parent"].as_str().unwrap();
        assert!(
            parent
                .trim_start_matches("sha256:")
                .starts_with(&ids[i - 1]),
            "{i}: {img}"
        );
        assert_eq!(
            d.pier_ok(&["run", "--rm", id, "sh", "-c", "echo $A"]),
            "1\n"
        );
    }
    assert_eq!(d.pier_ok(&["run", "--rm", &ids[4]]), "hi\n");
    // As Docker: the intermediate images show with -a only, untagged.
    let all = image_ids(&d, &["-a"]);
    let shown = image_ids(&d, &[]);
    for id in &ids[1..4] {
        assert!(
            all.contains(id) && !shown.contains(id),
            "{id}: {all:?} {shown:?}"
        );
    }
    assert!(shown.contains(&ids[4]));
    // An image others were built on cannot go by ID.
    let o = d.pier(&["rmi", &ids[2]]);
    assert!(!o.status.success(), "{}", o.out());
    assert!(
        o.err().contains("image has dependent child images"),
        "{}",
        o.err()
    );

    // --no-prune leaves the chain: the step before becomes a dangling head.
    let out = d.pier_ok(&["rmi", "--no-prune", "classic"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(image_ids(&d, &[]).contains(&ids[3]));
    let out = d.pier_ok(&["rmi", &ids[3]]);
    assert_eq!(out.lines().count(), 3, "{out}");
    // Built again from the cache: the same images.
    let out = d.pier_ok(&["build", "-t", "classic", c.arg()]);
    assert_eq!(step_ids(&out), ids, "{out}");

    // rmi of the result takes the untagged chain down to busybox with it.
    let out = d.pier_ok(&["rmi", "classic"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Untagged: classic:latest", "{out}");
    let deleted: Vec<&str> = lines[1..]
        .iter()
        .map(|l| {
            l.strip_prefix("Deleted: sha256:")
                .unwrap_or_else(|| panic!("{out}"))
        })
        .collect();
    assert_eq!(deleted.len(), 4, "{out}");
    for (d, id) in deleted.iter().zip(ids[1..].iter().rev()) {
        assert!(d.starts_with(id.as_str()), "{out}");
    }
    assert_eq!(
        image_ids(&d, &["-a"]),
        [busybox.trim_start_matches("sha256:")[..12].to_string()]
    );

    // From the cache, the same images again; sent as a tar this time, with its size.
    let o = {
        let mut cmd = d.pier_cmd();
        cmd.args(["build", c.arg()]).env("PIER_BUILD_TAR", "1");
        pier_tests::cmd::run(cmd, pier_tests::Input::Null, pier_tests::CMD_TIMEOUT)
    };
    let out = o.out();
    assert!(o.status.success(), "{out}");
    let first = out.lines().next().unwrap();
    let size = first
        .strip_prefix("Sending build context to Pier daemon  ")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(size.ends_with("kB") && !size.starts_with('0'), "{out}");
    assert_eq!(out.matches(" ---> Using cache").count(), 4, "{out}");
    assert_eq!(step_ids(&out), ids, "{out}");
    // Untagged, the result is dangling: prune takes it and its chain.
    let pruned = d.pier_ok(&["image", "prune", "-f"]);
    for id in &ids[1..] {
        assert!(
            pruned.contains(&format!("deleted: sha256:{id}")),
            "{pruned}"
        );
    }
    assert_eq!(
        image_ids(&d, &["-a"]),
        [busybox.trim_start_matches("sha256:")[..12].to_string()]
    );
    d.assert_clean();
}
