//! `pier kube`: Podman's `kube play`, `kube down` and `kube generate`. Kubernetes
//! YAML is read into a plan of pods (`model`), played over `pier-client` as
//! an infra container plus the app containers joined to its namespaces
//! (`play`); containers and compose projects go the other way (`generate`,
//! `compose`).

pub mod api;
pub mod compose;
pub mod docs;
pub mod error;
pub mod generate;
pub mod labels;
pub mod model;
pub mod play;
pub mod quantity;

pub use error::{KubeError, Result};

use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "pier kube",
    about = "Play Kubernetes YAML as pods of containers, or generate it from containers",
    disable_help_subcommand = true
)]
pub struct KubeCli {
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Play a pod or volume based on Kubernetes YAML
    Play(PlayArgs),
    /// Remove pods based on Kubernetes YAML
    Down(DownArgs),
    /// Generate Kubernetes YAML based on containers or a compose project
    Generate(GenerateArgs),
}

#[derive(Args, Debug)]
pub struct PlayArgs {
    /// Kubernetes YAML file, or `-` for standard input
    pub file: String,
    /// Stop and remove the pods the YAML describes (and the volumes play made for them)
    #[arg(long)]
    pub down: bool,
    /// Remove the pods first when they already exist
    #[arg(long)]
    pub replace: bool,
    /// Build images from directories named like them (false: never build)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub build: Option<bool>,
    /// Directory holding the image directories for --build (default: the YAML's directory)
    #[arg(long = "context-dir")]
    pub context_dir: Option<PathBuf>,
    /// Publish a container port on the host: [[ip:]hostPort:]containerPort[/protocol]
    #[arg(long)]
    pub publish: Vec<String>,
    /// Start the pods after creating them
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "true"
    )]
    pub start: bool,
}

#[derive(Args, Debug)]
pub struct DownArgs {
    /// Kubernetes YAML file, or `-` for standard input
    pub file: String,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Containers (a container of a pod that kube play made stands for its pod)
    pub containers: Vec<String>,
    /// A compose file whose project becomes one pod
    #[arg(long)]
    pub compose: Vec<PathBuf>,
    /// Also generate a Service for the pod's ports
    #[arg(short = 's', long)]
    pub service: bool,
    /// The kind to generate: pod, deployment, daemonset or job
    #[arg(
        short = 't',
        long = "type",
        default_value = "pod",
        value_parser = ["pod", "deployment", "daemonset", "job"]
    )]
    pub kind: String,
    /// Replicas of a deployment
    #[arg(short = 'r', long, default_value_t = 1)]
    pub replicas: u64,
    /// Write the YAML to this file instead of standard output
    #[arg(short = 'f', long)]
    pub filename: Option<PathBuf>,
}

/// Runs `pier kube <args>` (args without the leading `kube`); returns the exit code.
pub async fn main(conn: pier_client::ConnectOptions, args: Vec<String>) -> i32 {
    let argv = std::iter::once("pier kube".to_string()).chain(args);
    let cli = match KubeCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(&conn, cli.cmd).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e}");
            125
        }
    }
}

fn load_plan(file: &str) -> Result<model::Plan> {
    let text = docs::read_input(file)?;
    let docs = docs::parse_all(&text, file)?;
    model::plan(&docs)
}

async fn connect(conn: &pier_client::ConnectOptions) -> Result<api::Api> {
    Ok(api::Api::new(pier_client::connect(conn).await?))
}

async fn run(conn: &pier_client::ConnectOptions, cmd: Command) -> Result<i32> {
    match cmd {
        Command::Play(a) => {
            let mut plan = load_plan(&a.file)?;
            if a.down {
                return play::down(&connect(conn).await?, &plan).await;
            }
            play::apply_publish(&mut plan, &a.publish)?;
            plan.warnings.print();
            let dir = match &a.context_dir {
                Some(d) => d.clone(),
                None if a.file == "-" => PathBuf::from("."),
                None => Path::new(&a.file)
                    .parent()
                    .map(Path::to_path_buf)
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or_else(|| PathBuf::from(".")),
            };
            let o = play::PlayOpts {
                replace: a.replace,
                build: a.build,
                start: a.start,
                dir,
            };
            play::play(&connect(conn).await?, &plan, &o).await
        }
        Command::Down(a) => {
            let plan = load_plan(&a.file)?;
            play::down(&connect(conn).await?, &plan).await
        }
        Command::Generate(a) => {
            let mut w = docs::Warnings::default();
            let mut pods = Vec::new();
            if !a.compose.is_empty() {
                pods.push(compose::from_compose(&a.compose, &mut w)?);
            }
            if !a.containers.is_empty() {
                pods.extend(
                    generate::from_containers(&connect(conn).await?, &a.containers, &mut w).await?,
                );
            }
            if pods.is_empty() {
                return Err(KubeError::Invalid(
                    "kube generate needs containers or --compose FILE".into(),
                ));
            }
            let o = generate::GenOpts {
                service: a.service,
                kind: a.kind.clone(),
                replicas: a.replicas,
            };
            let docs: Vec<serde_json::Value> = pods
                .iter()
                .flat_map(|p| generate::documents(p, &o, &mut w))
                .collect();
            for x in &w.0 {
                eprintln!("WARN[0000] {x}");
            }
            let text = generate::render(&docs);
            match &a.filename {
                Some(f) => std::fs::write(f, text).map_err(|e| KubeError::io(f.display(), e))?,
                None => print_out(&text),
            }
            Ok(0)
        }
    }
}

#[allow(clippy::print_stdout)]
fn print_out(s: &str) {
    print!("{s}");
}
