//! Multi-layer images, as pulls and loads bring them, leave nothing behind
//! when removed.

use std::io::Write;
use std::process::{Command, Stdio};

use pier_tests::tar::{build, Entry};
use pier_tests::{Input, OutputExt, TestDaemon};

fn sha256_hex(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// A docker-archive of an image with `n` one-file layers.
fn archive(n: usize, tag: &str) -> Vec<u8> {
    let layers: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let name = format!("l{i}.txt");
            build(&[Entry::File {
                name: &name,
                data: format!("layer {i}\n").as_bytes(),
            }])
        })
        .collect();
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha256_hex(l)))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string();
    let config_name = format!("{}.json", sha256_hex(config.as_bytes()));
    let paths: Vec<String> = (0..n).map(|i| format!("l{i}/layer.tar")).collect();
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [tag],
        "Layers": paths,
    }])
    .to_string();
    let mut entries = vec![
        Entry::File {
            name: &config_name,
            data: config.as_bytes(),
        },
        Entry::File {
            name: "manifest.json",
            data: manifest.as_bytes(),
        },
    ];
    for (p, l) in paths.iter().zip(&layers) {
        entries.push(Entry::File { name: p, data: l });
    }
    build(&entries)
}

#[test]
fn removing_a_multi_layer_image_removes_every_snapshot() {
    let d = TestDaemon::start();
    // Six layers: their snapshots are listed in digest order, which is chain
    // order only by chance (1 in 720), so removal must order them itself.
    let tar = archive(6, "multi:layers");
    let out = d.pier_input(&["load"], Input::Bytes(&tar));
    assert_eq!(out.code(), 0, "{}", out.err());
    let snaps = d.data_root.join("snapshots/snapshots");
    let count = || {
        std::fs::read_dir(&snaps)
            .map(|r| r.count())
            .unwrap_or_else(|e| panic!("{}: {e}", snaps.display()))
    };
    assert_eq!(count(), 6, "one snapshot per layer");
    d.pier_ok(&["rmi", "multi:layers"]);
    assert_eq!(count(), 0, "snapshots left after rmi");
}
