//! Independent stages build at the same time; the output stays in
//! Dockerfile order.

use super::*;

/// A shell snippet that marks `me` as started in `sync` and waits (at most
/// 5 s, then fails with 9) until `other` has started too: a builder that
/// runs the stages one after another fails here instead of hanging.
fn meet(sync: &Path, me: &str, other: &str) -> String {
    let s = sync.display();
    format!(
        "touch {s}/{me}; i=0; while [ ! -e {s}/{other} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; [ -e {s}/{other} ] || exit 9"
    )
}

/// The output without the image IDs of steps that ran (their history
/// times differ from run to run).
fn strip_image_id(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("Successfully built") && !is_step_id(l))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_step_id(line: &str) -> bool {
    line.strip_prefix(" ---> ")
        .is_some_and(|r| r.len() == 12 && r.chars().all(|c| c.is_ascii_hexdigit()))
}

#[test]
fn independent_stages_overlap_and_print_in_order() {
    let f = fake();
    let c = context(&[]);
    let sync = tempfile::tempdir().unwrap();
    // b finishes first, yet its output comes after all of a's.
    let df = format!(
        "FROM base AS a\nRUN {}; sleep 0.3; echo a-out; echo a > a.txt\n\
         FROM base AS b\nRUN {}; echo b-out; echo b > b.txt\n\
         FROM base\nCOPY --from=a a.txt .\nCOPY --from=b b.txt .\n",
        meet(sync.path(), "a", "b"),
        meet(sync.path(), "b", "a"),
    );
    let mut texts = Vec::new();
    for _ in 0..2 {
        for m in ["a", "b"] {
            let _ = std::fs::remove_file(sync.path().join(m));
        }
        let out = run_build(&f, c.path(), &df, |o| o.no_cache = true);
        let id = out.id();
        let root = f.root_of(&id);
        assert_eq!(std::fs::read_to_string(root.join("a.txt")).unwrap(), "a\n");
        assert_eq!(std::fs::read_to_string(root.join("b.txt")).unwrap(), "b\n");
        let text = out.text();
        let marks = [
            "Step 1/7 : FROM base AS a",
            "Step 2/7 : RUN touch",
            "a-out",
            "Step 3/7 : FROM base AS b",
            "Step 4/7 : RUN touch",
            "b-out",
            "Step 5/7 : FROM base",
            "Step 6/7 : COPY --from=a a.txt .",
            "Step 7/7 : COPY --from=b b.txt .",
            "Successfully built",
        ];
        let pos: Vec<usize> = marks
            .iter()
            .map(|m| {
                text.find(m)
                    .unwrap_or_else(|| panic!("{m:?} missing:\n{text}"))
            })
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "out of order:\n{text}");
        texts.push(strip_image_id(&text));
    }
    // The same stream both times (keys do not depend on timing).
    assert_eq!(texts[0], texts[1]);
    let calls = f.calls.lock().unwrap();
    assert_eq!(calls.prepares, calls.released);
}

#[test]
fn failing_stage_stops_the_others_and_creates_nothing() {
    let f = fake();
    let c = context(&[]);
    let sync = tempfile::tempdir().unwrap();
    // b fails while a's first RUN still runs; a's second step never starts.
    let df = format!(
        "FROM base AS a\nRUN {}; sleep 0.5\nRUN echo a-second\n\
         FROM base AS b\nRUN {}; exit 4\n\
         FROM base\nCOPY --from=a / /a\nCOPY --from=b / /b\n",
        meet(sync.path(), "a", "b"),
        meet(sync.path(), "b", "a"),
    );
    let out = run_build(&f, c.path(), &df, |o| o.tags = vec!["x".into()]);
    let err = out.err();
    assert!(err.contains("returned a non-zero code: 4"), "{err}");
    assert!(
        matches!(out.events.last(), Some(Event::RunFailed { code: 4, .. })),
        "{:?}",
        out.events.last()
    );
    // a's output (shown live) comes before b's (held back until a ended).
    let text = out.text();
    let a = text.find("Step 2/8 : RUN touch").unwrap();
    let b = text.find("Step 5/8 : RUN touch").unwrap();
    assert!(a < b, "{text}");
    assert!(!text.contains("Step 3/8"), "{text}");
    // Step images may remain (as Docker's classic builder); no result.
    assert!(f.created.lock().unwrap().is_empty());
    assert!(f.images.lock().unwrap().get("x").is_none());
    let calls = f.calls.lock().unwrap();
    assert!(calls
        .runs
        .iter()
        .all(|r| !r.args.concat().contains("a-second")));
    assert_eq!(calls.prepares, calls.released);
}
