//! Keeps PIER-FORWARD in place when another program changes iptables'
//! filter table after Pier started: Docker started after Pier at boot
//! creates the table with FORWARD's policy DROP, and a firewall reload may
//! flush Pier's jump.
//!
//! nftables announces every change on a netlink multicast group; changes to
//! the `ip filter` table (iptables-nft's) trigger a check. Legacy iptables
//! announces nothing, so the appearance of its filter table is polled
//! (`/proc/net/ip_tables_names`, a cheap read). A check costs one
//! `iptables -C` per backend and changes nothing when the jump is there.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

/// NFNLGRP_NFTABLES: the nftables change notifications.
const NFNLGRP_NFTABLES: u32 = 7;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const AF_INET: u8 = 2;
/// NFT_MSG_{NEW,DEL}{TABLE,CHAIN,RULE}: what can add a drop or remove the
/// jump. Set and generation messages are not.
const TABLE_CHAIN_RULE_MSGS: [u16; 6] = [0, 2, 3, 5, 6, 8];

/// Whether a datagram of nftables notifications touches table `ip filter`.
pub(crate) fn touches_ip_filter(mut buf: &[u8]) -> bool {
    while buf.len() >= 20 {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < 20 || len > buf.len() {
            return false;
        }
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        let family = buf[16];
        let relevant_msg = ty >> 8 == NFNL_SUBSYS_NFTABLES
            && TABLE_CHAIN_RULE_MSGS.contains(&(ty & 0xff))
            && family == AF_INET;
        if relevant_msg && table_attr(&buf[20..len]) == Some(b"filter".as_slice()) {
            return true;
        }
        // Messages are 4-byte aligned.
        let next = (len + 3) & !3;
        buf = buf.get(next..).unwrap_or(&[]);
    }
    false
}

/// The table name attribute (type 1 in table, chain and rule messages),
/// without its NUL.
fn table_attr(mut attrs: &[u8]) -> Option<&[u8]> {
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let ty = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if ty == 1 {
            let v = &attrs[4..len];
            return Some(v.split(|b| *b == 0).next().unwrap_or(v));
        }
        attrs = attrs.get((len + 3) & !3..).unwrap_or(&[]);
    }
    None
}

fn legacy_filter_exists() -> bool {
    std::fs::read_to_string("/proc/thread-self/net/ip_tables_names")
        .is_ok_and(|s| s.lines().any(|l| l == "filter"))
}

fn subscribe() -> std::io::Result<Socket> {
    let mut s = Socket::new(NETLINK_NETFILTER)?;
    s.bind_auto()?;
    s.add_membership(NFNLGRP_NFTABLES)?;
    s.set_non_blocking(true)?;
    Ok(s)
}

/// Whether anything relevant arrived since the last call (an overrun
/// counts: something happened that was not seen).
fn drain(sock: &Socket, buf: &mut Vec<u8>) -> bool {
    let mut seen = false;
    loop {
        buf.clear();
        match sock.recv(buf, 0) {
            Ok(_) => seen |= touches_ip_filter(buf),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return seen,
            Err(_) => return true,
        }
    }
}

/// Starts the watcher thread of a daemon: it lives as long as the process,
/// in the daemon's namespace (a thread starts in its creator's).
pub(crate) fn start(chain: String, bridges: Arc<Mutex<Option<Vec<String>>>>) {
    let sock = match subscribe() {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot watch nftables for iptables changes: {e}");
            None
        }
    };
    let spawned = std::thread::Builder::new()
        .name("pier-fw-watch".into())
        .spawn(move || {
            let mut buf = Vec::with_capacity(1 << 16);
            let mut legacy = legacy_filter_exists();
            loop {
                // Batches a burst of changes (Docker's start-up) into one check.
                std::thread::sleep(Duration::from_secs(1));
                let mut dirty = sock.as_ref().is_some_and(|s| drain(s, &mut buf));
                let now = legacy_filter_exists();
                dirty |= now && !legacy;
                legacy = now;
                if !dirty {
                    continue;
                }
                let guard = bridges.lock().unwrap_or_else(|e| e.into_inner());
                // Not synced yet: the daemon's own first sync comes.
                if let Some(names) = guard.as_ref().filter(|n| !n.is_empty())
                    && let Err(e) = crate::iptables::ensure(&chain, names)
                {
                    tracing::warn!("putting {chain} back into iptables FORWARD: {e}");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the iptables watcher: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ty: u16, family: u8, table: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        let name = format!("{table}\0");
        attr.extend_from_slice(&((4 + name.len()) as u16).to_ne_bytes());
        attr.extend_from_slice(&1u16.to_ne_bytes());
        attr.extend_from_slice(name.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let len = 20 + attr.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | ty).to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&[family, 0, 0, 0]);
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn only_ip_filter_changes_count() {
        assert!(touches_ip_filter(&msg(3, AF_INET, "filter")));
        assert!(!touches_ip_filter(&msg(3, AF_INET, "pier")));
        assert!(!touches_ip_filter(&msg(3, 10, "filter")));
        // NFT_MSG_NEWGEN ends every transaction and names no table.
        assert!(!touches_ip_filter(&msg(16, AF_INET, "filter")));
        let mut two = msg(6, AF_INET, "pier");
        two.extend(msg(8, AF_INET, "filter"));
        assert!(touches_ip_filter(&two));
        assert!(!touches_ip_filter(&two[..10]));
    }
}
