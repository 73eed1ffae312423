use std::collections::HashMap;

use super::*;

fn run(input: &str, env: &[(&str, &str)]) -> Result<Expansion, ExpandError> {
    let map: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |k: &str| map.get(k).cloned();
    Lexer::new('\\').process(input, &lookup)
}

fn names(s: &[&str]) -> BTreeSet<String> {
    s.iter().map(|s| s.to_string()).collect()
}

#[test]
fn matches_and_unmatched() {
    let e = run("x ${UNUSED}", &[("DUMMY", "d")]).unwrap();
    assert_eq!(e.result, "x ");
    assert_eq!(e.unmatched, names(&["UNUSED"]));
    let env = [("FOO", "xxx"), ("BAR", "")];
    let e = run("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", &env).unwrap();
    assert_eq!(e.result, "xxx  ccc");
    assert_eq!(e.matched, names(&["FOO", "BAR"]));
    assert_eq!(e.unmatched, names(&["BAZ"]));
    assert_eq!(
        run("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", &env)
            .unwrap()
            .result,
        "xxx bbb ccc"
    );
    assert_eq!(
        run("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", &env)
            .unwrap()
            .result,
        "aaa bbb "
    );
    assert_eq!(
        run("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", &env)
            .unwrap()
            .result,
        "aaa  "
    );
    assert_eq!(run("${BAR?bbb}", &env).unwrap().result, "");
    for bad in [
        "${BAZ?ccc}",
        "${BAR:?bbb}",
        "${BAZ:?}",
        "${FOO=aaa}",
        "${FOO=:aaa}",
        "${FOO:#}",
        "${FOO:%%}",
    ] {
        assert!(run(bad, &env).is_err(), "{bad}");
    }
    assert_eq!(e.referenced(), names(&["FOO", "BAR", "BAZ"]));
}

#[test]
fn required_message_is_expanded() {
    let err = run("${VAR:?message here$ARG}", &[("VAR", ""), ("ARG", "x")]).unwrap_err();
    assert!(err.to_string().contains("message herex"), "{err}");
    assert_eq!(run("${VAR?m}", &[("VAR", "")]).unwrap().result, "");
}

#[test]
fn patterns() {
    let foo = |v: &'static str| [("FOO", v)];
    let cases: &[(&str, &str, &str)] = &[
        ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", "()[]{}^$.*?|\\x", "x"),
        ("${FOO%%\\**}", "xx**", "xx"),
        ("${FOO#*x*y}", "xxyy", "y"),
        ("${FOO#*}", "xxyy", "xxyy"),
        ("${FOO#}", "xxyy", "xxyy"),
        ("${FOO##*x}", "xxyy", "yy"),
        ("${FOO#?\\?}", "???y", "?y"),
        ("${FOO%%\\**\\*}", "a***yy*", "a"),
        ("${FOO%}", "xxyy", "xxyy"),
        ("${FOO//\\//\\/}", "/tmp/foo.txt", "\\/tmp\\/foo.txt"),
        ("${FOO///}", "xxyy", "xxyy"),
    ];
    for (input, value, want) in cases {
        assert_eq!(&run(input, &foo(value)).unwrap().result, want, "{input}");
    }
    let env = [("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")];
    assert_eq!(
        run("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", &env)
            .unwrap()
            .result,
        "/tmp/bar.txt - /bar.txt"
    );
    let env = [("FOO", "/a/foo/b/c.txt"), ("NEEDLE", "/?/"), ("R", "/")];
    assert_eq!(
        run("${FOO/$NEEDLE/$R} - ${FOO//$NEEDLE/$R}", &env)
            .unwrap()
            .result,
        "/foo/b/c.txt - /foo/c.txt"
    );
    assert!(run("${FOO//ww}", &foo("x")).is_err());
    assert!(run("${FOO//}", &foo("x")).is_err());
    assert_eq!(
        run("${ABC:-.}${FOO%x}${ABC:-.}", &foo("xxyy"))
            .unwrap()
            .result,
        ".xxyy."
    );
}

#[test]
fn platform_release_name() {
    let tpl =
        "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
    let env = [
        ("VERSION", "v1.2.3"),
        ("TARGETOS", "linux"),
        ("TARGETARCH", "arm"),
        ("TARGETVARIANT", "v7"),
    ];
    assert_eq!(
        run(tpl, &env).unwrap().result,
        "something-v1.2.3.linux-arm-v7.tar.gz"
    );
    let env = [
        ("VERSION", "v1.2.3"),
        ("TARGETOS", "linux"),
        ("TARGETARCH", "arm64"),
    ];
    assert_eq!(
        run(tpl, &env).unwrap().result,
        "something-v1.2.3.linux-arm64.tar.gz"
    );
}

#[test]
fn backtick_escape_and_words() {
    let none = |_: &str| None;
    assert_eq!(expand_word("a`$b", &none, '`').unwrap(), "a$b");
    assert_eq!(expand_word("a\\b", &none, '`').unwrap(), "a\\b");
    let some = |k: &str| (k == "X").then(|| "1  2".to_string());
    assert_eq!(
        expand_words("a $X \"$X\"", &some, '\\').unwrap(),
        vec!["a", "1", "2", "1  2"]
    );
    assert_eq!(
        expand_words("hello${NO:-x}", &none, '\\').unwrap(),
        vec!["hellox"]
    );
}

#[test]
fn error_names_input() {
    let none = |_: &str| None;
    let err = expand_word("he${PWD", &none, '\\').unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to process \"he${PWD\": syntax error: missing '}'"
    );
}

#[test]
fn heredoc_bodies_keep_quotes() {
    let env = |k: &str| (k == "X").then(|| "1".to_string());
    let e = expand_heredoc("echo \"$X\" '$X' \\$X\n", &env).unwrap();
    assert_eq!(e.result, "echo \"1\" '1' $X\n");
    assert_eq!(e.matched.len(), 1);
}
