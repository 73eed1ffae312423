//! The command line: Docker's verbs, flags and exit codes, one file per verb group.

pub mod build;
pub mod container;
pub mod context;
pub mod cp;
pub mod create;
pub mod daemon;
mod daemon_config;
mod daemon_hosts;
pub mod df;
mod dial;
pub mod exec;
pub mod image_io;
pub mod images;
pub mod inspect;
pub mod isolation;
pub mod logs;
pub mod network;
pub mod opts;
pub mod ps;
pub mod registry;
pub mod resources;
pub mod run;
#[cfg(test)]
mod snapshot_tests;
pub mod stats;
pub mod stream;
pub mod system;
mod usage;
pub mod volume;

use clap::{Parser, Subcommand};
use std::io::Write;

/// A command's exit status whose message (if any) is already printed.
#[derive(Debug, thiserror::Error)]
#[error("exit status {0}")]
pub struct Exit(pub i32);

/// Docker 28's `withHelp`: `pier: <message>` and where to find help; every
/// failure of `run`, `create` (and `exec`'s flags) is printed so.
pub fn report_error(name: &str, msg: &str) {
    eprintln!("pier: {msg}\n\nRun 'pier {name} --help' for more information");
}

/// Docker's `runStartContainerErr`: 127 when the command is missing, 126 when
/// it cannot be run, 125 for any other engine failure.
pub fn start_error_code(msg: &str) -> i32 {
    let m = msg
        .strip_prefix("Error response from daemon: ")
        .unwrap_or(msg);
    if m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("system cannot find the file specified")
    {
        127
    } else if m.contains("permission denied") || m.contains("is a directory") {
        126
    } else {
        125
    }
}

/// Writes a line to stdout; a closed pipe (`pier ps | head`) is not an error.
pub fn println(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
}

