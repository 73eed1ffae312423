//! The container's mounts: Docker's defaults, then tmpfs and bind mounts.

use serde_json::{json, Value};

use super::{BindMount, Namespace, Shm, SpecOptions, TmpfsMount};

fn mount(dst: &str, typ: &str, src: &str, opts: &[&str]) -> Value {
    json!({"destination": dst, "type": typ, "source": src, "options": opts})
}

fn default_mounts(o: &SpecOptions) -> Vec<Value> {
    let sys_ro: &[&str] = if o.privileged {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    let mut m = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount("/sys", "sysfs", "sysfs", sys_ro),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", sys_ro),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
    ];
    match &o.shm {
        Shm::Own(size) => m.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &[
                "nosuid",
                "noexec",
                "nodev",
                "mode=1777",
                &format!("size={size}"),
            ],
        )),
        Shm::None => {}
        // The host's or a donor's /dev/shm goes with its IPC namespace.
        Shm::Bind(src) => m.push(json!({"destination": "/dev/shm", "type": "bind",
            "source": src, "options": ["rbind", "rw", "rprivate"]})),
    }
    if o.ipc == Namespace::Host {
        // The host's message queues are already where the host mounted them.
        m.retain(|x| x["destination"] != "/dev/mqueue");
    }
    m
}

fn tmpfs_mount(t: &TmpfsMount) -> Value {
    let mut opts: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
    for o in &t.options {
        let o = o.trim();
        if o.is_empty() {
            continue;
        }
        // A user flag replaces its opposite default (exec vs noexec, ...).
        let opposite = o
            .strip_prefix("no")
            .map(String::from)
            .unwrap_or(format!("no{o}"));
        opts.retain(|x| *x != opposite && x != o);
        opts.push(o.to_string());
    }
    json!({"destination": t.destination, "type": "tmpfs", "source": "tmpfs", "options": opts})
}

fn bind_mount(b: &BindMount) -> Value {
    // Read-only means the mounts below the source too (`rro`, mount_setattr
    // with AT_RECURSIVE), as Docker does from API 1.44 on kernels >= 5.12.
    let options = if b.readonly {
        json!(["rbind", "ro", "rro", "rprivate"])
    } else {
        json!(["rbind", "rw", "rprivate"])
    };
    json!({
        "destination": b.destination,
        "type": "bind",
        "source": b.source,
        "options": options,
    })
}

/// All mounts of the spec, parents before children.
pub(super) fn mounts(o: &SpecOptions) -> Vec<Value> {
    // User mounts replace defaults at the same destination, then parents go first.
    let mut user_mounts: Vec<Value> = o.tmpfs.iter().map(tmpfs_mount).collect();
    user_mounts.extend(o.binds.iter().map(bind_mount));
    let mut mounts: Vec<Value> = default_mounts(o)
        .into_iter()
        .filter(|d| {
            !user_mounts
                .iter()
                .any(|u| u["destination"] == d["destination"])
        })
        .collect();
    mounts.extend(user_mounts);
    // Stable sort by depth keeps the order among equals.
    mounts.sort_by_key(|m| {
        m["destination"]
            .as_str()
            .map(|d| d.trim_end_matches('/').matches('/').count())
            .unwrap_or(0)
    });
    mounts
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::spec::tests::{opts, r#gen};
    use crate::spec::{BindMount, TmpfsMount};

    #[test]
    fn mounts_user_override_and_order() {
        let mut o = opts();
        o.readonly_rootfs = true;
        o.tmpfs = vec![TmpfsMount {
            destination: "/run".into(),
            options: vec!["exec".into(), "size=1m".into()],
        }];
        o.binds = vec![
            BindMount {
                source: "/tmp/x/hosts".into(),
                destination: "/etc/hosts".into(),
                readonly: false,
            },
            BindMount {
                source: "/tmp/shm".into(),
                destination: "/dev/shm".into(),
                readonly: true,
            },
        ];
        let v = r#gen(&o);
        assert_eq!(v["root"]["readonly"], true);
        let m = v["mounts"].as_array().unwrap();
        let shm: Vec<_> = m
            .iter()
            .filter(|x| x["destination"] == "/dev/shm")
            .collect();
        assert_eq!(shm.len(), 1);
        assert_eq!(shm[0]["type"], "bind");
        assert_eq!(shm[0]["options"], json!(["rbind", "ro", "rro", "rprivate"]));
        let run = m.iter().find(|x| x["destination"] == "/run").unwrap();
        assert_eq!(
            run["options"],
            json!(["nosuid", "nodev", "exec", "size=1m"])
        );
        let pos = |d: &str| m.iter().position(|x| x["destination"] == d).unwrap();
        assert!(pos("/dev") < pos("/dev/shm"));
        assert!(pos("/sys") < pos("/sys/fs/cgroup"));
    }
}
