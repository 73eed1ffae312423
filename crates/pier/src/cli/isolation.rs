//! Flags of `create`/`run` about what a container is given beyond its
//! namespaces: annotations, storage options, device rules and GPUs. The
//! daemon decides which it can honour; these only carry them to the API.

use anyhow::{anyhow, bail, Result};
use clap::Args;
use pier_api::models::{DeviceRequest, HostConfig};
use std::collections::HashMap;

#[derive(Args, Debug, Clone, Default)]
pub struct IsolationArgs {
    /// Add an annotation to the container (passed through to the OCI runtime)
    #[arg(long)]
    pub annotation: Vec<String>,
    /// Storage driver options for the container
    #[arg(long = "storage-opt")]
    pub storage_opt: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long = "device-cgroup-rule")]
    pub device_cgroup_rule: Vec<String>,
    /// GPU devices to add to the container ('all' to pass all GPUs)
    #[arg(long)]
    pub gpus: Option<String>,
}

fn map(vals: &[String], what: &str) -> Result<Option<HashMap<String, String>>> {
    let mut out = HashMap::new();
    for v in vals {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid {what}: {v}: expected KEY=VALUE"))?;
        out.insert(k.to_string(), val.to_string());
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Docker's `--gpus` value: `all`, a count, or `count=`/`device=`/`driver=`/
/// `capabilities=` items; GPUs are asked for with the `gpu` capability.
fn gpus(v: &str) -> Result<DeviceRequest> {
    let v = v.trim_matches(|c| c == '"' || c == '\'');
    let mut req = DeviceRequest {
        capabilities: Some(vec![vec!["gpu".to_string()]]),
        ..Default::default()
    };
    let count = |s: &str| -> Result<i64> {
        if s == "all" {
            Ok(-1)
        } else {
            s.parse()
                .map_err(|_| anyhow!("invalid count ({s}): must be an integer or 'all'"))
        }
    };
    if !v.contains('=') {
        req.count = Some(count(v)?);
        return Ok(req);
    }
    for item in v.split(',') {
        match item.split_once('=') {
            Some(("count", c)) => req.count = Some(count(c)?),
            Some(("device", d)) => req.device_ids.get_or_insert_with(Vec::new).push(d.into()),
            Some(("driver", d)) => req.driver = Some(d.into()),
            Some(("capabilities", c)) => {
                req.capabilities = Some(vec![c.split(',').map(str::to_string).collect()])
            }
            Some((k, _)) => bail!("unexpected key '{k}' in '{v}'"),
            // More device IDs after `device=a`, as Docker's CSV form allows.
            None => req
                .device_ids
                .get_or_insert_with(Vec::new)
                .push(item.into()),
        }
    }
    Ok(req)
}

impl IsolationArgs {
    /// Fills the host config's fields for these flags.
    pub fn apply(&self, h: &mut HostConfig) -> Result<()> {
        h.annotations = map(&self.annotation, "annotation")?;
        h.storage_opt = map(&self.storage_opt, "storage-opt")?;
        h.device_cgroup_rules =
            (!self.device_cgroup_rule.is_empty()).then(|| self.device_cgroup_rule.clone());
        if let Some(g) = &self.gpus {
            h.device_requests = Some(vec![gpus(g)?]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_forms() {
        assert_eq!(gpus("all").unwrap().count, Some(-1));
        assert_eq!(gpus("2").unwrap().count, Some(2));
        let r = gpus("\"device=0,1\"").unwrap();
        assert_eq!(r.device_ids, Some(vec!["0".into(), "1".into()]));
        assert!(gpus("bogus=1").is_err());
        assert!(gpus("x").is_err());
    }

    #[test]
    fn annotations_need_a_value() {
        assert!(map(&["a".into()], "annotation").is_err());
        let m = map(&["a=b=c".into()], "annotation").unwrap().unwrap();
        assert_eq!(m["a"], "b=c");
    }
}
