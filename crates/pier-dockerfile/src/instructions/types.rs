//! Typed instructions. Values are as written in the Dockerfile: variables
//! are not expanded here (the builder does that with [`crate::shell`],
//! since it alone knows the ARG/ENV values at each step).

use std::time::Duration;

use super::run::{Mount, NetworkMode, Security};
use crate::node::Heredoc;

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From(From),
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    /// `SHELL ["sh", "-c"]` (JSON form only).
    Shell(Vec<String>),
    Env(Vec<KeyValue>),
    Label(Vec<KeyValue>),
    Arg(Vec<ArgDecl>),
    Copy(Copy),
    Add(Add),
    /// Ports as written (`80`, `53/udp`, `${PORT}`), sorted like BuildKit.
    Expose(Vec<String>),
    Workdir(String),
    User(String),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Onbuild(Onbuild),
    Maintainer(String),
}

impl Instruction {
    /// Uppercase keyword (`RUN`, `COPY`, ...).
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Shell(_) => "SHELL",
            Instruction::Env(_) => "ENV",
            Instruction::Label(_) => "LABEL",
            Instruction::Arg(_) => "ARG",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::User(_) => "USER",
            Instruction::Volume(_) => "VOLUME",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// An instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub instruction: Instruction,
    /// The logical source line (continuations joined, heredoc bodies not
    /// included).
    pub original: String,
    pub start_line: usize,
    pub end_line: usize,
    /// Comment lines directly above.
    pub comments: Vec<String>,
}

/// `FROM [--platform=p] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    pub image: String,
    /// Stage name, lowercased.
    pub name: Option<String>,
    pub platform: Option<String>,
}

/// Exec form (JSON array) or shell form (one string for the shell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

impl CommandLine {
    pub fn is_shell(&self) -> bool {
        matches!(self, CommandLine::Shell(_))
    }
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: CommandLine,
    /// Heredocs named on the line; for `RUN <<EOF` the first one is the script.
    pub heredocs: Vec<Heredoc>,
    /// `--mount` values parsed literally. When a value uses variables, call
    /// [`crate::parse_mount`] on [`Run::mount_specs`] with an expander.
    pub mounts: Vec<Mount>,
    /// The raw `--mount` values.
    pub mount_specs: Vec<String>,
    pub network: NetworkMode,
    pub security: Security,
    /// Raw `--device` values.
    pub devices: Vec<String>,
    /// Names of the flags that were given.
    pub flags_used: Vec<String>,
}

/// ENV / LABEL entry. The value is raw: quotes and escapes still in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Written as `ENV key value` (no `=`): the value is taken verbatim.
    pub legacy: bool,
}

/// One ARG name with optional default (raw, unexpanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// A heredoc used as a COPY/ADD source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceContent {
    /// File name (the heredoc delimiter).
    pub path: String,
    /// Content, tabs already stripped for `<<-`.
    pub data: String,
    /// Whether `$VAR`s in the content are expanded.
    pub expand: bool,
}

/// `COPY`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Copy {
    pub sources: Vec<String>,
    pub heredocs: Vec<SourceContent>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    /// Sources and destination were given as a JSON array.
    pub json: bool,
}

/// `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Add {
    pub sources: Vec<String>,
    pub heredocs: Vec<SourceContent>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub keep_git_dir: Option<bool>,
    pub checksum: Option<String>,
    pub unpack: Option<bool>,
    pub exclude: Vec<String>,
    pub json: bool,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    Check(HealthConfig),
}

/// `HEALTHCHECK [options] CMD ...`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthConfig {
    /// Docker's `Test`: `["CMD", args...]` or `["CMD-SHELL", "cmd"]`.
    pub test: Vec<String>,
    /// None when not given (or zero): inherit / default.
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

/// `ONBUILD <instruction>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger as stored in the image config (`RUN echo hi`), heredoc
    /// bodies appended like BuildKit does.
    pub expression: String,
    /// The trigger parsed.
    pub trigger: Box<Instruction>,
}
