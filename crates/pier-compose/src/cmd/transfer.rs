//! `cp` (files in and out of service containers) and `push` (built service
//! images to their registry). The transfer itself is this binary's own
//! `pier cp` / `pier push`, so archives, credentials and progress live in one
//! place; compose picks the containers and images.

use super::exec::{self_cli, self_cli_quiet};
use super::with_deps;
use crate::ctx::{select, Ctx};
use crate::error::{ComposeError, Result};
use crate::load::Project;
use clap::Args;

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Include containers created by the run command
    #[arg(long)]
    pub all: bool,
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Index of the container if service has multiple replicas
    #[arg(long)]
    pub index: Option<u32>,
    #[arg(value_name = "SERVICE:SRC_PATH|SRC_PATH")]
    pub src: String,
    #[arg(value_name = "DEST_PATH|SERVICE:DEST_PATH")]
    pub dest: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push what it can and ignores images with push failures
    #[arg(long)]
    pub ignore_push_failures: bool,
    /// Also push images of services declared as dependencies
    #[arg(long)]
    pub include_deps: bool,
    /// Push without printing progress information
    #[arg(short, long)]
    pub quiet: bool,
    pub services: Vec<String>,
}

/// `service:path` → (service, path); a path alone (or `-`) is local.
fn split_remote(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') || s == "-" {
        return None;
    }
    s.split_once(':')
}

pub async fn cp(ctx: &Ctx, p: &Project, a: &CpArgs) -> Result<i32> {
    let (from, to) = (split_remote(&a.src), split_remote(&a.dest));
    let (service, path, to_container) = match (from, to) {
        (Some(_), Some(_)) => {
            return Err(ComposeError::Project(
                "copying between services is not supported".into(),
            ))
        }
        (None, None) => {
            return Err(ComposeError::Project(
                "unknown copy direction: one of source and destination must be SERVICE:PATH".into(),
            ))
        }
        (Some((s, path)), None) => (s, path, false),
        (None, Some((s, path))) => (s, path, true),
    };
    let mut p = p.clone();
    select(&mut p, &[service.to_string()])?;
    let api = ctx.api().await?;
    let oneoff = if a.all { None } else { Some(false) };
    let mut list: Vec<_> = api
        .containers(&p.name, true, oneoff)
        .await?
        .into_iter()
        .filter(|c| c.service == service)
        .collect();
    match a.index {
        Some(i) => list.retain(|c| c.number == i),
        // Copying out reads one container; copying in writes to every replica.
        None if !to_container => list.retain(|c| c.number == 1 || c.oneoff),
        None => {}
    }
    if !to_container {
        list.truncate(1);
    }
    if list.is_empty() {
        return Err(ComposeError::Project(match a.index {
            Some(i) => format!("service \"{service}\" is not running container #{i}"),
            None => format!("no container found for service {service:?}"),
        }));
    }
    let mut code = 0;
    for c in list {
        let mut args = vec!["cp".to_string()];
        if a.archive {
            args.push("-a".into());
        }
        if a.follow_link {
            args.push("-L".into());
        }
        if to_container {
            args.extend([a.src.clone(), format!("{}:{path}", c.id)]);
        } else {
            args.extend([format!("{}:{path}", c.id), a.dest.clone()]);
        }
        code = self_cli(ctx, args).await?;
        if code != 0 {
            break;
        }
    }
    Ok(code)
}

/// Pushes the image of each service that is both built and named, as
/// Compose does; others are skipped.
pub async fn push(ctx: &Ctx, p: &Project, a: &PushArgs) -> Result<i32> {
    let mut p = p.clone();
    let mut names = select(&mut p, &a.services)?;
    if a.include_deps {
        names = with_deps(&p, &names);
    }
    let order: Vec<String> = p
        .services
        .keys()
        .filter(|s| names.contains(s))
        .cloned()
        .collect();
    for s in order {
        let svc = &p.services[&s];
        let image = match (&svc.build, &svc.image) {
            (Some(_), Some(i)) => i.clone(),
            _ => {
                if !a.quiet {
                    ctx.event("", &s, "Skipped");
                }
                continue;
            }
        };
        if !a.quiet {
            ctx.event("Image", &image, "Pushing");
        }
        let code =
            self_cli_quiet(ctx, vec!["push".into(), "-q".into(), image.clone()], true).await?;
        if code != 0 {
            if a.ignore_push_failures {
                ctx.pause_progress();
                eprintln!("WARN[0000] failed to push {image}");
                continue;
            }
            return Ok(code);
        }
        if !a.quiet {
            ctx.event("Image", &image, "Pushed");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_direction_from_the_colon() {
        assert_eq!(split_remote("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(split_remote("./a:b"), None);
        assert_eq!(split_remote("/tmp/x"), None);
        assert_eq!(split_remote("-"), None);
        assert_eq!(split_remote("file"), None);
    }
}