/// Writes text as is to stdout.
pub fn print(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

#[derive(Parser, Debug)]
#[command(
    name = "pier",
    about = "A self-sufficient runtime for containers",
    disable_help_subcommand = true,
    disable_version_flag = true,
    subcommand_required = false,
    arg_required_else_help = false
)]
pub struct Cli {
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host")]
    pub host: Option<String>,
    /// Name of the context to use to connect to the daemon (overrides
    /// DOCKER_HOST env var and default context set with "pier context use")
    #[arg(short = 'c', long = "context")]
    pub context: Option<String>,
    /// Use TLS; implied by --tlsverify
    #[arg(long)]
    pub tls: bool,
    /// Use TLS and verify the remote
    #[arg(long)]
    pub tlsverify: bool,
    /// Trust certs signed only by this CA
    #[arg(long)]
    pub tlscacert: Option<std::path::PathBuf>,
    /// Path to TLS certificate file
    #[arg(long)]
    pub tlscert: Option<std::path::PathBuf>,
    /// Path to TLS key file
    #[arg(long)]
    pub tlskey: Option<std::path::PathBuf>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Print version information and quit
    #[arg(short = 'v', long)]
    pub version: bool,
    /// Set the logging level (accepted for compatibility)
    #[arg(short = 'l', long = "log-level")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Cmd {
    /// Run the Pier daemon in the foreground
    Daemon(daemon::DaemonArgs),
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Create a new container
    Create(create::CreateCmd),
    /// Start one or more stopped containers
    Start(run::StartArgs),
    /// Stop one or more running containers
    Stop(container::StopArgs),
    /// Kill one or more running containers
    Kill(container::KillArgs),
    /// Restart one or more containers
    Restart(container::RestartArgs),
    /// Remove one or more containers
    Rm(container::RmArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(run::AttachArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container::IdsArgs),
    /// Return low-level information on Docker objects
    Inspect(inspect::InspectArgs),
    /// Display the running processes of a container
    Top(container::TopArgs),
    /// Rename a container
    Rename(container::RenameArgs),
    /// Pause all processes within one or more containers
    Pause(container::IdsArgs),
    /// Unpause all processes within one or more containers
    Unpause(container::IdsArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(container::OneArgs),
    /// Export a container's filesystem as a tar archive
    Export(cp::ExportArgs),
    /// Create a new image from a container's changes
    Commit(container::CommitArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// List port mappings or a specific mapping for the container
    Port(container::PortArgs),
    /// Update configuration of one or more containers
    Update(container::UpdateArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(image_io::ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(image_io::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(image_io::SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(images::TagArgs),
    /// Remove one or more images
    Rmi(images::RmiArgs),
    /// Show the history of an image
    History(images::HistoryArgs),
    /// Download an image from a registry
    Pull(registry::PullArgs),
    /// Upload an image to a registry
    Push(registry::PushArgs),
    /// Log in to a registry
    Login(registry::LoginArgs),
    /// Log out from a registry
    Logout(registry::LogoutArgs),
    /// Show the Pier version information
    Version(system::VersionArgs),
    /// Display system-wide information
    Info(system::InfoArgs),
    /// Get real time events from the server
    Events(system::EventsArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage Pier
    #[command(subcommand)]
    System(SystemCmd),
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Manage builds
    #[command(subcommand)]
    Builder(build::BuilderCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volume::VolumeCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCmd),
    /// Swarm mode (not in Pier: its cluster path is Kubernetes)
    Swarm(system::SwarmArgs),
    /// Manage contexts
    #[command(subcommand)]
    Context(context::ContextCmd),
    /// Define and run multi-container applications
    Compose(ComposeArgs),
    /// Play Kubernetes YAML as pods, or generate it from containers
    Kube(KubeArgs),
}

/// `pier kube …`: everything after `kube` is parsed by `pier-kube`.
#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct KubeArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `pier compose …`: everything after `compose` is parsed by `pier-compose`.
#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct ComposeArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ContainerCmd {
    /// List containers
    #[command(name = "ls", visible_aliases = ["ps", "list"])]
    Ls(ps::PsArgs),
    /// Remove one or more containers
    #[command(visible_aliases = ["remove"])]
    Rm(container::RmArgs),
    /// Display detailed information on one or more containers
    Inspect(inspect::TypedInspectArgs),
    /// Remove all stopped containers
    Prune(container::PruneArgs),
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Create a new container
    Create(create::CreateCmd),
    Start(run::StartArgs),
    Stop(container::StopArgs),
    Kill(container::KillArgs),
    Restart(container::RestartArgs),
    Logs(logs::LogsArgs),
    Exec(exec::ExecArgs),
    Attach(run::AttachArgs),
    Wait(container::IdsArgs),
    Top(container::TopArgs),
    Rename(container::RenameArgs),
    Pause(container::IdsArgs),
    Unpause(container::IdsArgs),
    Cp(cp::CpArgs),
    Diff(container::OneArgs),
    Export(cp::ExportArgs),
    Commit(container::CommitArgs),
    Stats(stats::StatsArgs),
    Port(container::PortArgs),
    Update(container::UpdateArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ImageCmd {
    /// List images
    #[command(name = "ls", visible_aliases = ["list"])]
    Ls(images::ImagesArgs),
    /// Remove one or more images
    #[command(visible_aliases = ["remove"])]
    Rm(images::RmiArgs),
    /// Display detailed information on one or more images
    Inspect(inspect::TypedInspectArgs),
    /// Remove unused images
    Prune(images::ImagePruneArgs),
    Import(image_io::ImportArgs),
    Load(image_io::LoadArgs),
    Save(image_io::SaveArgs),
    Tag(images::TagArgs),
    History(images::HistoryArgs),
    Pull(registry::PullArgs),
    Push(registry::PushArgs),
    Build(build::BuildArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum SystemCmd {
    /// Show Pier disk usage
    Df(df::DfArgs),
    /// Remove unused data
    Prune(system::SystemPruneArgs),
    /// Display system-wide information
    Info(system::InfoArgs),
    /// Get real time events from the server
    Events(system::EventsArgs),
    /// Proxy the stdio stream to the daemon connection. Should not be invoked manually.
    #[command(name = "dial-stdio")]
    DialStdio,
}

/// Folds `container …`/`image …`/`system …` into the top-level verbs.
fn flatten(cmd: Cmd) -> Cmd {
    match cmd {
        Cmd::Container(c) => match c {
            ContainerCmd::Ls(a) => Cmd::Ps(a),
            ContainerCmd::Rm(a) => Cmd::Rm(a),
            ContainerCmd::Inspect(a) => Cmd::Inspect(a.into_inspect("container")),
            ContainerCmd::Prune(a) => Cmd::Container(ContainerCmd::Prune(a)),
            ContainerCmd::Run(a) => Cmd::Run(a),
            ContainerCmd::Create(a) => Cmd::Create(a),
            ContainerCmd::Start(a) => Cmd::Start(a),
            ContainerCmd::Stop(a) => Cmd::Stop(a),
            ContainerCmd::Kill(a) => Cmd::Kill(a),
            ContainerCmd::Restart(a) => Cmd::Restart(a),
            ContainerCmd::Logs(a) => Cmd::Logs(a),
            ContainerCmd::Exec(a) => Cmd::Exec(a),
            ContainerCmd::Attach(a) => Cmd::Attach(a),
            ContainerCmd::Wait(a) => Cmd::Wait(a),
            ContainerCmd::Top(a) => Cmd::Top(a),
            ContainerCmd::Rename(a) => Cmd::Rename(a),
            ContainerCmd::Pause(a) => Cmd::Pause(a),
            ContainerCmd::Unpause(a) => Cmd::Unpause(a),
            ContainerCmd::Cp(a) => Cmd::Cp(a),
            ContainerCmd::Diff(a) => Cmd::Diff(a),
            ContainerCmd::Export(a) => Cmd::Export(a),
            ContainerCmd::Commit(a) => Cmd::Commit(a),
            ContainerCmd::Stats(a) => Cmd::Stats(a),
            ContainerCmd::Port(a) => Cmd::Port(a),
            ContainerCmd::Update(a) => Cmd::Update(a),
        },
        Cmd::Image(c) => match c {
            ImageCmd::Ls(a) => Cmd::Images(a),
            ImageCmd::Rm(a) => Cmd::Rmi(a),
            ImageCmd::Inspect(a) => Cmd::Inspect(a.into_inspect("image")),
            ImageCmd::Prune(a) => Cmd::Image(ImageCmd::Prune(a)),
            ImageCmd::Import(a) => Cmd::Import(a),
            ImageCmd::Load(a) => Cmd::Load(a),
            ImageCmd::Save(a) => Cmd::Save(a),
            ImageCmd::Tag(a) => Cmd::Tag(a),
            ImageCmd::History(a) => Cmd::History(a),
            ImageCmd::Pull(a) => Cmd::Pull(a),
            ImageCmd::Push(a) => Cmd::Push(a),
            ImageCmd::Build(a) => Cmd::Build(a),
        },
        Cmd::System(SystemCmd::Info(a)) => Cmd::Info(a),
        Cmd::System(SystemCmd::Events(a)) => Cmd::Events(a),
        Cmd::Builder(build::BuilderCmd::Build(a)) => Cmd::Build(a),
        other => other,
    }
}

impl Cli {
    /// The connection flags, for `pier_client::connect`.
    pub fn connect_options(&self) -> pier_client::ConnectOptions {
        pier_client::ConnectOptions {
            host: self.host.clone(),
            context: self.context.clone(),
            tls: self.tls,
            tlsverify: self.tlsverify,
            tlscacert: self.tlscacert.clone(),
            tlscert: self.tlscert.clone(),
            tlskey: self.tlskey.clone(),
        }
    }
}

/// True for the daemon, which wants a multi-threaded runtime.
pub fn is_daemon(cli: &Cli) -> bool {
    matches!(cli.cmd, Some(Cmd::Daemon(_)))
}

/// Runs the parsed command; returns the process exit code.
pub async fn dispatch(mut cli: Cli) -> anyhow::Result<i32> {
    let conn = cli.connect_options();
    let Some(cmd) = cli.cmd.take() else {
        unreachable!("main prints help when no command is given");
    };
    let cmd = flatten(cmd);
    if let Cmd::Daemon(a) = cmd {
        return daemon::run(a, cli.host, cli.debug, cli.log_level).await;
    }
    if let Cmd::Version(a) = cmd {
        return system::version(&conn, a).await;
    }
    if let Cmd::Login(a) = cmd {
        return registry::login(&conn, a).await;
    }
    if let Cmd::Context(c) = cmd {
        return context::context(&conn, c);
    }
    if let Cmd::System(SystemCmd::DialStdio) = cmd {
        return dial::dial_stdio(&conn).await;
    }
    if let Cmd::Logout(a) = cmd {
        return registry::logout(a).await;
    }
    if let Cmd::Swarm(_) = cmd {
        return Ok(system::swarm());
    }
    if let Cmd::Compose(a) = cmd {
        // Compose connects itself, and `config` needs no daemon at all.
        return Ok(pier_compose::cli::main(conn, a.args).await);
    }
    if let Cmd::Kube(a) = cmd {
        // Like compose: it connects itself, and `generate --compose` needs no daemon.
        return Ok(pier_kube::main(conn, a.args).await);
    }
    let client = pier_client::connect(&conn).await?;
    let c = &client;
    match cmd {
        Cmd::Run(a) => run::run(c, a).await,
        Cmd::Create(a) => create::create(c, a).await,
        Cmd::Start(a) => run::start(c, a).await,
        Cmd::Attach(a) => run::attach(c, a).await,
        Cmd::Stop(a) => container::stop(c, a).await,
        Cmd::Kill(a) => container::kill(c, a).await,
        Cmd::Restart(a) => container::restart(c, a).await,
        Cmd::Rm(a) => container::rm(c, a).await,
        Cmd::Wait(a) => container::wait(c, a).await,
        Cmd::Top(a) => container::top(c, a).await,
        Cmd::Rename(a) => container::rename(c, a).await,
        Cmd::Pause(a) => container::pause(c, a, true).await,
        Cmd::Unpause(a) => container::pause(c, a, false).await,
        Cmd::Diff(a) => container::diff(c, a).await,
        Cmd::Commit(a) => container::commit(c, a).await,
        Cmd::Port(a) => container::port(c, a).await,
        Cmd::Update(a) => container::update(c, a).await,
        Cmd::Container(ContainerCmd::Prune(a)) => container::prune(c, a).await,
        Cmd::Ps(a) => ps::ps(c, a).await,
        Cmd::Logs(a) => logs::logs(c, a).await,
        Cmd::Exec(a) => exec::exec(c, a).await,
        Cmd::Inspect(a) => inspect::inspect(c, a).await,
        Cmd::Cp(a) => cp::cp(c, a).await,
        Cmd::Export(a) => cp::export(c, a).await,
        Cmd::Stats(a) => stats::stats(c, a).await,
        Cmd::Images(a) => images::images(c, a).await,
        Cmd::Tag(a) => images::tag(c, a).await,
        Cmd::Rmi(a) => images::rmi(c, a).await,
        Cmd::History(a) => images::history(c, a).await,
        Cmd::Image(ImageCmd::Prune(a)) => images::prune(c, a).await,
        Cmd::Import(a) => image_io::import(c, a).await,
        Cmd::Load(a) => image_io::load(c, a).await,
        Cmd::Save(a) => image_io::save(c, a).await,
        Cmd::Pull(a) => registry::pull(c, a).await,
        Cmd::Push(a) => registry::push(c, a).await,
        Cmd::Info(a) => system::info(c, a).await,
        Cmd::Events(a) => system::events(c, a).await,
        Cmd::System(SystemCmd::Df(a)) => df::df(c, a).await,
        Cmd::System(SystemCmd::Prune(a)) => system::prune(c, a).await,
        Cmd::Build(a) => build::build(c, a).await,
        Cmd::Builder(a) => build::builder(c, a).await,
        Cmd::Volume(a) => volume::volume(c, a).await,
        Cmd::Network(a) => network::network(c, a).await,
        Cmd::Daemon(_)
        | Cmd::Version(_)
        | Cmd::Login(_)
        | Cmd::Logout(_)
        | Cmd::Swarm(_)
        | Cmd::Compose(_)
        | Cmd::Kube(_)
        | Cmd::Context(_)
        | Cmd::Container(_)
        | Cmd::Image(_)
        | Cmd::System(_) => {
            unreachable!("handled above")
        }
    }
}

/// The verb path (`run`, `container ls`) named in argv, for usage messages.
pub fn command_path(args: &[String]) -> String {
    let mut words = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if matches!(
            a.as_str(),
            "-H" | "--host"
                | "-l"
                | "--log-level"
                | "-c"
                | "--context"
                | "--tlscacert"
                | "--tlscert"
                | "--tlskey"
        ) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        words.push(a.clone());
        if words.len() == 2
            || !matches!(
                a.as_str(),
                "container" | "image" | "system" | "volume" | "network" | "builder" | "context"
            )
        {
            break;
        }
        i += 1;
    }
    words.join(" ")
}

/// Prints a clap error the way docker's CLI prints usage errors; returns the exit code.
pub fn usage_error(e: clap::Error, args: &[String]) -> i32 {
    match usage::usage_message(&e, &command_path(args)) {
        Some((msg, code)) => {
            eprintln!("{msg}");
            code
        }
        None => {
            let _ = e.print();
            i32::from(e.kind() == clap::error::ErrorKind::MissingSubcommand)
        }
    }
}

/// What a failed command prints on stderr (nothing when it already did) and
/// its exit code.
pub fn failure(e: &anyhow::Error) -> (Option<String>, i32) {
    match e.downcast_ref::<Exit>() {
        Some(Exit(code)) => (None, *code),
        None => (Some(e.to_string()), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn verb_paths() {
        assert_eq!(
            command_path(&argv("pier -H unix:///x run -d busybox")),
            "run"
        );
        assert_eq!(command_path(&argv("pier container ls -a")), "container ls");
        assert_eq!(command_path(&argv("pier")), "");
    }

    #[test]
    fn start_errors_map_to_docker_codes() {
        assert_eq!(
            start_error_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_error_code("open /x: no such file or directory"), 127);
        assert_eq!(start_error_code("exec /etc: permission denied"), 126);
        assert_eq!(start_error_code("cgroup failure"), 125);
    }

    #[test]
    fn aliases_parse() {
        for line in [
            "pier container ls -a",
            "pier container ps",
            "pier image ls -q",
            "pier images --digests",
            "pier container rm -f x",
            "pier rmi -f a b",
            "pier image rm a",
            "pier container inspect x",
            "pier image inspect x",
            "pier system df -v",
            "pier container prune -f",
            "pier image prune -a -f",
            "pier run --rm -it -h box -p 80:80 busybox sh",
            "pier history -H=false busybox",
            "pier logs -f --tail 10 x",
            "pier -H unix:///tmp/s ps",
        ] {
            Cli::try_parse_from(argv(line)).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }
}
