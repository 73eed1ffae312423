//! Typing raw nodes into [`Instruction`]s, with BuildKit's argument and
//! flag validation.

mod flags;
mod run;
mod types;
mod units;

pub use run::{parse_mount, CacheSharing, Mount, MountType, NetworkMode, Security};
pub use types::*;

use flags::Kind;

use crate::error::{suggest, ParseError, ParseErrorKind};
use crate::heredoc::parse_heredoc;
use crate::node::{chomp_heredoc_content, Node};

const ALL_INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

type Res<T> = Result<T, ParseErrorKind>;

/// Types one node, reporting errors at the node's lines.
pub(crate) fn parse_command(node: &Node) -> Result<Command, ParseError> {
    let instruction =
        parse_instruction(node).map_err(|k| ParseError::new(k, node.start_line, node.end_line))?;
    Ok(Command {
        instruction,
        original: node.original.clone(),
        start_line: node.start_line,
        end_line: node.end_line,
        comments: node.comments.clone(),
    })
}

fn parse_instruction(node: &Node) -> Res<Instruction> {
    let name = node.name();
    let args = &node.args;
    let no_flags = || flags::parse(&name, &node.flags, &[]).map(|_| ());
    Ok(match name.as_str() {
        "env" => {
            no_flags()?;
            Instruction::Env(parse_kvps(args, "ENV")?)
        }
        "label" => {
            no_flags()?;
            Instruction::Label(parse_kvps(args, "LABEL")?)
        }
        "maintainer" => {
            let v = exactly_one(args, "MAINTAINER")?;
            no_flags()?;
            Instruction::Maintainer(v)
        }
        "workdir" => {
            let v = exactly_one(args, "WORKDIR")?;
            no_flags()?;
            Instruction::Workdir(v)
        }
        "user" => {
            let v = exactly_one(args, "USER")?;
            no_flags()?;
            Instruction::User(v)
        }
        // BuildKit ignores flags on STOPSIGNAL and ARG.
        "stopsignal" => Instruction::StopSignal(exactly_one(args, "STOPSIGNAL")?),
        "arg" => Instruction::Arg(parse_args(args)?),
        "expose" => {
            at_least_one(args, "EXPOSE")?;
            no_flags()?;
            let mut ports = args.clone();
            ports.sort();
            Instruction::Expose(ports)
        }
        "volume" => {
            at_least_one(args, "VOLUME")?;
            no_flags()?;
            let vols = args
                .iter()
                .map(|v| match v.trim() {
                    "" => Err(ParseErrorKind::EmptyVolume),
                    t => Ok(t.to_string()),
                })
                .collect::<Res<Vec<_>>>()?;
            Instruction::Volume(vols)
        }
        "cmd" => {
            no_flags()?;
            Instruction::Cmd(command_line(node))
        }
        "entrypoint" => {
            no_flags()?;
            Instruction::Entrypoint(command_line(node))
        }
        "shell" => {
            no_flags()?;
            at_least_one(args, "SHELL")?;
            if !node.json {
                return Err(ParseErrorKind::NotJson("SHELL"));
            }
            Instruction::Shell(args.clone())
        }
        "from" => Instruction::From(parse_from(node)?),
        "run" => Instruction::Run(parse_run(node)?),
        "copy" => Instruction::Copy(parse_copy(node)?),
        "add" => Instruction::Add(parse_add(node)?),
        "healthcheck" => Instruction::Healthcheck(parse_healthcheck(node)?),
        "onbuild" => Instruction::Onbuild(parse_onbuild(node)?),
        _ => {
            return Err(ParseErrorKind::UnknownInstruction {
                name: node.value.clone(),
                suggestion: suggest(&node.value, &ALL_INSTRUCTIONS, false),
            })
        }
    })
}

fn at_least_one(args: &[String], cmd: &'static str) -> Res<()> {
    if args.is_empty() {
        return Err(ParseErrorKind::AtLeastOneArgument(cmd));
    }
    Ok(())
}

fn exactly_one(args: &[String], cmd: &'static str) -> Res<String> {
    match args {
        [one] => Ok(one.clone()),
        _ => Err(ParseErrorKind::ExactlyOneArgument(cmd)),
    }
}

fn parse_kvps(args: &[String], cmd: &'static str) -> Res<Vec<KeyValue>> {
    at_least_one(args, cmd)?;
    args.chunks(3)
        .map(|c| match c {
            [k, ..] if k.is_empty() => Err(ParseErrorKind::BlankName(cmd)),
            [k, v, sep] => Ok(KeyValue {
                key: k.clone(),
                value: v.clone(),
                legacy: sep.is_empty(),
            }),
            _ => Err(ParseErrorKind::MustHaveTwoArguments(cmd)),
        })
        .collect()
}

