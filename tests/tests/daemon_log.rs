//! The daemon's own log: plain text when it goes to a file (no terminal colour
//! codes), as dockerd writes it.

use pier_tests::TestDaemon;

#[test]
fn a_daemon_log_written_to_a_file_has_no_colour_codes() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&["run", "--rm", "busybox", "true"]);
    // An error line too: levels are where colours were.
    let _ = d.pier(&["inspect", "no-such-container"]);
    let log = d.log_tail(10_000);
    assert!(log.contains("INFO"), "the log has lines:\n{log}");
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a log file:\n{log:?}"
    );
    d.assert_clean();
}
