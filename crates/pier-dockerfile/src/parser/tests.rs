use super::*;
use crate::node::Heredoc;

fn hd(name: &str, content: &str, expand: bool, chomp: bool) -> Heredoc {
    Heredoc {
        name: name.into(),
        fd: 0,
        expand,
        chomp,
        content: content.into(),
    }
}

#[test]
fn extracts_heredocs() {
    let src = "FROM alpine:3.6
RUN <<EMPTY
EMPTY
RUN \"<<NOHEREDOC\"
RUN <<-UNINDENT2
\tbaz
\tquux
\tUNINDENT2
RUN <<-'NOEXPAND'
\tdon't expand $NAME
NOEXPAND
COPY <<FILE1 <<FILE2 /dest
content 1
FILE1
content 2
FILE2
RUN <<eo'f'
echo foo
eof
RUN <<  EOF  > foo
EOF
RUN [\"<<EOF\"]
CMD <<EOF
";
    let df = parse(src).unwrap();
    let h: Vec<Vec<Heredoc>> = df.nodes.iter().map(|n| n.heredocs.clone()).collect();
    assert_eq!(h[1], vec![hd("EMPTY", "", true, false)]);
    assert!(h[2].is_empty());
    assert_eq!(h[3], vec![hd("UNINDENT2", "\tbaz\n\tquux\n", true, true)]);
    assert_eq!(h[3][0].data(), "baz\nquux\n");
    assert_eq!(
        h[4],
        vec![hd("NOEXPAND", "\tdon't expand $NAME\n", false, true)]
    );
    assert_eq!(
        h[5],
        vec![
            hd("FILE1", "content 1\n", true, false),
            hd("FILE2", "content 2\n", true, false)
        ]
    );
    assert_eq!(h[6], vec![hd("eof", "echo foo\n", false, false)]);
    assert_eq!(h[7], vec![hd("EOF", "", true, false)]);
    assert!(h[8].is_empty());
    // CMD never takes heredocs, so the marker is just text.
    assert_eq!(df.nodes[9].args, vec!["<<EOF"]);
    let lines: Vec<(usize, usize)> = df
        .nodes
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(lines[5], (12, 16));
}

#[test]
fn unterminated_heredoc() {
    let e = parse("FROM a\nRUN <<EOF\necho\n").unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::UnterminatedHeredoc);
    assert_eq!(e.line, 2);
}

#[test]
fn directives_and_backtick_escape() {
    let df = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\nRUN a `\n  b\nRUN c \\\n")
        .unwrap();
    assert_eq!(df.escape, '`');
    assert_eq!(df.syntax(), Some("docker/dockerfile:1"));
    assert_eq!(df.dump(), "(from \"x\")\n(run \"a   b\")\n(run \"c \\\\\")");
}

#[test]
fn comments_inside_continuation_and_warnings() {
    let df = parse("FROM x\n# about run\nRUN a \\\n# inner\n\n  b\n").unwrap();
    assert_eq!(df.nodes[1].args, vec!["a   b"]);
    assert_eq!(df.nodes[1].comments, vec!["about run"]);
    assert_eq!((df.nodes[1].start_line, df.nodes[1].end_line), (3, 6));
    assert_eq!(df.warnings.len(), 1);
}

#[test]
fn onbuild_nests_and_empty_files_fail() {
    let df = parse("FROM x\nONBUILD RUN [\"echo\", \"test\"]\n").unwrap();
    assert_eq!(df.dump(), "(from \"x\")\n(onbuild (run \"echo\" \"test\"))");
    assert_eq!(parse("").unwrap_err().kind, ParseErrorKind::NoInstructions);
    assert_eq!(
        parse("# a\n\n# b\n").unwrap_err().kind,
        ParseErrorKind::NoInstructions
    );
    let long = format!("FROM x\nLABEL a={}\n", "a".repeat(70000));
    assert_eq!(parse(&long).unwrap_err().kind, ParseErrorKind::LineTooLong);
}
