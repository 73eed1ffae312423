//! Pier's bridges in iptables' filter FORWARD chain.
//!
//! Every base chain on the forward hook sees every forwarded packet, and an
//! `accept` in one does not spare it from a `drop` in another. Docker sets
//! the FORWARD policy of iptables' `filter` table to DROP (and turns bridge
//! netfilter on, so even traffic between two containers on one bridge
//! passes FORWARD); Pier's own nftables table cannot overrule that. So, as
//! Docker and netavark do, Pier keeps a chain of its own, `PIER-FORWARD`,
//! jumped to from the top of FORWARD, that accepts what leaves its bridges
//! and what comes back to them, in every iptables backend (nf_tables and
//! legacy) whose filter table exists. A host without one keeps having none:
//! nothing here creates a table.
//!
//! Isolation between Pier's networks and `--internal` stay in the `pier`
//! nftables table: its drops are final whatever iptables accepts.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::error::{NetError, Result};

/// The chain of a daemon whose default bridge is `pier0`; one with another
/// `--bridge` sharing the namespace keeps its own (see [`chain_for`]).
pub(crate) const CHAIN: &str = "PIER-FORWARD";

/// The chain of the daemon whose default bridge is `default_bridge`
/// (iptables allows 28 characters: `PIER-` and 15 fit).
pub(crate) fn chain_for(default_bridge: &str) -> String {
    if default_bridge == "pier0" {
        CHAIN.to_string()
    } else {
        format!("PIER-{default_bridge}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Nft,
    Legacy,
}

/// One iptables backend: its two binaries.
#[derive(Debug, Clone)]
struct Backend {
    kind: Kind,
    iptables: String,
    restore: String,
}

fn run(bin: &str, args: &[&str], input: Option<&str>) -> Result<Output> {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::io(format!("run {bin}"), e))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| NetError::io(format!("write to {bin}"), e))?;
    }
    child
        .wait_with_output()
        .map_err(|e| NetError::io(format!("wait for {bin}"), e))
}