fn parse_args(args: &[String]) -> Res<Vec<ArgDecl>> {
    at_least_one(args, "ARG")?;
    args.iter()
        .map(|a| match a.split_once('=') {
            Some(("", _)) => Err(ParseErrorKind::BlankName("ARG")),
            Some((k, v)) => Ok(ArgDecl {
                name: k.to_string(),
                default: Some(v.to_string()),
            }),
            None => Ok(ArgDecl {
                name: a.clone(),
                default: None,
            }),
        })
        .collect()
}

/// Exec form keeps the JSON strings; shell form is one string.
fn command_line(node: &Node) -> CommandLine {
    if node.json {
        CommandLine::Exec(node.args.clone())
    } else {
        CommandLine::Shell(node.args.join(" "))
    }
}

fn parse_from(node: &Node) -> Res<From> {
    let args = &node.args;
    let name = match args.as_slice() {
        [_, kw, name] if kw.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            let valid = lower.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && lower
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err(ParseErrorKind::InvalidStageName(name.clone()));
            }
            Some(lower)
        }
        [_] => None,
        _ => return Err(ParseErrorKind::FromArguments),
    };
    let f = flags::parse("from", &node.flags, &[("platform", Kind::Str)])?;
    Ok(From {
        image: args[0].clone(),
        name,
        platform: f.string("platform"),
    })
}

fn parse_run(node: &Node) -> Res<Run> {
    let spec = [
        ("mount", Kind::List),
        ("network", Kind::Str),
        ("security", Kind::Str),
        ("device", Kind::List),
    ];
    let f = flags::parse("run", &node.flags, &spec)?;
    at_least_one(&node.args, "RUN")?;
    let network = f.string("network").unwrap_or_else(|| "default".into());
    let network =
        NetworkMode::parse(&network).ok_or(ParseErrorKind::InvalidNetwork(network.clone()))?;
    let security = f.string("security").unwrap_or_else(|| "sandbox".into());
    let security =
        Security::parse(&security).ok_or(ParseErrorKind::InvalidSecurity(security.clone()))?;
    let mount_specs = f.list("mount");
    let mut mounts = Vec::new();
    for spec in &mount_specs {
        if let Some(mount) = literal_mount(spec)? {
            mounts.push(mount);
        }
    }
    Ok(Run {
        command: command_line(node),
        heredocs: node.heredocs.clone(),
        mounts,
        mount_specs,
        network,
        security,
        devices: f.list("device"),
        flags_used: f.used.into_iter().collect(),
    })
}

/// Parses a mount taking values literally. Mounts that use variables are
/// left to the builder (None), except `from=`, which can never use them.
fn literal_mount(spec: &str) -> Res<Option<Mount>> {
    for field in spec.split(',') {
        if let Some((k, v)) = field.split_once('=') {
            let dollar = v.find('$');
            if k.eq_ignore_ascii_case("from") && dollar.is_some_and(|i| i != v.len() - 1) {
                return Err(ParseErrorKind::Mount(
                    "'from' doesn't support variable expansion, define alias stage instead".into(),
                ));
            }
        }
    }
    match parse_mount(spec, &|v| Ok(v.to_string())) {
        Ok(m) => Ok(Some(m)),
        Err(_) if spec.contains('$') => Ok(None),
        Err(e) => Err(ParseErrorKind::Mount(e)),
    }
}

/// Splits COPY/ADD arguments into paths, heredoc contents and destination.
fn sources_and_dest(
    node: &Node,
    cmd: &'static str,
) -> Res<(Vec<String>, Vec<SourceContent>, String)> {
    let (dest, srcs) = match node.args.split_last() {
        Some((d, s)) if !s.is_empty() => (d.clone(), s),
        _ => return Err(ParseErrorKind::NoDestination(cmd)),
    };
    if matches!(parse_heredoc(&dest), Ok(Some(_))) {
        return Err(ParseErrorKind::BadHeredoc(cmd.to_string(), "a destination"));
    }
    let mut paths = Vec::new();
    let mut contents = Vec::new();
    for src in srcs {
        match parse_heredoc(src) {
            Ok(Some(h)) => {
                let body = node
                    .heredocs
                    .iter()
                    .find(|d| d.name == h.name)
                    .map(|d| d.content.clone())
                    .unwrap_or_default();
                let data = if h.chomp {
                    chomp_heredoc_content(&body)
                } else {
                    body
                };
                contents.push(SourceContent {
                    path: h.name,
                    data,
                    expand: h.expand,
                });
            }
            _ => paths.push(src.clone()),
        }
    }
    Ok((paths, contents, dest))
}

fn parse_copy(node: &Node) -> Res<Copy> {
    if node.args.len() < 2 {
        return Err(ParseErrorKind::NoDestination("COPY"));
    }
    let spec = [
        ("chown", Kind::Str),
        ("from", Kind::Str),
        ("chmod", Kind::Str),
        ("link", Kind::Bool),
        ("exclude", Kind::List),
        ("parents", Kind::Bool),
    ];
    let f = flags::parse("copy", &node.flags, &spec)?;
    let (sources, heredocs, dest) = sources_and_dest(node, "COPY")?;
    Ok(Copy {
        sources,
        heredocs,
        dest,
        from: f.string("from").filter(|s| !s.is_empty()),
        chown: f.string("chown").filter(|s| !s.is_empty()),
        chmod: f.string("chmod").filter(|s| !s.is_empty()),
        link: f.bool("link").unwrap_or(false),
        parents: f.bool("parents").unwrap_or(false),
        exclude: f.list("exclude"),
        json: node.json,
    })
}

