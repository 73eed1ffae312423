//! Volumes end to end: named volumes keep data across containers (daemon restarts are
//! in network.rs), new volumes get the image's content, `--volumes-from`, and `rm -v`
//! takes anonymous volumes only.

#[allow(dead_code)]
mod network_util;

use network_util::{sh_c, w};
use pier_tests::{OutputExt, TestDaemon};

fn volumes(d: &TestDaemon) -> Vec<String> {
    let mut v: Vec<String> = d
        .pier_ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn named_volumes_keep_data_and_rm_v_takes_anonymous_ones_only() {
    let d = TestDaemon::with_busybox();
    sh_c(&d, "run --rm -v data:/data busybox", "echo one > /data/f");
    assert_eq!(
        d.pier_ok(&w(
            "run --rm --mount type=volume,src=data,dst=/d busybox cat /d/f"
        )),
        "one\n"
    );
    // A new, empty named volume gets the image's files at its mount point.
    let out = d.pier_ok(&w("run --rm -v etc:/etc busybox cat /etc/group"));
    assert!(out.starts_with("root:x:0:"), "{out}");

    // --volumes-from shares both kinds; rm -v takes only the anonymous one.
    sh_c(
        &d,
        "run --name c1 -v keep:/k -v /anon busybox",
        "echo k > /k/f; echo a > /anon/f",
    );
    let v = d.inspect("c1");
    let anon = v["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["Destination"] == "/anon")
        .and_then(|m| m["Name"].as_str())
        .unwrap_or_else(|| panic!("no /anon mount: {}", v["Mounts"]))
        .to_string();
    assert_eq!(
        anon.len(),
        64,
        "anonymous volumes have 64-hex names: {anon}"
    );
    assert_eq!(
        d.pier_ok(&w("run --rm --volumes-from c1 busybox cat /k/f /anon/f")),
        "k\na\n"
    );
    // In use: refused.
    let o = d.pier(&["volume", "rm", "keep"]);
    assert_ne!(o.code(), 0, "{}", o.describe());
    assert!(o.err().contains("in use"), "{}", o.describe());
    assert_eq!(volumes(&d), {
        let mut w = vec![anon.clone(), "data".into(), "etc".into(), "keep".into()];
        w.sort();
        w
    });
    d.pier_ok(&["rm", "-v", "c1"]);
    assert_eq!(volumes(&d), ["data", "etc", "keep"]);
    assert_eq!(d.pier_ok(&w("run --rm -v keep:/k busybox cat /k/f")), "k\n");
    // Plain rm keeps anonymous volumes too.
    d.pier_ok(&w("run --name c2 -v /anon2 busybox true"));
    d.pier_ok(&["rm", "c2"]);
    assert_eq!(volumes(&d).len(), 4);
    d.pier_ok(&["volume", "prune", "-f"]);
    assert_eq!(volumes(&d), ["data", "etc", "keep"]);
    d.pier_ok(&w("volume rm data etc keep"));
    assert!(volumes(&d).is_empty());
    d.assert_clean();
}
