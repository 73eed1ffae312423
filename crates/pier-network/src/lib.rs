//! Container networking: persistent network namespaces, bridges and veth
//! pairs over rtnetlink, IPv4 address management, NAT/isolation/port DNAT in
//! one nftables table, userland port proxies and the embedded DNS server of
//! user networks.
//!
//! The engine keeps the records (networks, endpoints, leases); this crate
//! turns them into kernel state and can rebuild that state from them after
//! a daemon restart ([`Controller::add_network`] and
//! [`Controller::publish`] are idempotent to that end).

pub mod controller;
pub mod dns;
pub mod dns_wire;
mod error;
pub mod ipam;
mod iptables;
pub mod link;
pub mod netns;
pub mod nft;
mod options;
pub mod proxy;
mod watch;

pub use controller::{Controller, EndpointSpec, NetworkSpec, PortRequest, PublishedPort};
pub use error::{NetError, Result};
pub use ipam::{AddressPool, Subnet};
pub use options::{valid_bridge_name, NetworkOptions};