fn parse_add(node: &Node) -> Res<Add> {
    if node.args.len() < 2 {
        return Err(ParseErrorKind::NoDestination("ADD"));
    }
    let spec = [
        ("chown", Kind::Str),
        ("chmod", Kind::Str),
        ("link", Kind::Bool),
        ("keep-git-dir", Kind::Bool),
        ("checksum", Kind::Str),
        ("unpack", Kind::Bool),
        ("exclude", Kind::List),
    ];
    let f = flags::parse("add", &node.flags, &spec)?;
    let (sources, heredocs, dest) = sources_and_dest(node, "ADD")?;
    Ok(Add {
        sources,
        heredocs,
        dest,
        chown: f.string("chown").filter(|s| !s.is_empty()),
        chmod: f.string("chmod").filter(|s| !s.is_empty()),
        link: f.bool("link").unwrap_or(false),
        keep_git_dir: f.bool("keep-git-dir"),
        checksum: f.string("checksum").filter(|s| !s.is_empty()),
        unpack: f.bool("unpack"),
        exclude: f.list("exclude"),
        json: node.json,
    })
}

fn parse_healthcheck(node: &Node) -> Res<Healthcheck> {
    at_least_one(&node.args, "HEALTHCHECK")?;
    let typ = node.args[0].to_uppercase();
    let rest = &node.args[1..];
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err(ParseErrorKind::HealthcheckNoneArgs);
        }
        return Ok(Healthcheck::None);
    }
    let spec = [
        ("interval", Kind::Str),
        ("timeout", Kind::Str),
        ("start-period", Kind::Str),
        ("start-interval", Kind::Str),
        ("retries", Kind::Str),
    ];
    let f = flags::parse("healthcheck", &node.flags, &spec)?;
    if typ != "CMD" {
        return Err(ParseErrorKind::HealthcheckType(typ));
    }
    if rest.is_empty() {
        return Err(ParseErrorKind::HealthcheckMissingCommand);
    }
    let mut test = vec![if node.json { "CMD" } else { "CMD-SHELL" }.to_string()];
    if node.json {
        test.extend(rest.iter().cloned());
    } else {
        test.push(rest.join(" "));
    }
    let interval = |name: &str| {
        units::parse_opt_interval(name, f.string(name).as_deref())
            .map_err(ParseErrorKind::Healthcheck)
    };
    let retries = match f.string("retries").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => {
            let n: i64 = s.parse().map_err(|_| {
                ParseErrorKind::Healthcheck(format!(
                    "strconv.ParseInt: parsing \"{s}\": invalid syntax"
                ))
            })?;
            if n < 0 {
                return Err(ParseErrorKind::Healthcheck(format!(
                    "--retries cannot be negative ({n})"
                )));
            }
            Some(u32::try_from(n).map_err(|_| {
                ParseErrorKind::Healthcheck(format!(
                    "strconv.ParseInt: parsing \"{s}\": value out of range"
                ))
            })?)
        }
    };
    Ok(Healthcheck::Check(HealthConfig {
        test,
        interval: interval("interval")?,
        timeout: interval("timeout")?,
        start_period: interval("start-period")?,
        start_interval: interval("start-interval")?,
        retries,
    }))
}

fn parse_onbuild(node: &Node) -> Res<Onbuild> {
    let Some(sub) = node.sub.as_deref() else {
        return Err(ParseErrorKind::AtLeastOneArgument("ONBUILD"));
    };
    no_flags_on(node)?;
    let trigger = sub.value.trim().to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err(ParseErrorKind::OnbuildChain),
        "MAINTAINER" | "FROM" => return Err(ParseErrorKind::OnbuildTrigger(trigger)),
        _ => {}
    }
    let mut expression = strip_onbuild_keyword(&node.original).to_string();
    for h in &node.heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    let with_heredocs = Node {
        heredocs: node.heredocs.clone(),
        ..sub.clone()
    };
    Ok(Onbuild {
        expression,
        trigger: Box::new(parse_instruction(&with_heredocs)?),
    })
}

fn no_flags_on(node: &Node) -> Res<()> {
    flags::parse(&node.name(), &node.flags, &[]).map(|_| ())
}

/// `(?i)^\s*ONBUILD\s*` removed.
fn strip_onbuild_keyword(original: &str) -> &str {
    let t = original.trim_start();
    match t.get(..7) {
        Some(kw) if kw.eq_ignore_ascii_case("onbuild") => t[7..].trim_start(),
        _ => original,
    }
}

#[cfg(test)]
mod tests;
