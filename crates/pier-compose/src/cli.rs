//! `pier compose …`: Compose v2's global flags and commands.

use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{ComposeError, Result};
use crate::load::{self, Options, Project};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "pier compose",
    about = "Define and run multi-container applications",
    disable_help_subcommand = true
)]
pub struct ComposeCli {
    /// Compose configuration files
    #[arg(short = 'f', long = "file")]
    pub file: Vec<PathBuf>,
    /// Project name
    #[arg(short = 'p', long = "project-name")]
    pub project_name: Option<String>,
    /// Specify an alternate working directory (default: the path of the first Compose file)
    #[arg(long = "project-directory")]
    pub project_directory: Option<PathBuf>,
    /// Specify an alternate environment file
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Specify a profile to enable
    #[arg(long = "profile")]
    pub profile: Vec<String>,
    /// Set type of progress output (auto, tty, plain, quiet)
    #[arg(long = "progress", value_parser = ["auto", "tty", "plain", "quiet"])]
    pub progress: Option<String>,
    /// Control when to print ANSI control characters ("never"|"always"|"auto")
    #[arg(long = "ansi", default_value = "auto", value_parser = ["never", "always", "auto"])]
    pub ansi: String,
    /// Control max parallelism, -1 for unlimited (Pier's compose works one container at a time)
    #[arg(long = "parallel", allow_hyphen_values = true)]
    pub parallel: Option<i64>,
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse, resolve and render compose file in canonical format
    Config(cmd::config::ConfigArgs),
    /// Create and start containers
    Up(cmd::up::UpArgs),
    /// Creates containers for a service
    Create(cmd::up::CreateArgs),
    /// Stop and remove containers, networks
    Down(cmd::down::DownArgs),
    /// List containers
    Ps(cmd::ps::PsArgs),
    /// View output from containers
    Logs(cmd::logs::LogsArgs),
    /// Build or rebuild services
    Build(cmd::images::BuildArgs),
    /// Pull service images
    Pull(cmd::images::PullArgs),
    /// Start services
    Start(cmd::simple::ServicesArgs),
    /// Stop services
    Stop(cmd::simple::StopArgs),
    /// Restart service containers
    Restart(cmd::simple::StopArgs),
    /// Removes stopped service containers
    Rm(cmd::simple::RmArgs),
    /// Force stop service containers
    Kill(cmd::simple::KillArgs),
    /// Pause services
    Pause(cmd::simple::ServicesArgs),
    /// Unpause services
    Unpause(cmd::simple::ServicesArgs),
    /// Execute a command in a running container
    Exec(cmd::exec::ExecArgs),
    /// Run a one-off command on a service
    Run(cmd::exec::RunArgs),
    /// List running compose projects
    Ls(cmd::simple::LsArgs),
    /// Display the running processes
    Top(cmd::inspect::TopArgs),
    /// Print the public port for a port binding
    Port(cmd::inspect::PortArgs),
    /// List images used by the created containers
    Images(cmd::inspect::ImagesArgs),
    /// Receive real time events from containers
    Events(cmd::events::EventsArgs),
    /// Block until containers of all (or specified) services stop.
    Wait(cmd::events::WaitArgs),
    /// Copy files/folders between a service container and the local filesystem
    Cp(cmd::transfer::CpArgs),
    /// Push service images
    Push(cmd::transfer::PushArgs),
    /// Watch build context for service and rebuild/refresh containers when files are updated
    Watch(cmd::up::WatchArgs),
    /// Show the Docker Compose version information
    Version(VersionArgs),
}

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Shows only Compose's version number
    #[arg(long)]
    pub short: bool,
}

/// `-p`, given before the command or (for `down`) after it.
fn project_name(g: &ComposeCli) -> Option<String> {
    match &g.cmd {
        Command::Down(d) if d.project_name.is_some() => d.project_name.clone(),
        _ => g.project_name.clone(),
    }
}

/// The commands Compose v2 runs with `-p NAME` alone (they act on the
/// containers that exist, not on a file).
fn by_name_ok(c: &Command) -> bool {
    matches!(
        c,
        Command::Down(_)
            | Command::Ps(_)
            | Command::Logs(_)
            | Command::Start(_)
            | Command::Stop(_)
            | Command::Restart(_)
            | Command::Rm(_)
            | Command::Kill(_)
            | Command::Pause(_)
            | Command::Unpause(_)
            | Command::Top(_)
            | Command::Images(_)
            | Command::Port(_)
            | Command::Events(_)
            | Command::Wait(_)
            | Command::Exec(_)
            | Command::Cp(_)
    )
}

