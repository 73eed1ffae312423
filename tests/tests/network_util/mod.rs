//! Helpers shared by the network and volume tests.

use pier_tests::TestDaemon;

/// `pier <args> sh -c <script>`, which must succeed; its stdout.
pub fn sh_c(d: &TestDaemon, args: &str, script: &str) -> String {
    let mut argv = w(args);
    argv.extend(["sh", "-c", script]);
    d.pier_ok(&argv)
}

/// The words of a command line without quoting (for argument lists).
pub fn w(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}
