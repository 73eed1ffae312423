//! What the networks put in a container's /etc/hosts and /etc/resolv.conf.
//!
//! /etc/hosts gets one line per network endpoint (the container's hostname and
//! aliases at that address), written at start and then edited in place on `network
//! connect`/`disconnect` while the container runs, as Docker's sandbox does: the
//! file is bind-mounted, so it is rewritten through the same inode and lines the
//! container or other writers (`--add-host`, links) put there stay.

use std::path::Path;

use super::{primary, DEFAULT_GATEWAY};
use crate::records::ContainerRecord;
use crate::{EngineError, Result};

/// What `--add-host name:host-gateway` maps to: the container's gateway,
/// else the default bridge's.
pub(crate) fn host_gateway(rec: &ContainerRecord) -> String {
    primary(rec).map(|a| a.gateway.clone()).unwrap_or_else(|| {
        let gw = *DEFAULT_GATEWAY.read().unwrap_or_else(|e| e.into_inner());
        gw.unwrap_or_else(|| pier_network::ipam::DEFAULT_BRIDGE_SUBNET.first_host())
            .to_string()
    })
}

/// Lines for /etc/hosts: the container's address on each network (its own
/// network first) with its hostname and aliases there.
pub(crate) fn hosts_lines(rec: &ContainerRecord) -> String {
    let first = primary(rec);
    let mut eps: Vec<_> = first.into_iter().collect();
    let mut rest: Vec<_> = rec
        .network
        .attached
        .values()
        .filter(|a| first.is_none_or(|f| f.endpoint_id != a.endpoint_id))
        .collect();
    rest.sort_by(|a, b| a.ifname.cmp(&b.ifname));
    eps.extend(rest);
    eps.iter()
        .map(|a| hosts_line(&a.ip, &names(rec, &a.aliases)))
        .collect()
}

fn hostname(rec: &ContainerRecord) -> String {
    rec.config
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| rec.id[..12].to_string())
}

/// The names a container has at one of its addresses.
pub(crate) fn names(rec: &ContainerRecord, aliases: &[String]) -> Vec<String> {
    let mut v = vec![hostname(rec)];
    v.extend(
        aliases
            .iter()
            .filter(|a| !v.contains(a))
            .cloned()
            .collect::<Vec<_>>(),
    );
    v
}

fn hosts_line(ip: &str, names: &[String]) -> String {
    format!("{ip}\t{}\n", names.join(" "))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| EngineError::from_io(path, e))
}

/// Appends `ip names...` to the hosts file at `path` (a running container's).
pub(crate) fn add_entry(path: &Path, ip: &str, names: &[String]) -> Result<()> {
    let mut text = read(path)?;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&hosts_line(ip, names));
    std::fs::write(path, text).map_err(|e| EngineError::from_io(path, e))
}

/// Drops the lines for `ip` that [`add_entry`] or the start wrote (the same
/// names), leaving other lines for that address alone.
pub(crate) fn remove_entry(path: &Path, ip: &str, names: &[String]) -> Result<()> {
    let text = read(path)?;
    let want = hosts_line(ip, names);
    let kept: String = text
        .split_inclusive('\n')
        .filter(|l| l.trim_end() != want.trim_end())
        .collect();
    if kept.len() != text.len() {
        std::fs::write(path, kept).map_err(|e| EngineError::from_io(path, e))?;
    }
    Ok(())
}

/// resolv.conf for a container on a user network: the network's embedded DNS
/// server, which forwards what it does not know to `--dns` servers when given
/// (else the host's), with `--dns-search`/`--dns-option` or the host's search and
/// options lines. None: not on such a network.
pub(crate) fn resolv_conf_for(rec: &ContainerRecord, host: &str) -> Option<String> {
    let dns = rec.network.dns_server.as_ref()?;
    let h = &rec.host_config;
    let mut out = format!("nameserver {dns}\n");
    let search = h.dns_search.clone().unwrap_or_default();
    let opts = h.dns_options.clone().unwrap_or_default();
    let mut host_opts = Vec::new();
    for l in host.lines() {
        let t = l.trim_start();
        if (t.starts_with("search") || t.starts_with("domain")) && search.is_empty() {
            out.push_str(l);
            out.push('\n');
        } else if let Some(o) = t.strip_prefix("options") {
            host_opts.extend(o.split_whitespace().map(str::to_string));
        }
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    let mut opts = if opts.is_empty() { host_opts } else { opts };
    // Docker's default with its embedded server: names are tried as given first.
    if !opts.iter().any(|o| o.starts_with("ndots:")) {
        opts.push("ndots:0".into());
    }
    out.push_str(&format!("options {}\n", opts.join(" ")));
    Some(out)
}

#[cfg(test)]
// Test set-up and checks, not daemon code.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_added_and_removed_in_place() {
        let dir = std::env::temp_dir().join(format!("pier-hosts-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("hosts");
        std::fs::write(&p, "127.0.0.1\tlocalhost\n10.0.0.2\tweb\n").unwrap();
        let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = ino(&p);
        let names = vec!["web".to_string(), "www".to_string()];
        add_entry(&p, "10.1.0.2", &names).unwrap();
        std::fs::write(
            &p,
            std::fs::read_to_string(&p).unwrap() + "10.1.0.2\tmine\n",
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "127.0.0.1\tlocalhost\n10.0.0.2\tweb\n10.1.0.2\tweb www\n10.1.0.2\tmine\n"
        );
        remove_entry(&p, "10.1.0.2", &names).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "127.0.0.1\tlocalhost\n10.0.0.2\tweb\n10.1.0.2\tmine\n"
        );
        assert_eq!(ino(&p), before, "bind-mounted file keeps its inode");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