fn load_project(g: &ComposeCli) -> Result<Project> {
    let mut o = Options::from_process()?;
    o.files = g.file.clone();
    o.project_name = project_name(g);
    o.project_directory = g.project_directory.clone();
    o.env_files = g.env_file.clone();
    o.profiles = g.profile.clone();
    let p = load::load(&o)?;
    for w in &p.warnings {
        eprintln!("WARN[0000] {w}");
    }
    Ok(p)
}

/// Runs `pier compose <args>` (args without the leading `compose`); returns the exit code.
pub async fn main(mut conn: pier_client::ConnectOptions, args: Vec<String>) -> i32 {
    let argv = std::iter::once("pier compose".to_string()).chain(args);
    let g = match ComposeCli::try_parse_from(argv) {
        Ok(g) => g,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let stdout_tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let stderr_tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Compose v2: `--ansi never` means plain progress, `--ansi always` a live
    // view even off a terminal, `auto` a live view on one.
    let live = match (g.progress.as_deref().unwrap_or("auto"), g.ansi.as_str()) {
        ("quiet" | "plain", _) | (_, "never") => false,
        ("tty", _) | (_, "always") => true,
        _ => stderr_tty,
    };
    let ctx = Ctx {
        conn: {
            conn.host = crate::plugin::host(conn.host.as_deref());
            conn
        },
        quiet_progress: g.progress.as_deref() == Some("quiet"),
        color: match g.ansi.as_str() {
            "always" => true,
            "never" => false,
            _ => stdout_tty,
        },
        live: live.then(|| std::sync::Mutex::new(crate::progress::Live::new(g.ansi != "never"))),
    };
    let r = run(&ctx, &g).await;
    // The block's last state is drawn before anything that follows.
    ctx.pause_progress();
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

async fn run(ctx: &Ctx, g: &ComposeCli) -> Result<i32> {
    if let Command::Version(v) = &g.cmd {
        if v.short {
            crate::out::line(crate::labels::COMPOSE_VERSION);
        } else {
            crate::out::line(&format!(
                "Pier Compose version v{} (Compose Specification as Docker Compose {})",
                env!("CARGO_PKG_VERSION"),
                crate::labels::COMPOSE_VERSION
            ));
        }
        return Ok(0);
    }
    if let Command::Ls(a) = &g.cmd {
        return cmd::simple::ls(ctx, a).await;
    }
    let p = match load_project(g) {
        // Compose v2 finds a project by its labels when only its name is given
        // to a command that acts on what exists.
        Err(ComposeError::Project(m))
            if by_name_ok(&g.cmd)
                && g.file.is_empty()
                && m.starts_with("no configuration file") =>
        {
            match project_name(g) {
                Some(n) => cmd::project_from_labels(ctx, &n).await?,
                None => return Err(ComposeError::Project(m)),
            }
        }
        r => r?,
    };
    match &g.cmd {
        Command::Config(a) => cmd::config::config(&p, a),
        Command::Up(a) => cmd::up::up(ctx, &p, a).await,
        Command::Create(a) => cmd::up::create(ctx, &p, a).await,
        Command::Top(a) => cmd::inspect::top(ctx, &p, a).await,
        Command::Port(a) => cmd::inspect::port(ctx, &p, a).await,
        Command::Images(a) => cmd::inspect::images(ctx, &p, a).await,
        Command::Events(a) => cmd::events::events(ctx, &p, a).await,
        Command::Wait(a) => cmd::events::wait(ctx, &p, a).await,
        Command::Cp(a) => cmd::transfer::cp(ctx, &p, a).await,
        Command::Push(a) => cmd::transfer::push(ctx, &p, a).await,
        Command::Watch(a) => cmd::up::watch(&p, a),
        Command::Down(a) => cmd::down::down(ctx, &p, a).await,
        Command::Ps(a) => cmd::ps::ps(ctx, &p, a).await,
        Command::Logs(a) => cmd::logs::logs(ctx, &p, a).await,
        Command::Build(a) => cmd::images::build(ctx, &p, a).await,
        Command::Pull(a) => cmd::images::pull(ctx, &p, a).await,
        Command::Start(a) => cmd::simple::start(ctx, &p, a).await,
        Command::Stop(a) => cmd::simple::stop(ctx, &p, a, false).await,
        Command::Restart(a) => cmd::simple::stop(ctx, &p, a, true).await,
        Command::Rm(a) => cmd::simple::rm(ctx, &p, a).await,
        Command::Kill(a) => cmd::simple::kill(ctx, &p, a).await,
        Command::Pause(a) => cmd::simple::pause(ctx, &p, a, true).await,
        Command::Unpause(a) => cmd::simple::pause(ctx, &p, a, false).await,
        Command::Exec(a) => cmd::exec::exec(ctx, &p, a).await,
        Command::Run(a) => cmd::exec::run(ctx, &p, a).await,
        Command::Ls(_) | Command::Version(_) => unreachable!("handled above"),
    }
}
