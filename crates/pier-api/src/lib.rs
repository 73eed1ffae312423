//! Docker Engine API models shared by the server, the client and the CLI.
//!
//! The request and response bodies are the generated models of the Engine API
//! (`bollard-stubs`), so Pier speaks exactly the JSON that Docker's own clients
//! expect; this crate adds the few things the generated models do not carry.

pub mod detach;
pub mod image;

pub use bollard_stubs::models;

use serde::{Deserialize, Serialize};

/// The API version Pier advertises (`/version` `ApiVersion`), and the newest
/// it serves: `docs/api-versions.md` lists what each version up to it changed
/// and how Pier answers.
pub const API_VERSION: &str = "1.47";
/// The oldest API version Pier accepts in a `/v1.xx/` path prefix.
pub const MIN_API_VERSION: &str = "1.24";
/// Version of the Pier engine itself.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The body of every error response, as Docker sends it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub message: String,
}

/// The `POST /containers/create` body: the generated model plus the top-level
/// `MacAddress` that API versions before 1.44 send (docker-py, Docker 20.10's
/// CLI); the generated model, made from a newer swagger, no longer has it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerCreateRequest {
    #[serde(flatten)]
    pub body: models::ContainerCreateBody,
    #[serde(
        rename = "MacAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mac_address: Option<String>,
}

/// The `POST /networks/create` body: the generated model plus the
/// `CheckDuplicate` that API versions before 1.44 send (docker-py sends it);
/// the generated model, made from a newer swagger, no longer has it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetworkCreateRequest {
    #[serde(flatten)]
    pub body: models::NetworkCreateRequest,
    #[serde(
        rename = "CheckDuplicate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub check_duplicate: Option<bool>,
}

/// Compares two API versions like `1.41` numerically, part by part.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a).cmp(&parse(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn network_create_keeps_the_old_check_duplicate() {
        let r: NetworkCreateRequest = serde_json::from_str(
            r#"{"Name":"n","CheckDuplicate":false,"IPAM":{"Config":[{"Subnet":"10.9.0.0/24"}]}}"#,
        )
        .unwrap();
        assert_eq!(r.check_duplicate, Some(false));
        assert_eq!(r.body.name, "n");
        let subnet = r.body.ipam.and_then(|i| i.config).unwrap()[0]
            .subnet
            .clone();
        assert_eq!(subnet.as_deref(), Some("10.9.0.0/24"));
    }

    #[test]
    fn create_body_keeps_the_old_mac_address() {
        let r: ContainerCreateRequest = serde_json::from_str(
            r#"{"Image":"busybox","Cmd":["true"],"MacAddress":"02:42:ac:11:00:0a","HostConfig":{"Links":["a:b"]}}"#,
        )
        .unwrap();
        assert_eq!(r.mac_address.as_deref(), Some("02:42:ac:11:00:0a"));
        assert_eq!(r.body.image.as_deref(), Some("busybox"));
        assert_eq!(
            r.body.host_config.and_then(|h| h.links),
            Some(vec!["a:b".to_string()])
        );
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("1.9", "1.24"), Ordering::Less);
        assert_eq!(compare_versions("1.43", "1.43"), Ordering::Equal);
        assert_eq!(compare_versions("1.44", "1.43"), Ordering::Greater);
    }
}
