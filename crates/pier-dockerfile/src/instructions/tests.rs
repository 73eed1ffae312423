use std::time::Duration;

use super::*;
use crate::parse;

fn one(src: &str) -> Instruction {
    let df = parse(&format!("FROM scratch\n{src}\n")).unwrap();
    df.instructions().unwrap().pop().unwrap()
}

fn err(src: &str) -> String {
    let df = parse(&format!("FROM scratch\n{src}\n")).unwrap();
    df.instructions().unwrap_err().to_string()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn from_forms() {
    let df = parse("FROM --platform=linux/arm64 golang:1.22 AS Build\n").unwrap();
    let Instruction::From(f) = &df.instructions().unwrap()[0] else {
        panic!()
    };
    assert_eq!(f.image, "golang:1.22");
    assert_eq!(f.name.as_deref(), Some("build"));
    assert_eq!(f.platform.as_deref(), Some("linux/arm64"));
    assert!(parse("FROM a b\n").unwrap().instructions().is_err());
    let e = parse("FROM a AS 1x\n").unwrap().instructions().unwrap_err();
    assert!(
        e.to_string().contains("invalid name for build stage"),
        "{e}"
    );
}

#[test]
fn run_forms_and_flags() {
    let Instruction::Run(r) = one("RUN --mount=type=cache,target=/c --network=none echo hi") else {
        panic!()
    };
    assert_eq!(r.command, CommandLine::Shell("echo hi".into()));
    assert_eq!(r.network, NetworkMode::None);
    assert_eq!(r.mounts.len(), 1);
    assert_eq!(r.mounts[0].kind, MountType::Cache);
    assert_eq!(r.flags_used, s(&["mount", "network"]));
    let Instruction::Run(r) = one("RUN [\"echo\", \"a b\"]") else {
        panic!()
    };
    assert_eq!(r.command, CommandLine::Exec(s(&["echo", "a b"])));
    // Invalid JSON falls back to shell form.
    let Instruction::Run(r) = one("RUN ['echo']") else {
        panic!()
    };
    assert_eq!(r.command, CommandLine::Shell("['echo']".into()));
    // Mounts using variables are left for the builder.
    let Instruction::Run(r) = one("RUN --mount=type=$T,target=/x true") else {
        panic!()
    };
    assert!(r.mounts.is_empty());
    assert_eq!(r.mount_specs, s(&["type=$T,target=/x"]));
    assert!(err("RUN --network=bridge x").contains("invalid network mode \"bridge\""));
    assert!(err("RUN --security=x x").contains("security \"x\" is not valid"));
    assert!(err("RUN --mount=from=$X,target=/x x").contains("doesn't support variable expansion"));
    assert!(err("RUN --mount=type=secret x").contains("invalid secret mount"));
}

#[test]
fn run_heredoc() {
    let df = parse("FROM x\nRUN <<EOF\necho hi\nEOF\n").unwrap();
    let Instruction::Run(r) = &df.instructions().unwrap()[1] else {
        panic!()
    };
    assert_eq!(r.command, CommandLine::Shell("<<EOF".into()));
    assert_eq!(r.heredocs[0].content, "echo hi\n");
}

#[test]
fn env_label_arg() {
    let Instruction::Env(e) = one("ENV A=1 B=\"two words\"") else {
        panic!()
    };
    assert_eq!(e.len(), 2);
    assert_eq!(e[1].value, "\"two words\"");
    assert!(!e[1].legacy);
    let Instruction::Env(e) = one("ENV A  one two") else {
        panic!()
    };
    assert_eq!(
        (e[0].key.as_str(), e[0].value.as_str(), e[0].legacy),
        ("A", "one two", true)
    );
    assert_eq!(err("ENV =x"), "Dockerfile:2: ENV names can not be blank");
    assert_eq!(
        err("LABEL"),
        "Dockerfile:2: LABEL requires at least one argument"
    );
    let Instruction::Arg(a) = one("ARG A B=2 C=") else {
        panic!()
    };
    assert_eq!(
        a,
        vec![
            ArgDecl {
                name: "A".into(),
                default: None
            },
            ArgDecl {
                name: "B".into(),
                default: Some("2".into())
            },
            ArgDecl {
                name: "C".into(),
                default: Some(String::new())
            },
        ]
    );
    assert!(err("ARG =1").contains("ARG names can not be blank"));
}

#[test]
fn copy_and_add() {
    let Instruction::Copy(c) =
        one("COPY --from=build --chown=1:1 --chmod=755 --link --exclude=*.md --exclude=x --parents a b /dst/")
    else {
        panic!()
    };
    assert_eq!(c.sources, s(&["a", "b"]));
    assert_eq!(c.dest, "/dst/");
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("1:1"));
    assert_eq!(c.chmod.as_deref(), Some("755"));
    assert!(c.link && c.parents);
    assert_eq!(c.exclude, s(&["*.md", "x"]));
    assert!(err("COPY a").contains("COPY requires at least two arguments"));
    assert!(err("COPY --frm=x a b").contains("unknown flag: --frm (did you mean from?)"));
    assert!(err("COPY a <<EOF\nEOF").contains("cannot accept a heredoc as a destination"));
    let Instruction::Add(a) =
        one("ADD --keep-git-dir=true --checksum=sha256:abc --unpack=false https://x/y.tgz /")
    else {
        panic!()
    };
    assert_eq!(a.keep_git_dir, Some(true));
    assert_eq!(a.unpack, Some(false));
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
    assert!(err("ADD --from=x a b").contains("unknown flag: --from"));
    let df = parse("FROM x\nCOPY <<-A <<B /d/\n\tone\nA\ntwo $X\nB\n").unwrap();
    let Instruction::Copy(c) = &df.instructions().unwrap()[1] else {
        panic!()
    };
    assert!(c.sources.is_empty());
    assert_eq!(
        c.heredocs[0],
        SourceContent {
            path: "A".into(),
            data: "one\n".into(),
            expand: true
        }
    );
    assert_eq!(c.heredocs[1].data, "two $X\n");
}

