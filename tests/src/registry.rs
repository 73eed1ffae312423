//! A plain-HTTP distribution registry (`docker-registry`) for push/pull tests,
//! inside a test daemon's network namespace so nothing leaves it.

use std::process::{Child, Stdio};
use std::time::Duration;

use crate::{wait_until, TestDaemon};

/// A distribution registry on 127.0.0.1:5000 inside the daemon's network
/// namespace, stopped when dropped.
pub struct Registry(Child);

impl Registry {
    pub fn start(d: &TestDaemon) -> Self {
        let dir = d.root.join("registry");
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:5000\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let child = d
            .in_netns("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let up = wait_until(Duration::from_secs(20), || {
            d.in_netns("bash")
                .args(["-c", "exec 3<>/dev/tcp/127.0.0.1/5000"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(up, "registry did not come up");
        Registry(child)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
