//! `pier context`: the docker CLI's contexts, in the docker CLI's own store
//! (`pier_client::context`), so `docker context` sees what pier creates and
//! the other way round.

use super::inspect::go_json_indent;
use super::{print, println, Exit};
use crate::format::table::Format;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use pier_client::context::{self, ContextMeta, DEFAULT_CONTEXT};
use pier_client::ConnectOptions;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ContextCmd {
    /// Create a context
    Create(CreateArgs),
    /// List contexts
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Set the current docker context
    Use(NameArg),
    /// Display detailed information on one or more contexts
    Inspect(InspectArgs),
    /// Remove one or more contexts
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Print the name of the current context
    Show,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Description of the context
    #[arg(long)]
    pub description: Option<String>,
    /// set the docker endpoint (host=,ca=,cert=,key=,skip-tls-verify=)
    #[arg(long)]
    pub docker: Option<String>,
    /// create context from a named context
    #[arg(long)]
    pub from: Option<String>,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Format output using a custom template ('table', 'json' or a Go template)
    #[arg(long)]
    pub format: Option<String>,
    /// Only show context names
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct NameArg {
    pub name: String,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a context in use
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// The endpoint of `--docker host=...,ca=...`: host, TLS files, skip flag.
#[derive(Debug, Default, PartialEq)]
struct DockerEndpoint {
    host: Option<String>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    skip_tls_verify: bool,
}

fn parse_docker(spec: &str) -> Result<DockerEndpoint> {
    let mut ep = DockerEndpoint::default();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let Some((k, v)) = field.split_once('=') else {
            bail!("invalid --docker value {field:?}: expected key=value");
        };
        match k {
            "host" => ep.host = Some(v.to_string()),
            "ca" => ep.ca = Some(PathBuf::from(v)),
            "cert" => ep.cert = Some(PathBuf::from(v)),
            "key" => ep.key = Some(PathBuf::from(v)),
            "skip-tls-verify" => {
                ep.skip_tls_verify = v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("invalid skip-tls-verify value {v:?}"))?
            }
            _ => bail!("unrecognized config key: {k}"),
        }
    }
    Ok(ep)
}

/// The context in use, as `resolve` picks it (`--context`, `DOCKER_CONTEXT`, ...).
fn current(conn: &ConnectOptions) -> Result<String> {
    Ok(pier_client::resolve(conn)?.context)
}

/// The default context's endpoint: `-H`/`DOCKER_HOST` or the default socket.
fn default_host(conn: &ConnectOptions) -> String {
    let mut o = conn.clone();
    o.context = None;
    pier_client::resolve(&o)
        .ok()
        .filter(|t| t.context == DEFAULT_CONTEXT)
        .map_or_else(|| pier_client::DEFAULT_HOST.to_string(), |t| t.host)
}

pub fn context(conn: &ConnectOptions, cmd: ContextCmd) -> Result<i32> {
    match cmd {
        ContextCmd::Create(a) => create(a),
        ContextCmd::Ls(a) => ls(conn, a),
        ContextCmd::Use(a) => {
            context::set_current(&a.name)?;
            println(&a.name);
            eprintln!("Current context is now \"{}\"", a.name);
            if std::env::var_os("DOCKER_HOST").is_some_and(|h| !h.is_empty()) {
                eprintln!("Warning: DOCKER_HOST environment variable overrides the active context. To use \"{}\", either set the global --context flag, or unset DOCKER_HOST environment variable.", a.name);
            }
            Ok(0)
        }
        ContextCmd::Inspect(a) => inspect(conn, a),
        ContextCmd::Rm(a) => rm(conn, a),
        ContextCmd::Show => {
            println(&current(conn)?);
            Ok(0)
        }
    }
}

fn create(a: CreateArgs) -> Result<i32> {
    let mut endpoint = match (&a.from, &a.docker) {
        (Some(_), Some(_)) => bail!("--docker and --from cannot be used together"),
        (Some(from), None) => {
            let src = context::load(from)?;
            let mut ep = DockerEndpoint {
                host: src.host().map(str::to_string),
                skip_tls_verify: src.skip_tls_verify(),
                ..Default::default()
            };
            for (name, path) in context::tls_files(from) {
                match name.as_str() {
                    "ca.pem" => ep.ca = Some(path),
                    "cert.pem" => ep.cert = Some(path),
                    _ => ep.key = Some(path),
                }
            }
            ep
        }
        (None, Some(spec)) => parse_docker(spec)?,
        (None, None) => DockerEndpoint::default(),
    };
    let host = endpoint
        .host
        .take()
        .unwrap_or_else(|| pier_client::DEFAULT_HOST.to_string());
    pier_client::parse_host(&host, false)?;
    let mut metadata = Map::new();
    if let Some(d) = a.description.filter(|d| !d.is_empty()) {
        metadata.insert("Description".into(), Value::String(d));
    }
    let mut endpoints = Map::new();
    endpoints.insert(
        "docker".into(),
        json!({"Host": host, "SkipTLSVerify": endpoint.skip_tls_verify}),
    );
    let meta = ContextMeta {
        name: a.name.clone(),
        metadata,
        endpoints,
    };
    let mut tls: Vec<(&str, &std::path::Path)> = Vec::new();
    for (name, p) in [
        ("ca.pem", &endpoint.ca),
        ("cert.pem", &endpoint.cert),
        ("key.pem", &endpoint.key),
    ] {
        if let Some(p) = p {
            tls.push((name, p.as_path()));
        }
    }
    context::create(&meta, &tls)?;
    println(&a.name);
    eprintln!("Successfully created context \"{}\"", a.name);
    Ok(0)
}

