//! `crates/README.md` is the workspace's layer map: every crate has a line
//! saying which Pier crates it may import. This test (no root, no daemon)
//! holds every manifest to its line, so a new arrow is a decision made in the
//! README, not an accident of a `Cargo.toml`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use pier_tests::repo_root;

/// crate name -> the Pier crates its README line allows.
fn allowed(readme: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if cells.len() != 4 || !cells[0].starts_with("pier") {
            continue;
        }
        let may: BTreeSet<String> = cells[3]
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty() && *c != "-")
            .map(str::to_string)
            .collect();
        assert!(
            out.insert(cells[0].to_string(), may).is_none(),
            "crates/README.md lists {} twice",
            cells[0]
        );
    }
    out
}

/// The manifest's package name and the Pier crates under `[dependencies]`
/// and `[build-dependencies]` (any spelling: `pier-x = {..}`,
/// `pier-x.workspace = true`, `[dependencies.pier-x]`).
fn manifest(path: &Path) -> (String, BTreeSet<String>) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut name = String::new();
    let mut section = String::new();
    let mut deps = BTreeSet::new();
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if let Some(s) = line.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.trim().to_string();
            // `[dependencies.pier-x]` names the dependency in the header.
            for prefix in ["dependencies.", "build-dependencies."] {
                if let Some(dep) = section.strip_prefix(prefix)
                    && dep.starts_with("pier")
                {
                    deps.insert(dep.to_string());
                }
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if section == "package" && key == "name" {
            name = value.trim().trim_matches('"').to_string();
        }
        let in_deps = section == "dependencies"
            || section == "build-dependencies"
            || (section.starts_with("target.")
                && (section.ends_with(".dependencies")
                    || section.ends_with(".build-dependencies")));
        if in_deps {
            let key = key.split('.').next().unwrap_or(key).trim_matches('"');
            // `alias = { package = "pier-x", .. }` imports pier-x.
            let package = value
                .split_once("package")
                .and_then(|(_, v)| v.split('"').nth(1));
            let dep = package.unwrap_or(key);
            if dep.starts_with("pier") {
                deps.insert(dep.to_string());
            }
        }
    }
    assert!(!name.is_empty(), "{}: no package name", path.display());
    (name, deps)
}

#[test]
fn every_crate_imports_only_what_crates_readme_allows() {
    let root = repo_root();
    let readme = fs::read_to_string(root.join("crates/README.md")).expect("crates/README.md");
    let allowed = allowed(&readme);
    let mut manifests = vec![root.join("tests/Cargo.toml")];
    for entry in fs::read_dir(root.join("crates")).expect("crates/") {
        let dir = entry.expect("crates/ entry").path();
        if dir.join("Cargo.toml").is_file() {
            manifests.push(dir.join("Cargo.toml"));
        }
    }
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for m in &manifests {
        let (name, deps) = manifest(m);
        seen.insert(name.clone());
        let Some(may) = allowed.get(&name) else {
            problems.push(format!("{name} has no line in crates/README.md"));
            continue;
        };
        for d in deps.difference(may) {
            problems.push(format!(
                "{name} imports {d}, which its line in crates/README.md does not allow"
            ));
        }
    }
    for listed in allowed.keys() {
        if !seen.contains(listed) {
            problems.push(format!(
                "crates/README.md lists {listed}, which is no crate"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(seen.len() >= 17, "found only {seen:?}");
}

#[test]
fn the_manifest_reader_sees_every_spelling() {
    let dir = std::env::temp_dir().join(format!("crate-layers-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("Cargo.toml");
    fs::write(
        &path,
        r#"[package]
name = "pier-demo"

[dependencies]
pier-api = { path = "../pier-api" }
pier-sys.workspace = true
serde = "1"
engine = { package = "pier-engine", path = "../pier-engine" }

[dev-dependencies]
pier-tests = { path = "../../tests" }

[dependencies.pier-reference]
path = "../pier-reference"

[target.'cfg(unix)'.dependencies]
pier-network = { path = "../pier-network" }
"#,
    )
    .unwrap();
    let (name, deps) = manifest(&path);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(name, "pier-demo");
    let want: BTreeSet<String> = [
        "pier-api",
        "pier-sys",
        "pier-engine",
        "pier-reference",
        "pier-network",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(deps, want);
    let rules = allowed("| pier-x | types | owns | pier-a, pier-b |\n| crate | layer | owns | may import |\n| pier-y | os | owns | - |");
    assert_eq!(rules["pier-x"].len(), 2);
    assert!(rules["pier-y"].is_empty());
}