#[test]
fn cmd_entrypoint_shell() {
    assert_eq!(
        one("CMD [\"a\", \"b\"]"),
        Instruction::Cmd(CommandLine::Exec(s(&["a", "b"])))
    );
    assert_eq!(
        one("ENTRYPOINT run.sh -x"),
        Instruction::Entrypoint(CommandLine::Shell("run.sh -x".into()))
    );
    assert_eq!(
        one("SHELL [\"bash\", \"-c\"]"),
        Instruction::Shell(s(&["bash", "-c"]))
    );
    assert_eq!(
        err("SHELL bash -c"),
        "Dockerfile:2: SHELL requires the arguments to be in JSON form"
    );
}

#[test]
fn simple_ones() {
    assert_eq!(
        one("EXPOSE 8080 80/tcp"),
        Instruction::Expose(s(&["80/tcp", "8080"]))
    );
    assert_eq!(
        one("WORKDIR /app dir"),
        Instruction::Workdir("/app dir".into())
    );
    assert_eq!(one("USER 1000:1000"), Instruction::User("1000:1000".into()));
    assert_eq!(
        one("VOLUME [\"/a\", \"/b\"]"),
        Instruction::Volume(s(&["/a", "/b"]))
    );
    assert_eq!(one("VOLUME /a /b"), Instruction::Volume(s(&["/a", "/b"])));
    assert_eq!(
        one("STOPSIGNAL SIGKILL"),
        Instruction::StopSignal("SIGKILL".into())
    );
    assert_eq!(
        one("MAINTAINER me <m@e>"),
        Instruction::Maintainer("me <m@e>".into())
    );
    assert!(err("WORKDIR").contains("WORKDIR requires exactly one argument"));
    assert!(err("ENV --x=1 A=b").contains("unknown flag: --x"));
}

