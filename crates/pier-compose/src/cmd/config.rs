//! `config`: the normalised model, as YAML or JSON, or parts of it.

use crate::convert::{network_name, volume_name};
use crate::error::{ComposeError, Result};
use crate::load::Project;
use crate::out;
use clap::Args;
use serde_json::{json, Map, Value};

#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Print the service names, one per line
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    pub volumes: bool,
    /// Print the profile names, one per line
    #[arg(long)]
    pub profiles: bool,
    /// Print the image names, one per line
    #[arg(long)]
    pub images: bool,
    /// Only validate the configuration, don't print anything
    #[arg(short, long)]
    pub quiet: bool,
    /// Format the output. Values: [yaml | json]
    #[arg(long, default_value = "yaml", value_parser = ["yaml", "json"])]
    pub format: String,
    /// Save to file (default to stdout)
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
}

/// The project as Compose's `config` prints it.
pub fn to_json(p: &Project) -> Result<Value> {
    let mut services = Map::new();
    for (n, s) in &p.services {
        let mut v = serde_json::to_value(s).map_err(|e| ComposeError::Project(e.to_string()))?;
        if let Some(nets) = v.get_mut("networks").and_then(Value::as_object_mut) {
            for (_, n) in nets.iter_mut() {
                if n.as_object().is_some_and(|o| o.is_empty()) {
                    *n = Value::Null;
                }
            }
        }
        services.insert(n.clone(), v);
    }
    let mut networks = Map::new();
    for (k, n) in &p.networks {
        let mut v = serde_json::to_value(n).map_err(|e| ComposeError::Project(e.to_string()))?;
        v["name"] = json!(network_name(p, k));
        networks.insert(k.clone(), v);
    }
    let mut volumes = Map::new();
    for (k, vol) in &p.volumes {
        let mut v = serde_json::to_value(vol).map_err(|e| ComposeError::Project(e.to_string()))?;
        v["name"] = json!(volume_name(p, k));
        volumes.insert(k.clone(), v);
    }
    let mut top = Map::new();
    top.insert("name".into(), json!(p.name));
    top.insert("services".into(), Value::Object(services));
    if !networks.is_empty() {
        top.insert("networks".into(), Value::Object(networks));
    }
    if !volumes.is_empty() {
        top.insert("volumes".into(), Value::Object(volumes));
    }
    for (key, defs) in [("secrets", &p.secrets), ("configs", &p.configs)] {
        if !defs.is_empty() {
            let v = serde_json::to_value(defs).map_err(|e| ComposeError::Project(e.to_string()))?;
            top.insert(key.into(), v);
        }
    }
    Ok(Value::Object(top))
}

pub fn config(p: &Project, a: &ConfigArgs) -> Result<i32> {
    if a.quiet {
        return Ok(0);
    }
    let text = if a.services {
        p.services.keys().map(|s| format!("{s}\n")).collect()
    } else if a.volumes {
        p.volumes.keys().map(|s| format!("{s}\n")).collect()
    } else if a.profiles {
        let mut all: Vec<&String> = p
            .services
            .values()
            .chain(p.disabled.values())
            .flat_map(|s| s.profiles.iter())
            .collect();
        all.sort();
        all.dedup();
        all.into_iter().map(|s| format!("{s}\n")).collect()
    } else if a.images {
        p.services
            .iter()
            .map(|(n, s)| format!("{}\n", crate::convert::image_name(&p.name, n, s)))
            .collect()
    } else if a.format == "json" {
        let v = to_json(p)?;
        serde_json::to_string_pretty(&v).map_err(|e| ComposeError::Project(e.to_string()))? + "\n"
    } else {
        crate::yaml::emit(&to_json(p)?)
    };
    match &a.output {
        Some(f) => std::fs::write(f, text).map_err(|e| ComposeError::io(f.display(), e))?,
        None => out::raw(text.as_bytes()),
    }
    Ok(0)
}