/// The JSON of `docker context inspect` for `name`.
fn inspect_json(conn: &ConnectOptions, name: &str) -> Result<Value> {
    if name == DEFAULT_CONTEXT {
        return Ok(json!({
            "Name": DEFAULT_CONTEXT,
            "Metadata": {},
            "Endpoints": {"docker": {"Host": default_host(conn), "SkipTLSVerify": false}},
            "TLSMaterial": {},
            "Storage": {"MetadataPath": "<IN MEMORY>", "TLSPath": "<IN MEMORY>"},
        }));
    }
    let m = context::load(name)?;
    let files: Vec<String> = context::tls_files(name)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    let tls = if files.is_empty() {
        json!({})
    } else {
        json!({ "docker": files })
    };
    Ok(json!({
        "Name": m.name,
        "Metadata": m.metadata,
        "Endpoints": m.endpoints,
        "TLSMaterial": tls,
        "Storage": {
            "MetadataPath": context::meta_dir(name),
            "TLSPath": context::tls_dir(name),
        },
    }))
}

fn inspect(conn: &ConnectOptions, a: InspectArgs) -> Result<i32> {
    let names = if a.names.is_empty() {
        vec![current(conn)?]
    } else {
        a.names
    };
    let mut out = Vec::new();
    for n in &names {
        out.push(inspect_json(conn, n)?);
    }
    match a.format.filter(|f| !f.is_empty()) {
        Some(f) => {
            let t = crate::format::template::Template::parse(&f)?;
            for v in &out {
                println(&t.render(v)?);
            }
        }
        None => println(&go_json_indent(&out)?),
    }
    Ok(0)
}

fn ls_rows(conn: &ConnectOptions) -> Result<Vec<Value>> {
    let cur = current(conn)?;
    let mut rows = vec![json!({
        "Name": DEFAULT_CONTEXT,
        "Description": "Current DOCKER_HOST based configuration",
        "DockerEndpoint": default_host(conn),
        "Current": cur == DEFAULT_CONTEXT,
        "Error": "",
    })];
    for m in context::list()? {
        rows.push(json!({
            "Name": m.name,
            "Description": m.description(),
            "DockerEndpoint": m.host().unwrap_or(""),
            "Current": cur == m.name,
            "Error": "",
        }));
    }
    Ok(rows)
}

fn ls(conn: &ConnectOptions, a: LsArgs) -> Result<i32> {
    let rows = ls_rows(conn)?;
    let format = if a.quiet {
        "{{.Name}}".to_string()
    } else {
        match a.format.filter(|f| !f.is_empty() && f != "table") {
            Some(f) => f,
            None => {
                "table {{.Name}}{{if .Current}} *{{end}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}"
                    .into()
            }
        }
    };
    let header = json!({
        "Name": "NAME", "Description": "DESCRIPTION", "DockerEndpoint": "DOCKER ENDPOINT",
        "Error": "ERROR", "Current": false,
    });
    let fmt = Format::parse(&format)?;
    print(&fmt.render(&header, &rows, &|_, _, _| None)?);
    Ok(0)
}

fn rm(conn: &ConnectOptions, a: RmArgs) -> Result<i32> {
    let cur = current(conn)?;
    let in_config = context::current_in_config()?;
    let mut failed = false;
    for name in &a.names {
        let r = if name == DEFAULT_CONTEXT {
            Err(anyhow::anyhow!(
                "default: context \"default\" cannot be removed"
            ))
        } else if *name == cur && !a.force {
            Err(anyhow::anyhow!(
                "context \"{name}\" is in use, set -f flag to force remove"
            ))
        } else {
            context::remove(name)
                .map_err(anyhow::Error::from)
                .and_then(|()| {
                    if in_config.as_deref() == Some(name.as_str()) {
                        context::set_current(DEFAULT_CONTEXT)?;
                    }
                    Ok(())
                })
        };
        match r {
            Ok(()) => println(name),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(Exit(1).into());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_endpoint_flags() {
        let ep =
            parse_docker("host=tcp://h:2376,ca=/c,cert=/d,key=/k,skip-tls-verify=true").unwrap();
        assert_eq!(ep.host.as_deref(), Some("tcp://h:2376"));
        assert_eq!(ep.ca, Some(PathBuf::from("/c")));
        assert!(ep.skip_tls_verify);
        assert!(parse_docker("host=x,nope=1").is_err());
        assert!(parse_docker("host").is_err());
    }

    #[test]
    fn ls_marks_the_current_context() {
        let f = Format::parse(
            "table {{.Name}}{{if .Current}} *{{end}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}",
        )
        .unwrap();
        let header = json!({"Name": "NAME", "Description": "DESCRIPTION",
            "DockerEndpoint": "DOCKER ENDPOINT", "Error": "ERROR", "Current": false});
        let rows = vec![
            json!({"Name": "default", "Description": "d", "DockerEndpoint": "unix:///s", "Current": true, "Error": ""}),
            json!({"Name": "far", "Description": "", "DockerEndpoint": "tcp://h:1", "Current": false, "Error": ""}),
        ];
        let out = f.render(&header, &rows, &|_, _, _| None).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("NAME "), "{out}");
        assert!(lines[0].contains("DOCKER ENDPOINT"), "{out}");
        assert!(lines[1].starts_with("default * "), "{out}");
        assert!(lines[2].starts_with("far "), "{out}");
    }
}
