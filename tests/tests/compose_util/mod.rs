//! Helpers shared by the compose tests: a project directory, `pier compose`
//! in it, and a few inspections.
#![allow(dead_code)]

use pier_tests::cmd;
use pier_tests::{Input, OutputExt, TestDaemon, CMD_TIMEOUT};
use std::path::{Path, PathBuf};
use std::process::Output;

/// A project directory (named `name`, so the project is too), removed when dropped.
pub struct Dir(PathBuf);

impl Dir {
    pub fn new(name: &str, files: &[(&str, &str)]) -> Dir {
        let root = std::env::temp_dir().join(format!("pier-compose-{}-{name}", std::process::id()));
        let dir = root.join(name);
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&dir).unwrap();
        let d = Dir(dir);
        for (f, text) in files {
            d.write(f, text);
        }
        d
    }

    pub fn write(&self, f: &str, text: &str) {
        let p = self.0.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        if text.starts_with("#!") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

pub fn compose(d: &TestDaemon, dir: &Dir, args: &[&str]) -> Output {
    let mut c = d.pier_cmd();
    c.arg("compose").args(args).current_dir(dir.path());
    let o = cmd::run(c, Input::Null, CMD_TIMEOUT * 3);
    eprintln!("$ pier compose {}\n{}", args.join(" "), o.describe());
    o
}

pub fn compose_ok(d: &TestDaemon, dir: &Dir, args: &[&str]) -> Output {
    let o = compose(d, dir, args);
    assert!(
        o.status.success(),
        "pier compose {args:?}: {}\n--- daemon log ---\n{}",
        o.describe(),
        d.log_tail(30)
    );
    o
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn id_of(d: &TestDaemon, name: &str) -> String {
    d.inspect(name)["Id"].as_str().unwrap().to_string()
}

pub fn inspect(d: &TestDaemon, kind: &str, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&d.pier_ok(&[kind, "inspect", name])).unwrap();
    v[0].clone()
}

pub fn names(d: &TestDaemon) -> String {
    d.pier_sorted(&["ps", "-a", "--format", "{{.Names}}"])
}
