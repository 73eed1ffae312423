//! Data-driven conformance against BuildKit's own test material in
//! /work/shared/conformance (see its README for the formats).

// Test set-up and checks, not daemon code.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use pier_dockerfile::Lexer;

fn root() -> Option<PathBuf> {
    // The run-time value: a test binary reused from another checkout (a shared
    // target dir keeps it fresh) must still look beside this one.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let dir = manifest.join("../../../shared/conformance/frontend/dockerfile");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "!!!!!!!! CONFORMANCE DATA MISSING: {} not found; conformance test NOT run !!!!!!!!",
            dir.display()
        );
        None
    }
}

fn read(path: &PathBuf) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn shell_env_var_table() {
    let Some(root) = root() else { return };
    let text = read(&root.join("shell/envVarTest"));
    let env: HashMap<&str, &str> = HashMap::from([
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]);
    let lookup = |k: &str| env.get(k).map(|v| v.to_string());
    let lex = Lexer::new('\\');
    let (mut passed, mut skipped, mut failures) = (0, 0, Vec::new());
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim().split('|').collect();
        assert_eq!(fields.len(), 3, "bad table line {}: {line:?}", n + 1);
        let (platform, source, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        if platform == "W" {
            skipped += 1;
            continue;
        }
        let got = lex.process_word(source, &lookup);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(w), e) => e != "error" && w == e,
            _ => false,
        };
        if ok {
            passed += 1;
        } else {
            failures.push(format!(
                "line {}: {source:?} want {expected:?} got {got:?}",
                n + 1
            ));
        }
    }
    eprintln!(
        "envVarTest: {passed} passed, {} failed, {skipped} skipped (windows)",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(passed > 100);
}

#[test]
fn shell_words_table() {
    let Some(root) = root() else { return };
    let text = read(&root.join("shell/wordsTest"));
    let mut env: HashMap<String, String> = HashMap::new();
    let lex = Lexer::new('\\');
    let (mut passed, mut failures) = (0, Vec::new());
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            let rest = rest.trim_start_matches(' ');
            let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
            env.insert(k.to_string(), v.to_string());
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 2, "bad table line {}: {line:?}", n + 1);
        let input = fields[0].trim();
        let expected: Vec<String> = fields[1]
            .trim_start_matches(' ')
            .split(',')
            .map(str::to_string)
            .collect();
        let lookup = |k: &str| env.get(k).cloned();
        let got = lex
            .process_words(input, &lookup)
            .unwrap_or_else(|_| vec!["error".to_string()]);
        if got == expected {
            passed += 1;
        } else {
            failures.push(format!(
                "line {}: {input:?} want {expected:?} got {got:?}",
                n + 1
            ));
        }
    }
    eprintln!("wordsTest: {passed} passed, {} failed", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(passed > 20);
}

fn case_dirs(dir: &PathBuf) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn parser_testfiles_dump() {
    let Some(root) = root() else { return };
    let (mut passed, mut failures) = (0, Vec::new());
    for dir in case_dirs(&root.join("parser/testfiles")) {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let src = fs::read(dir.join("Dockerfile")).expect("read Dockerfile");
        let want = read(&dir.join("result"));
        match pier_dockerfile::parse_bytes(&src) {
            Ok(df) => {
                let got = df.dump() + "\n";
                if got == want {
                    passed += 1;
                } else {
                    failures.push(format!("{name}:\n--- want\n{want}--- got\n{got}"));
                }
            }
            Err(e) => failures.push(format!("{name}: parse error: {e}")),
        }
    }
    eprintln!(
        "parser testfiles: {passed} passed, {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(passed >= 30);
}

#[test]
fn parser_testfiles_negative() {
    let Some(root) = root() else { return };
    let (mut passed, mut failures) = (0, Vec::new());
    for dir in case_dirs(&root.join("parser/testfiles-negative")) {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let src = fs::read(dir.join("Dockerfile")).expect("read Dockerfile");
        match pier_dockerfile::parse_bytes(&src) {
            Err(e) => {
                eprintln!("  {name}: {e}");
                passed += 1;
            }
            Ok(df) => failures.push(format!("{name}: parsed, want error:\n{}", df.dump())),
        }
    }
    eprintln!(
        "parser testfiles-negative: {passed} failed as expected, {} wrongly parsed",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(passed >= 4);
}

#[test]
fn parser_testfile_line_numbers() {
    let Some(root) = root() else { return };
    let src = read(&root.join("parser/testfile-line/Dockerfile"));
    let df = pier_dockerfile::parse(&src).expect("parse testfile-line");
    let got: Vec<(usize, usize)> = df
        .nodes
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    // Expectations from BuildKit's TestParseIncludesLineNumbers.
    assert_eq!(got, vec![(5, 5), (11, 12), (17, 31)]);
    eprintln!(
        "testfile-line: {} instructions with correct start/end lines",
        got.len()
    );
}

/// Every prefix of every BuildKit test Dockerfile must parse or fail
/// cleanly (no panics), and so must typing and expanding what parsed.
#[test]
fn no_panics_on_truncated_inputs() {
    let Some(root) = root() else { return };
    let mut inputs = 0;
    for sub in ["parser/testfiles", "parser/testfiles-negative"] {
        for dir in case_dirs(&root.join(sub)) {
            let src =
                String::from_utf8_lossy(&fs::read(dir.join("Dockerfile")).unwrap()).to_string();
            let cuts: Vec<usize> = src
                .char_indices()
                .map(|(i, _)| i)
                .chain([src.len()])
                .collect();
            for &cut in &cuts {
                inputs += 1;
                let text = &src[..cut];
                if let Ok(df) = pier_dockerfile::parse(text) {
                    let _ = df.stages();
                }
                let none = |_: &str| None;
                let _ = Lexer::new('\\').process(text, &none);
                let _ = Lexer::new('`').process(text, &none);
            }
        }
    }
    eprintln!("truncation sweep: {inputs} inputs without panic");
}
