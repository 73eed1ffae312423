//! `--log-format text|json` and `--log-level` (and their daemon.json keys),
//! as dockerd: JSON is one logrus-shaped object per line.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pier_tests::{cmd, pier_bin, Input, OutputExt, TestDaemon};

/// A directory under /tmp removed when dropped, also when a test fails.
fn tmp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("pier-logfmt-{tag}-"))
        .tempdir_in("/tmp")
        .unwrap()
}

/// The log's lines as JSON objects; panics on a line that is not one.
fn json_lines(log: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str(l) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => panic!("not a JSON object: {l:?}\n{log}"),
        })
        .collect()
}

fn levels(lines: &[serde_json::Map<String, serde_json::Value>]) -> Vec<&str> {
    lines.iter().filter_map(|l| l["level"].as_str()).collect()
}

#[test]
fn json_log_lines_have_time_level_msg_and_fields() {
    let d = TestDaemon::start_with_args(&["--log-format", "json", "--log-level", "debug"]);
    d.import_busybox();
    d.pier_ok(&["run", "--rm", "busybox", "true"]);
    let _ = d.pier(&["inspect", "no-such-container"]);
    let log = d.log_tail(100_000);
    let lines = json_lines(&log);
    assert!(!lines.is_empty(), "an empty log");
    for l in &lines {
        let time = l["time"].as_str().unwrap_or_else(|| panic!("{l:?}"));
        assert!(time.contains('T') && time.ends_with('Z'), "{l:?}");
        assert!(l["msg"].is_string(), "{l:?}");
        assert!(
            matches!(
                l["level"].as_str(),
                Some("trace" | "debug" | "info" | "warning" | "error")
            ),
            "{l:?}"
        );
    }
    let lv = levels(&lines);
    assert!(lv.contains(&"debug") && lv.contains(&"info"), "{lv:?}");
    // Fields of an event sit beside msg, as logrus writes them.
    assert!(
        lines.iter().any(|l| l
            .keys()
            .any(|k| !matches!(k.as_str(), "time" | "level" | "msg"))),
        "{log}"
    );
    d.assert_clean();
}

#[test]
fn daemon_json_sets_format_and_level() {
    let dir = tmp_dir("file");
    let cfg = dir.path().join("daemon.json");
    std::fs::write(&cfg, r#"{"log-format":"json","log-level":"warn"}"#).unwrap();
    let d = TestDaemon::start_with_args(&["--config-file", cfg.to_str().unwrap()]);
    d.import_busybox();
    d.pier_ok(&["run", "--rm", "busybox", "true"]);
    let log = d.log_tail(100_000);
    // Nothing under warn; whatever is there is JSON.
    let lines = json_lines(&log);
    for lv in levels(&lines) {
        assert!(matches!(lv, "warning" | "error"), "{log}");
    }
    drop(d);

    // The default: text, with info lines.
    let d = TestDaemon::start_with_args(&["--log-format", "text"]);
    d.import_busybox();
    let log = d.log_tail(100_000);
    assert!(log.contains(" INFO "), "{log}");
    assert!(!log.trim_start().starts_with('{'), "{log}");
    d.assert_clean();
}

/// `pier daemon` with `cfg` as its config file and `flags`, expected to
/// refuse to start; its stderr.
fn daemon_refuses(dir: &Path, cfg: &str, flags: &[&str]) -> String {
    let file = dir.join("daemon.json");
    std::fs::write(&file, cfg).unwrap();
    let mut c = Command::new(pier_bin());
    c.arg("daemon")
        .arg("--config-file")
        .arg(&file)
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("-H")
        .arg(format!("unix://{}", dir.join("s.sock").display()))
        .args(flags);
    let o = cmd::run(c, Input::Null, Duration::from_secs(20));
    assert_ne!(o.code(), 0, "{}", o.describe());
    assert!(
        !dir.join("data").exists(),
        "a refused config touches nothing"
    );
    o.err()
}

#[test]
fn unknown_formats_and_conflicts_are_refused() {
    let dir = tmp_dir("bad");
    let e = daemon_refuses(dir.path(), "{}", &["--log-format", "xml"]);
    assert!(e.contains("unknown log format: xml"), "{e}");
    let e = daemon_refuses(dir.path(), r#"{"log-format":"logfmt"}"#, &[]);
    assert!(e.contains("unknown log format: logfmt"), "{e}");
    let e = daemon_refuses(
        dir.path(),
        r#"{"log-format":"json"}"#,
        &["--log-format", "text"],
    );
    assert!(
        e.contains("specified both as a flag and in the configuration file: log-format: (from flag: text, from file: json)"),
        "{e}"
    );
    let e = daemon_refuses(dir.path(), "{}", &["--log-level", "loud"]);
    assert!(e.contains("unable to parse logging level: loud"), "{e}");
}
