//! The pre-defined networks cannot be removed, and the answer is moby's:
//! 403 Forbidden with "<name> is a pre-defined network and cannot be removed"
//! (docker's CLI and clients tell a permission error from a bad request).

use pier_tests::{OutputExt, TestDaemon};

#[test]
fn predefined_networks_are_forbidden_to_remove() {
    let d = TestDaemon::start();
    for name in ["bridge", "host", "none"] {
        let r = d.http("DELETE", &format!("/networks/{name}"), None, b"");
        assert_eq!(r.status, 403, "DELETE /networks/{name}: {}", r.text());
        assert!(
            r.text().contains(&format!(
                "{name} is a pre-defined network and cannot be removed"
            )),
            "{}",
            r.text()
        );
        let o = d.pier(&["network", "rm", name]);
        assert!(!o.status.success(), "{}", o.describe());
    }
    let names = d.pier_ok(&["network", "ls", "--format", "{{.Name}}"]);
    for name in ["bridge", "host", "none"] {
        assert!(names.lines().any(|l| l == name), "{names}");
    }
    d.assert_clean();
}
