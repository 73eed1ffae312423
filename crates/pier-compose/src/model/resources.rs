//! Top-level `networks` and `volumes`, and the keys not honoured yet.

use super::{bool_default_false, is_false, KvMap};
use crate::de;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub driver: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "de::kv_map"
    )]
    pub driver_opts: KvMap,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "bool_default_false"
    )]
    pub external: bool,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "de::kv_map"
    )]
    pub labels: KvMap,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "bool_default_false"
    )]
    pub internal: bool,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "bool_default_false"
    )]
    pub attachable: bool,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "bool_default_false"
    )]
    pub enable_ipv6: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ipam {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IpamPool {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub subnet: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub gateway: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub ip_range: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub driver: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "de::kv_map"
    )]
    pub driver_opts: KvMap,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "bool_default_false"
    )]
    pub external: bool,
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "de::kv_map"
    )]
    pub labels: KvMap,
}

/// Keys of the specification that Pier's compose does not honour yet: a file
/// using them is refused with the key's path instead of being half-run.
pub const UNSUPPORTED_TOP: &[&str] = &["models"];
pub const UNSUPPORTED_SERVICE: &[&str] = &[
    "develop",
    "annotations",
    "blkio_config",
    "cgroup",
    "cgroup_parent",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpuset",
    "credential_spec",
    "device_cgroup_rules",
    "external_links",
    "gpus",
    "isolation",
    "label_file",
    "links",
    "mac_address",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "oom_kill_disable",
    "oom_score_adj",
    "pids_limit",
    "post_start",
    "pre_stop",
    "provider",
    "runtime",
    "storage_opt",
    "userns_mode",
    "uts",
    "volumes_from",
    "use_api_socket",
    "models",
];
pub const UNSUPPORTED_BUILD: &[&str] = &[
    "dockerfile_inline",
    "additional_contexts",
    "cache_from",
    "cache_to",
    "extra_hosts",
    "isolation",
    "platforms",
    "privileged",
    "secrets",
    "shm_size",
    "ssh",
    "tags",
    "ulimits",
    "entitlements",
    "provenance",
    "sbom",
];
