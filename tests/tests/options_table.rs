//! docs/options.md's table of every `docker run`/`docker create` flag of
//! docker 28 (the list vendored in docs/docker28-run-flags.txt from the docker
//! CLI's reference) is kept true: every docker flag and every flag of Pier's
//! own CLI has a row, and each row's example does what the row says against
//! a real daemon (works: accepted; refused and n.a.: exit 125 with a message).

use std::collections::{BTreeMap, BTreeSet};

use pier_tests::{repo_root, OutputExt, TestDaemon};

#[derive(Debug)]
struct Row {
    short: Option<String>,
    status: String,
    example: Option<String>,
    notes: String,
}

/// long flag -> (short flag, commands that take it).
fn docker_flags() -> BTreeMap<String, (Option<String>, Vec<String>)> {
    let text = std::fs::read_to_string(repo_root().join("docs/docker28-run-flags.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "{l}");
            let short = (f[1] != "-").then(|| f[1].to_string());
            let cmds = f[2].split(',').map(str::to_string).collect();
            (f[0].to_string(), (short, cmds))
        })
        .collect()
}

/// The rows of the "Every flag" section of docs/options.md, by long flag.
fn table() -> BTreeMap<String, Row> {
    let text = std::fs::read_to_string(repo_root().join("docs/options.md")).unwrap();
    let section = text
        .split("\n## Every flag")
        .nth(1)
        .expect("docs/options.md has an `## Every flag` section");
    let section = section.split("\n## ").next().unwrap();
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `-")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(
            cells.len(),
            4,
            "a row has flag, status, example, notes: {line}"
        );
        let names: Vec<String> = cells[0]
            .split(", ")
            .map(|n| n.trim_matches('`').to_string())
            .collect();
        let long = names[0].clone();
        let row = Row {
            short: names.get(1).cloned(),
            status: cells[1].to_string(),
            example: Some(cells[2].trim_matches('`').to_string()).filter(|e| !e.is_empty()),
            notes: cells[3].to_string(),
        };
        assert!(
            rows.insert(long.clone(), row).is_none(),
            "two rows for {long}"
        );
    }
    rows
}

/// The long flags `pier <cmd> --help` lists.
fn pier_flags(cmd: &str) -> BTreeSet<String> {
    let o = std::process::Command::new(pier_tests::pier_bin())
        .args([cmd, "--help"])
        .output()
        .unwrap();
    assert!(o.status.success(), "pier {cmd} --help");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let t = l.trim_start();
            let t = t
                .strip_prefix('-')
                .filter(|_| t.len() > 2 && &t[2..3] == ",")
                .map_or(t, |_| t[3..].trim_start());
            t.strip_prefix("--").map(|r| {
                format!(
                    "--{}",
                    r.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                        .next()
                        .unwrap_or("")
                )
            })
        })
        .filter(|f| f.len() > 2)
        .collect()
}

#[test]
fn the_table_has_a_row_for_every_docker_flag_and_every_pier_flag() {
    let docker = docker_flags();
    let rows = table();
    assert!(docker.len() > 100, "{} docker flags", docker.len());
    let mut problems = Vec::new();
    for (long, (short, _)) in &docker {
        match rows.get(long) {
            None => problems.push(format!("{long}: no row in docs/options.md")),
            Some(r) if r.short != *short => problems.push(format!(
                "{long}: short flag {:?}, docker's is {short:?}",
                r.short
            )),
            Some(_) => {}
        }
    }
    let pier: BTreeSet<String> = pier_flags("run")
        .union(&pier_flags("create"))
        .cloned()
        .collect();
    for f in &pier {
        if !rows.contains_key(f) {
            problems.push(format!("{f}: Pier's CLI has it, the table has no row"));
        }
    }
    for (long, r) in &rows {
        if !docker.contains_key(long) && !pier.contains(long) {
            problems.push(format!("{long}: neither docker's nor Pier's"));
        }
        match r.status.as_str() {
            "works" if !pier.contains(long) => problems.push(format!(
                "{long}: marked works, but Pier's CLI has no such flag"
            )),
            "works" | "refused" | "n.a." => {}
            s => problems.push(format!("{long}: unknown status {s:?}")),
        }
        if r.example.is_none() && long != "--help" && !r.notes.contains("`options_") {
            problems.push(format!("{long}: neither an example nor a test named"));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/options.md:\n{}",
        problems.join("\n")
    );
}

/// Splits an example on spaces; single quotes group words.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A block device of this machine, for the throttling flags.
fn block_device() -> String {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            !["loop", "ram", "zram", "nbd"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .filter(|n| std::path::Path::new("/dev").join(n).exists())
        .collect();
    names.sort();
    let name = names.first().expect("no block device in /sys/block");
    format!("/dev/{name}")
}

#[test]
fn each_rows_example_does_what_the_row_says() {
    let d = TestDaemon::with_busybox();
    let dir = d.root.join("opts-table");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("env"), "A=1\n").unwrap();
    std::fs::write(dir.join("labels"), "a=b\n").unwrap();
    d.pier_ok(&["network", "create", "--subnet", "10.231.0.0/24", "optnet"]);
    d.pier_ok(&[
        "create", "--name", "donor", "-v", "/data", "busybox", "true",
    ]);
    let blockdev = block_device();
    let docker = docker_flags();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (long, r) in table() {
        let Some(ex) = &r.example else { continue };
        let cmds = docker.get(&long).map(|d| d.1.clone()).unwrap_or_default();
        let verb = if cmds.iter().any(|c| c == "create") {
            "create"
        } else {
            "run"
        };
        let mut args = vec![verb.to_string()];
        let ex = ex
            .replace("{dir}", dir.to_str().unwrap())
            .replace("{blockdev}", &blockdev);
        args.extend(words(&ex));
        args.extend(["busybox".to_string(), "true".to_string()]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = d.pier(&argv);
        checked += 1;
        let ok = match r.status.as_str() {
            "works" => o.code() == 0,
            // 125: refused by the CLI; 1: by the daemon (`docker create`
            // exits 1 on `Error response from daemon`).
            _ => matches!(o.code(), 1 | 125) && !o.err().trim().is_empty(),
        };
        if !ok {
            wrong.push(format!(
                "{long} ({}): pier {}: exit {}: {}",
                r.status,
                args.join(" "),
                o.code(),
                o.err().trim()
            ));
        }
    }
    assert!(checked > 90, "{checked} examples");
    let ids = d.pier_ok(&["ps", "-aq"]);
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.split_whitespace());
    d.pier_ok(&rm);
    d.pier_ok(&["network", "rm", "optnet"]);
    assert!(
        wrong.is_empty(),
        "the table says otherwise:\n{}",
        wrong.join("\n")
    );
}