fn ok(bin: &str, args: &[&str], input: Option<&str>) -> Result<()> {
    let out = run(bin, args, input)?;
    if out.status.success() {
        return Ok(());
    }
    Err(NetError::Iptables(format!(
        "{bin} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// The installed backends (resolved once: binaries do not come and go).
fn installed() -> &'static [Backend] {
    static B: OnceLock<Vec<Backend>> = OnceLock::new();
    B.get_or_init(|| {
        let version = |bin: &str| {
            run(bin, &["-V"], None)
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        };
        let mut v = Vec::new();
        for (kind, bin) in [
            (Kind::Nft, "iptables-nft"),
            (Kind::Legacy, "iptables-legacy"),
        ] {
            if version(bin).is_some() {
                v.push(Backend {
                    kind,
                    iptables: bin.into(),
                    restore: format!("{bin}-restore"),
                });
            }
        }
        // Distributions that ship one backend under the plain name.
        if v.is_empty()
            && let Some(ver) = version("iptables")
        {
            let kind = if ver.contains("nf_tables") {
                Kind::Nft
            } else {
                Kind::Legacy
            };
            v.push(Backend {
                kind,
                iptables: "iptables".into(),
                restore: "iptables-restore".into(),
            });
        }
        v
    })
}

/// Whether this backend's filter table exists in the calling thread's
/// namespace, asked without creating it (listing with iptables itself
/// would instantiate a legacy table).
fn has_filter_table(kind: Kind) -> bool {
    match kind {
        Kind::Nft => Command::new("nft")
            .args(["list", "chain", "ip", "filter", "FORWARD"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        Kind::Legacy => std::fs::read_to_string("/proc/thread-self/net/ip_tables_names")
            .is_ok_and(|s| s.lines().any(|l| l == "filter")),
    }
}

/// The backends with a filter table in this namespace. A filter table that
/// iptables-nft made on a host without any iptables binary cannot be
/// edited by Pier: say so.
fn active() -> Vec<&'static Backend> {
    let nft = has_filter_table(Kind::Nft);
    let legacy = has_filter_table(Kind::Legacy);
    if !nft && !legacy {
        // The common case without Docker: no iptables binary to ask.
        return Vec::new();
    }
    let all = installed();
    if all.is_empty() {
        tracing::warn!(
            "an iptables filter table exists but no iptables binary is installed: \
             its FORWARD chain may drop containers' traffic"
        );
    }
    all.iter()
        .filter(|b| match b.kind {
            Kind::Nft => nft,
            Kind::Legacy => legacy,
        })
        .collect()
}

/// The `iptables-restore --noflush` input that replaces PIER-FORWARD's
/// rules (declaring a chain that exists flushes it, in one transaction).
pub(crate) fn render(chain: &str, bridges: &[String]) -> String {
    let mut s = format!("*filter\n:{chain} - [0:0]\n");
    // Names are checked where networks are made; one that slipped by must
    // not become a line of its own in the script.
    for b in bridges.iter().filter(|b| crate::valid_bridge_name(b)) {
        // Out of the bridge: to the uplink and, under bridge netfilter,
        // to another container on the same bridge.
        s.push_str(&format!("-A {chain} -i {b} -j ACCEPT\n"));
        // Back in: replies, and connections to published ports (DNAT'ed).
        s.push_str(&format!(
            "-A {chain} -o {b} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT\n"
        ));
    }
    s.push_str("COMMIT\n");
    s
}

/// Deletes every jump to `chain` from FORWARD.
fn delete_jumps(b: &Backend, chain: &str) {
    for _ in 0..16 {
        let gone = run(&b.iptables, &["-w", "-D", "FORWARD", "-j", chain], None)
            .map_or(true, |o| !o.status.success());
        if gone {
            return;
        }
    }
}

/// Makes PIER-FORWARD accept `bridges`' traffic in every backend whose
/// filter table exists. `first`: this daemon's first sync, which puts the
/// jump back at the top of FORWARD (where it went when the daemon last
/// ran, before anyone inserted above it); later syncs only make sure it is
/// there.
pub(crate) fn sync(chain: &str, bridges: &[String], first: bool) -> Result<()> {
    if bridges.is_empty() {
        return remove(chain);
    }
    let script = render(chain, bridges);
    for b in active() {
        ok(&b.restore, &["-w", "--noflush"], Some(&script))?;
        let jump = ["-w", "-C", "FORWARD", "-j", chain];
        if first {
            delete_jumps(b, chain);
        } else if run(&b.iptables, &jump, None)?.status.success() {
            continue;
        }
        ok(
            &b.iptables,
            &["-w", "-I", "FORWARD", "1", "-j", chain],
            None,
        )?;
    }
    Ok(())
}

/// Puts `chain` and the jump to it back in every backend whose filter table
/// has no jump (made or flushed by another program since the last sync).
pub(crate) fn ensure(chain: &str, bridges: &[String]) -> Result<()> {
    let script = render(chain, bridges);
    for b in active() {
        let jump = ["-w", "-C", "FORWARD", "-j", chain];
        if run(&b.iptables, &jump, None)?.status.success() {
            continue;
        }
        tracing::info!("putting {chain} back into {}'s FORWARD", b.iptables);
        ok(&b.restore, &["-w", "--noflush"], Some(&script))?;
        ok(
            &b.iptables,
            &["-w", "-I", "FORWARD", "1", "-j", chain],
            None,
        )?;
    }
    Ok(())
}

/// Takes the jump and `chain` away (missing is fine).
pub(crate) fn remove(chain: &str) -> Result<()> {
    for b in active() {
        delete_jumps(b, chain);
        let exists = run(&b.iptables, &["-w", "-S", chain], None)?
            .status
            .success();
        if exists {
            ok(&b.iptables, &["-w", "-F", chain], None)?;
            ok(&b.iptables, &["-w", "-X", chain], None)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_accepts_per_bridge() {
        let s = render(CHAIN, &["pier0".into(), "br-1".into(), "bad\nname".into()]);
        assert!(!s.contains("bad"));
        assert_eq!(chain_for("pier1"), "PIER-pier1");
        assert!(s.starts_with("*filter\n:PIER-FORWARD - [0:0]\n"));
        assert!(s.contains("-A PIER-FORWARD -i pier0 -j ACCEPT\n"));
        assert!(s.contains(
            "-A PIER-FORWARD -o br-1 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT\n"
        ));
        assert!(s.ends_with("COMMIT\n"));
    }
}
