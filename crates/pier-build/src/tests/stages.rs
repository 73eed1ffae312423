//! Config results, ARG/ENV, stages, RUN, cache and output.

use serde_json::json;

use super::*;

#[test]
fn metadata_instructions_fill_the_config() {
    let cfg = config_for(
        r#"FROM base
ENV A=1 B="two words"
ENV C=$A-${B}
LABEL version="1.0" com.example.x=y
EXPOSE 80 53/udp
USER app
VOLUME ["/data", "/logs"]
WORKDIR /
STOPSIGNAL SIGINT
SHELL ["/bin/bash", "-c"]
HEALTHCHECK --interval=5s --retries=2 CMD curl -f http://localhost/
ONBUILD RUN echo child
MAINTAINER someone
CMD echo hi
"#,
    );
    let c = &cfg["config"];
    assert_eq!(
        c["Env"],
        json!([
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "A=1",
            "B=two words",
            "C=1-two words"
        ])
    );
    assert_eq!(c["Labels"], json!({"version": "1.0", "com.example.x": "y"}));
    assert_eq!(c["ExposedPorts"], json!({"53/udp": {}, "80/tcp": {}}));
    assert_eq!(c["User"], "app");
    assert_eq!(c["Volumes"], json!({"/data": {}, "/logs": {}}));
    assert_eq!(c["WorkingDir"], "/");
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(c["Shell"], json!(["/bin/bash", "-c"]));
    assert_eq!(
        c["Healthcheck"]["Test"],
        json!(["CMD-SHELL", "curl -f http://localhost/"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000i64);
    assert_eq!(c["Healthcheck"]["Retries"], 2);
    assert_eq!(c["OnBuild"], json!(["RUN echo child"]));
    assert_eq!(c["Cmd"], json!(["/bin/bash", "-c", "echo hi"]));
    assert_eq!(c["ArgsEscaped"], true);
    assert_eq!(cfg["author"], "someone");
    assert_eq!(cfg["architecture"], "amd64");
    let h = history(&cfg);
    assert_eq!(h[0].0, "base layer");
    assert!(h[1..].iter().all(|(_, empty)| *empty), "{h:?}");
    let texts: Vec<&str> = h.iter().map(|(t, _)| t.as_str()).collect();
    assert!(texts.contains(&"ENV A=1 B=two words"));
    assert!(texts.contains(&"EXPOSE map[53/udp:{} 80/tcp:{}]"));
    assert!(texts.contains(&"USER app"));
    assert!(texts.contains(&"VOLUME [/data /logs]"));
    assert!(texts.contains(&r#"CMD ["/bin/bash" "-c" "echo hi"]"#));
    assert!(texts.contains(&"SHELL [/bin/bash -c]"));
    assert!(!texts.iter().any(|t| t.starts_with("ONBUILD")));
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
}

#[test]
fn entrypoint_resets_inherited_cmd_only() {
    let cfg = config_for("FROM base\nENTRYPOINT [\"/app\"]\n");
    assert_eq!(cfg["config"]["Entrypoint"], json!(["/app"]));
    assert!(cfg["config"].get("Cmd").is_none());
    let cfg = config_for("FROM base\nCMD [\"--help\"]\nENTRYPOINT /app\n");
    assert_eq!(
        cfg["config"]["Entrypoint"],
        json!(["/bin/sh", "-c", "/app"])
    );
    assert_eq!(cfg["config"]["Cmd"], json!(["--help"]));
    let h = history(&cfg);
    assert_eq!(h.last().unwrap().0, r#"ENTRYPOINT ["/bin/sh" "-c" "/app"]"#);
}

#[test]
fn scratch_gets_platform_and_path() {
    let f = fake();
    let c = context(&[("f", "x")]);
    let out = run_build(&f, c.path(), "FROM scratch\nCOPY f /f\n", |o| {
        o.platform = Some("linux/arm64/v8".into())
    });
    let cfg = f.config_of(&out.id());
    assert_eq!(cfg["architecture"], "arm64");
    assert_eq!(cfg["variant"], "v8");
    assert_eq!(cfg["os"], "linux");
    assert_eq!(
        cfg["config"]["Env"],
        json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    );
    assert_eq!(
        history(&cfg),
        vec![("COPY f /f # buildkit".to_string(), false)]
    );
}

#[test]
fn args_global_stage_and_build_args() {
    let f = fake();
    f.add_image("base2", &[], base_config());
    let c = context(&[]);
    let df = r#"ARG IMG=base
ARG V=global
FROM ${IMG}2
ARG V
ARG W=w-default
ARG X=x
ENV X=from-env
LABEL v=$V w=$W x=$X
RUN echo "$V $W $X" > out
"#;
    let out = run_build(&f, c.path(), df, |o| {
        o.build_args.insert("W".into(), Some("w-cli".into()));
        o.build_args.insert("UNUSED".into(), Some("1".into()));
        o.build_args
            .insert("http_proxy".into(), Some("http://proxy".into()));
    });
    let id = out.id();
    let cfg = f.config_of(&id);
    assert_eq!(
        cfg["config"]["Labels"],
        json!({"v": "global", "w": "w-cli", "x": "from-env"})
    );
    // ARG values reach RUN but not the image's ENV.
    let env = cfg["config"]["Env"].to_string();
    assert!(!env.contains("W="), "{env}");
    let runs = &f.calls.lock().unwrap().runs;
    assert!(runs[0].env.contains(&"W=w-cli".to_string()));
    assert!(runs[0].env.contains(&"V=global".to_string()));
    assert!(runs[0].env.contains(&"X=from-env".to_string()));
    assert!(runs[0].env.contains(&"http_proxy=http://proxy".to_string()));
    let root = f.root_of(&id);
    assert_eq!(
        std::fs::read_to_string(root.join("out")).unwrap(),
        "global w-cli from-env\n"
    );
    let h = history(&cfg);
    let run = &h.last().unwrap().0;
    assert_eq!(
        run,
        r#"RUN |3 V=global W=w-cli X=from-env /bin/sh -c echo "$V $W $X" > out # buildkit"#
    );
    assert!(h.iter().any(|(t, _)| t == "ARG W=w-default"));
    assert!(out
        .text()
        .contains("[Warning] One or more build-args [UNUSED] were not consumed"));
    assert_eq!(out.result.as_ref().unwrap().warnings.len(), 1);
}

#[test]
fn platform_args_need_declaring_in_stages() {
    let cfg = config_for(
        "FROM base\nLABEL before=x$TARGETARCH\nARG TARGETARCH\nARG TARGETOS\nLABEL a=$TARGETARCH o=$TARGETOS\n",
    );
    let labels = &cfg["config"]["Labels"];
    assert_eq!(labels["before"], "x");
    assert_eq!(
        labels["a"],
        crate::host_platform().split('/').nth(1).unwrap()
    );
    assert_eq!(labels["o"], "linux");
}

#[test]
fn workdir_is_relative_and_created() {
    let f = fake();
    let c = context(&[]);
    let out = run_build(
        &f,
        c.path(),
        "FROM base\nWORKDIR /srv\nWORKDIR app/../web\nUSER app\nWORKDIR data\nRUN pwd > here\n",
        |_| {},
    );
    let id = out.id();
    let cfg = f.config_of(&id);
    assert_eq!(cfg["config"]["WorkingDir"], "/srv/web/data");
    let root = f.root_of(&id);
    assert!(root.join("srv/web").is_dir());
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(root.join("srv/web/data")).unwrap();
    assert_eq!(m.uid(), 1000);
    assert!(root.join("srv/web/data/here").is_file());
    let h = history(&cfg);
    assert!(h.contains(&("WORKDIR /srv".into(), false)));
    let runs = &f.calls.lock().unwrap().runs;
    assert_eq!(runs[0].cwd, "/srv/web/data");
    assert_eq!(runs[0].user, "app");
}

#[test]
fn run_forms_and_heredocs() {
    let f = fake();
    let c = context(&[]);
    let df = "FROM base\nRUN [\"/bin/sh\", \"-c\", \"echo exec > a\"]\nRUN <<EOF\necho one > b\necho two >> b\nEOF\nRUN cat <<EOT > c\nhello $HOME_X\nEOT\nRUN --network=none --mount=type=tmpfs,target=/t --mount=type=cache,target=/cache,id=c1 true\n";
    let out = run_build(&f, c.path(), df, |_| {});
    let root = f.root_of(&out.id());
    assert_eq!(std::fs::read_to_string(root.join("a")).unwrap(), "exec\n");
    assert_eq!(
        std::fs::read_to_string(root.join("b")).unwrap(),
        "one\ntwo\n"
    );
    assert_eq!(std::fs::read_to_string(root.join("c")).unwrap(), "hello \n");
    let runs = &f.calls.lock().unwrap().runs;
    assert_eq!(runs[0].args, ["/bin/sh", "-c", "echo exec > a"]);
    assert_eq!(
        runs[1].args,
        ["/bin/sh", "-c", "echo one > b\necho two >> b\n"]
    );
    assert_eq!(runs[3].network, crate::Network::None);
    assert!(matches!(&runs[3].mounts[0], crate::RunMount::Tmpfs { target, .. } if target == "/t"));
    assert!(
        matches!(&runs[3].mounts[1], crate::RunMount::Bind { target, readonly: false, .. } if target == "/cache")
    );
    // A RUN that changes nothing is an empty layer.
    let h = history(&f.config_of(&out.id()));
    assert!(h.last().unwrap().1);
}

#[test]
fn failing_run_reports_code_and_creates_nothing() {
    let f = fake();
    let c = context(&[]);
    let out = run_build(
        &f,
        c.path(),
        "FROM base\nRUN echo before\nRUN exit 3\nCMD x\n",
        |o| o.tags = vec!["x".into()],
    );
    assert_eq!(
        out.err(),
        "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    );
    assert!(
        matches!(out.events.last(), Some(Event::RunFailed { message: m, code: 3 }) if m.contains("non-zero code: 3"))
    );
    assert!(out.text().contains("Step 3/4 : RUN exit 3"));
    // As Docker's classic builder: the step that passed leaves its
    // (untagged) image, the build no result.
    assert_eq!(f.steps.lock().unwrap().len(), 1);
    assert!(f.created.lock().unwrap().is_empty());
    // Every prepared root was released.
    let calls = f.calls.lock().unwrap();
    assert_eq!(calls.prepares, calls.released);
}

#[test]
fn output_stream_matches_docker() {
    let f = fake();
    let c = context(&[]);
    let out = run_build(
        &f,
        c.path(),
        "FROM base\nRUN echo hello\nCMD [\"sh\"]\n",
        |o| o.tags = vec!["app".into(), "reg.example:5000/x/y:v1".into()],
    );
    let id = out.id();
    let t = out.text();
    assert!(t.starts_with("Step 1/3 : FROM base\n ---> "), "{t}");
    assert!(t.contains("Step 2/3 : RUN echo hello\n ---> Running in "));
    assert!(t.contains("hello\n"));
    let short = &id[7..19];
    assert!(t.contains(&format!("Successfully built {short}\n")));
    assert!(t.contains("Successfully tagged app:latest\n"));
    assert!(t.contains("Successfully tagged reg.example:5000/x/y:v1\n"));
    assert!(out.events.contains(&Event::ImageId(id.clone())));
    assert_eq!(
        f.created.lock().unwrap()[&id].1,
        ["app:latest", "reg.example:5000/x/y:v1"]
    );
}

#[test]
fn every_step_leaves_an_image_on_the_one_before() {
    let f = fake();
    let c = context(&[]);
    let out = run_build(
        &f,
        c.path(),
        "FROM base\nENV A=1\nRUN echo hi > /f\nCMD [\"sh\"]\n",
        |o| o.labels = [("l".to_string(), "v".to_string())].into(),
    );
    let id = out.id();
    let ids: Vec<String> = out
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix(" ---> "))
        .filter(|r| r.len() == 12 && r.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 4, "{}", out.text());
    let steps = f.steps.lock().unwrap();
    let full = |short: &str| {
        steps
            .keys()
            .find(|k| k[7..19] == *short)
            .unwrap_or_else(|| panic!("{short} was not stored"))
            .clone()
    };
    // Each step's image sits on the one before (the first on the base).
    for w in ids.windows(2) {
        assert_eq!(steps[&full(&w[1])][7..19], w[0]);
    }
    // The last step's image is the result, with the build's labels on it only.
    assert_eq!(full(&ids[3]), id);
    assert_eq!(f.config_of(&id)["config"]["Labels"]["l"], "v");
}

#[test]
fn bad_inputs() {
    let f = fake();
    let c = context(&[]);
    let e = run_build(&f, c.path(), "FROM base\nFOO bar\n", |_| {}).err();
    assert!(e.starts_with("dockerfile parse error on line 2"), "{e}");
    let e = run_build(&f, c.path(), "FROM nosuch\n", |_| {}).err();
    assert!(e.contains("pull access denied for nosuch"), "{e}");
    let e = run_build(&f, c.path(), "FROM base\n", |o| {
        o.target = Some("nope".into())
    })
    .err();
    assert_eq!(e, "failed to reach build target nope in Dockerfile");
    let e = run_build(&f, c.path(), "FROM base\n", |o| {
        o.tags = vec!["Bad Tag".into()]
    })
    .err();
    assert!(e.contains("invalid reference format"), "{e}");
    let e = run_build(&f, c.path(), "FROM base\nCOPY missing /x\n", |_| {}).err();
    assert!(e.contains("file not found in build context"), "{e}");
}

#[test]
fn multi_stage_target_and_copy_from() {
    let f = fake();
    let c = context(&[]);
    let df = r#"FROM base AS builder
RUN echo built > artifact
FROM base AS unused
RUN echo never > x
FROM scratch AS final
COPY --from=builder /artifact /app/artifact
COPY --from=0 /etc/group /g
FROM final AS extra
LABEL extra=1
"#;
    let out = run_build(&f, c.path(), df, |o| o.target = Some("final".into()));
    let id = out.id();
    let root = f.root_of(&id);
    assert_eq!(
        std::fs::read_to_string(root.join("app/artifact")).unwrap(),
        "built\n"
    );
    assert!(root.join("g").is_file());
    let t = out.text();
    assert!(!t.contains("never"), "{t}");
    assert!(!t.contains("extra"), "{t}");
    assert!(t.contains("Step 1/5 : FROM base AS builder"), "{t}");
    {
        let calls = f.calls.lock().unwrap();
        assert_eq!(calls.runs.len(), 1);
        assert_eq!(calls.prepares, calls.released, "every root is released");
    }
    // FROM an earlier stage carries its layers and config.
    let out = run_build(&f, c.path(), df, |_| {});
    let cfg = f.config_of(&out.id());
    assert_eq!(cfg["config"]["Labels"]["extra"], "1");
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
}

#[test]
fn cache_hits_misses_and_no_cache() {
    let f = fake();
    let c = context(&[("a.txt", "a"), ("b.txt", "b")]);
    let df = "FROM base\nENV X=1\nCOPY a.txt /a\nRUN echo run > r\nCOPY b.txt /b\nCMD [\"x\"]\n";
    let first = run_build(&f, c.path(), df, |_| {});
    let id1 = first.id();
    assert!(!first.text().contains("Using cache"));
    let runs = f.calls.lock().unwrap().runs.len();

    let second = run_build(&f, c.path(), df, |_| {});
    assert_eq!(
        second.id(),
        id1,
        "a fully cached build gives the same image"
    );
    assert_eq!(second.text().matches("Using cache").count(), 5);
    assert_eq!(f.calls.lock().unwrap().runs.len(), runs);

    // mtime changes do not matter, content does.
    let file = std::fs::File::options()
        .write(true)
        .open(c.path().join("a.txt"))
        .unwrap();
    file.set_modified(std::time::SystemTime::UNIX_EPOCH)
        .unwrap();
    assert_eq!(run_build(&f, c.path(), df, |_| {}).id(), id1);

    std::fs::write(c.path().join("b.txt"), "changed").unwrap();
    let third = run_build(&f, c.path(), df, |_| {});
    assert_ne!(third.id(), id1);
    assert_eq!(third.text().matches("Using cache").count(), 3);
    assert_eq!(
        f.calls.lock().unwrap().runs.len(),
        runs,
        "RUN before the change is cached"
    );

    let fourth = run_build(&f, c.path(), df, |o| o.no_cache = true);
    assert!(!fourth.text().contains("Using cache"));
    assert_eq!(f.calls.lock().unwrap().runs.len(), runs + 1);

    // A different build-arg value for a declared ARG misses from there on.
    let df2 = "FROM base\nRUN echo a > a\nARG V=1\nRUN echo $V > v\n";
    run_build(&f, c.path(), df2, |_| {}).id();
    let again = run_build(&f, c.path(), df2, |o| {
        o.build_args.insert("V".into(), Some("2".into()));
    });
    again.id();
    assert_eq!(again.text().matches("Using cache").count(), 1);
}

#[test]
fn onbuild_triggers_run_in_children() {
    let f = fake();
    let c = context(&[("src.txt", "s")]);
    let parent = run_build(
        &f,
        c.path(),
        "FROM base\nONBUILD COPY src.txt /from-trigger\nONBUILD LABEL child=yes\n",
        |o| o.tags = vec!["parent".into()],
    );
    let pid = parent.id();
    let pcfg = f.config_of(&pid);
    assert_eq!(
        pcfg["config"]["OnBuild"],
        json!(["COPY src.txt /from-trigger", "LABEL child=yes"])
    );
    let img = crate::BaseImage {
        id: pid.clone(),
        config: serde_json::from_value(pcfg).unwrap(),
        layers: f.images.lock().unwrap().get("base").unwrap().layers.clone(),
    };
    f.images.lock().unwrap().insert("parent".into(), img);
    let child = run_build(&f, c.path(), "FROM parent\nLABEL own=1\n", |_| {});
    let cfg = f.config_of(&child.id());
    assert!(child.text().contains("# Executing 2 build triggers"));
    assert_eq!(cfg["config"]["Labels"]["child"], "yes");
    assert!(cfg["config"].get("OnBuild").is_none());
    assert!(f.root_of(&child.id()).join("from-trigger").is_file());
}

#[test]
fn secrets_and_bind_mounts() {
    let f = fake();
    let c = context(&[("data/in.txt", "ctx data")]);
    let secret = c.path().join("secret-file");
    std::fs::write(&secret, "s3cret").unwrap();
    let df = "FROM base\nRUN --mount=type=secret,id=tok,env=TOK --mount=type=secret,id=tok --mount=type=bind,source=data,target=/in true\n";
    let out = run_build(&f, c.path(), df, |o| {
        o.secrets.insert("tok".into(), secret.clone());
    });
    out.id();
    let run = f.calls.lock().unwrap().runs[0].clone();
    assert!(run.env.contains(&"TOK=s3cret".to_string()));
    assert!(run.mounts.iter().any(|m| matches!(m,
        crate::RunMount::Bind { target, readonly: true, .. } if target == "/run/secrets/tok")));
    assert!(run.mounts.iter().any(|m| matches!(m,
        crate::RunMount::Bind { source, target, .. } if target == "/in" && source.ends_with("data"))));
    let e = run_build(
        &f,
        c.path(),
        "FROM base\nRUN --mount=type=secret,id=nope,required true\n",
        |_| {},
    )
    .err();
    assert_eq!(e, "secret nope: not found");
}

#[test]
fn build_from_a_context_tar() {
    let f = fake();
    let mut b = tar::Builder::new(Vec::new());
    for (p, c) in [
        (
            "Dockerfile",
            "ARG G=dflt\nFROM base\nARG G\nLABEL g=$G\nCOPY f /f\n",
        ),
        ("f", "data"),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(c.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, p, c.as_bytes()).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut opts = BuildOptions::default();
    // A build-arg sent as null keeps the default.
    opts.build_args.insert("G".into(), None);
    let mut events = Vec::new();
    let r = crate::build_tar(&f, &tar[..], scratch.path(), &opts, &mut events).unwrap();
    assert_eq!(f.config_of(&r.image_id)["config"]["Labels"]["g"], "dflt");
    assert_eq!(
        std::fs::read_to_string(f.root_of(&r.image_id).join("f")).unwrap(),
        "data"
    );
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
}

#[test]
fn a_client_that_goes_away_cancels() {
    struct Gone;
    impl crate::Progress for Gone {
        fn event(&mut self, _: Event) {}
        fn cancelled(&self) -> bool {
            true
        }
    }
    let f = fake();
    let c = context(&[]);
    std::fs::write(c.path().join("Dockerfile"), "FROM base\nRUN true\n").unwrap();
    let opts = BuildOptions {
        context: c.path().to_path_buf(),
        ..Default::default()
    };
    let e = build(&f, &opts, &mut Gone).unwrap_err();
    assert!(matches!(e, BuildError::Cancelled));
    assert!(f.calls.lock().unwrap().runs.is_empty());
}

#[test]
fn cache_from_limits_cache_hits_to_those_images() {
    let f = fake();
    let c = context(&[]);
    let df = "FROM base\nENV FOO=bar\nRUN touch baz\nRUN touch bax\n";
    run_build(&f, c.path(), df, |o| o.tags = vec!["build1".into()]).id();
    let hits = |out: &Out| out.text().matches("Using cache").count();
    let out = run_build(&f, c.path(), df, |o| o.cache_from = vec!["build1".into()]);
    assert_eq!(hits(&out), 3, "{}", out.text());
    // A name that does not resolve leaves nothing to take from the cache.
    let out = run_build(&f, c.path(), df, |o| {
        o.cache_from = vec!["nosuchtag".into()]
    });
    assert_eq!(hits(&out), 0, "{}", out.text());
    // An image that shares only the first steps serves only those.
    let other = "FROM base\nENV FOO=bar\nRUN touch other\n";
    run_build(&f, c.path(), other, |o| o.tags = vec!["other".into()]).id();
    let out = run_build(&f, c.path(), df, |o| o.cache_from = vec!["other".into()]);
    assert_eq!(hits(&out), 1, "{}", out.text());
}