#[test]
fn healthcheck() {
    assert_eq!(
        one("HEALTHCHECK NONE"),
        Instruction::Healthcheck(Healthcheck::None)
    );
    let Instruction::Healthcheck(Healthcheck::Check(h)) =
        one("HEALTHCHECK --interval=5s --timeout=3s --start-period=1m --retries=3 CMD curl -f x")
    else {
        panic!()
    };
    assert_eq!(h.test, s(&["CMD-SHELL", "curl -f x"]));
    assert_eq!(h.interval, Some(Duration::from_secs(5)));
    assert_eq!(h.timeout, Some(Duration::from_secs(3)));
    assert_eq!(h.start_period, Some(Duration::from_secs(60)));
    assert_eq!(h.start_interval, None);
    assert_eq!(h.retries, Some(3));
    let Instruction::Healthcheck(Healthcheck::Check(h)) = one("HEALTHCHECK CMD [\"foo\", \"x\"]")
    else {
        panic!()
    };
    assert_eq!(h.test, s(&["CMD", "foo", "x"]));
    assert!(err("HEALTHCHECK CONNECT TCP 7000").contains("Unknown type \"CONNECT\""));
    assert!(err("HEALTHCHECK CMD").contains("Missing command"));
    assert!(err("HEALTHCHECK NONE x").contains("takes no arguments"));
    assert!(err("HEALTHCHECK --interval=1us CMD x").contains("cannot be less than 1ms"));
    assert!(err("HEALTHCHECK --retries=-1 CMD x").contains("cannot be negative"));
}

#[test]
fn onbuild() {
    let Instruction::Onbuild(o) = one("ONBUILD RUN echo hi") else {
        panic!()
    };
    assert_eq!(o.expression, "RUN echo hi");
    assert!(matches!(*o.trigger, Instruction::Run(_)));
    assert!(err("ONBUILD ONBUILD RUN x").contains("Chaining ONBUILD"));
    assert!(err("ONBUILD FROM x").contains("FROM isn't allowed as an ONBUILD trigger"));
    assert!(err("ONBUILD maintainer x").contains("MAINTAINER isn't allowed"));
    assert!(err("ONBUILD").contains("ONBUILD requires at least one argument"));
    let df = parse("FROM x\nONBUILD COPY <<EOF /f\nhello\nEOF\n").unwrap();
    let Instruction::Onbuild(o) = &df.instructions().unwrap()[1] else {
        panic!()
    };
    assert_eq!(o.expression, "COPY <<EOF /f\nhello\nEOF");
    let Instruction::Copy(c) = o.trigger.as_ref() else {
        panic!()
    };
    assert_eq!(c.heredocs[0].data, "hello\n");
}

#[test]
fn unknown_instruction_suggests() {
    assert_eq!(
        err("RUNN echo"),
        "Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)"
    );
    assert_eq!(
        err("cpy a b"),
        "Dockerfile:2: unknown instruction: cpy (did you mean copy?)"
    );
    assert_eq!(err("FOOBAR x"), "Dockerfile:2: unknown instruction: FOOBAR");
}

#[test]
fn stages_split() {
    let src = "ARG BASE=alpine\nARG V\nFROM $BASE AS build\nRUN make\nFROM scratch\nCOPY --from=build /a /a\n";
    let (globals, stages) = parse(src).unwrap().stages().unwrap();
    assert_eq!(globals.len(), 2);
    assert_eq!(globals[0].default.as_deref(), Some("alpine"));
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0].name.as_deref(), Some("build"));
    assert_eq!(stages[0].image, "$BASE");
    assert_eq!(stages[0].commands.len(), 1);
    assert_eq!(stages[1].index, 1);
    assert_eq!(stages[1].commands[0].start_line, 6);
    let e = parse("RUN x\nFROM a\n").unwrap().stages().unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:1: no build stage in current context"
    );
    let e = parse("FROM a AS x\nFROM b AS X\n")
        .unwrap()
        .stages()
        .unwrap_err();
    assert!(e.to_string().contains("duplicate stage name"), "{e}");
}
