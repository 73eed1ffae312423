//! `/networks/...` against a fake network service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use futures::future::BoxFuture;
use pier_api::models::{EndpointSettings, IpamConfig, NetworkCreateResponse, NetworkPruneResponse};
use pier_api::NetworkCreateRequest;
use pier_engine::{EngineError, NetworkContainer, NetworkDetails, Result};

use super::{app, check, json, message};
use crate::services::{Filters, NetworkApi};

/// One network `net1` (10.231.0.0/24, label `l=v`, one container on it);
/// `dup` exists by name; `builtin` is pre-defined; `busy` has endpoints.
/// Every call is recorded, with what the route parsed.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    created: Mutex<Option<NetworkCreateRequest>>,
    connected: Mutex<Option<EndpointSettings>>,
}

impl Fake {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

fn net1() -> NetworkDetails {
    NetworkDetails {
        id: "a".repeat(64),
        name: "net1".into(),
        created: "2026-01-01T00:00:00.000000000Z".into(),
        driver: "bridge".into(),
        enable_ipv6: false,
        internal: false,
        attachable: false,
        ipam_options: None,
        ipam_config: vec![IpamConfig {
            subnet: Some("10.231.0.0/24".into()),
            gateway: Some("10.231.0.1".into()),
            ..Default::default()
        }],
        containers: vec![(
            "c".repeat(64),
            NetworkContainer {
                name: "up".into(),
                endpoint_id: "e".repeat(64),
                mac_address: "02:42:0a:e7:00:02".into(),
                ipv4_address: "10.231.0.2/24".into(),
            },
        )],
        options: HashMap::new(),
        labels: HashMap::from([("l".into(), "v".into())]),
    }
}

fn sorted(f: &Filters) -> String {
    let mut v: Vec<String> = f.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    v.sort();
    v.join(",")
}

impl NetworkApi for Fake {
    fn list(&self, filters: &Filters) -> Result<Vec<NetworkDetails>> {
        self.record(format!("list {}", sorted(filters)));
        if filters.contains_key("bogus") {
            return Err(EngineError::invalid_argument("invalid filter 'bogus'"));
        }
        Ok(vec![net1()])
    }
    fn inspect(&self, key: &str) -> Result<NetworkDetails> {
        self.record(format!("inspect {key}"));
        match key {
            "net1" => Ok(net1()),
            _ => Err(EngineError::not_found(format!("network {key} not found"))),
        }
    }
    fn create(&self, req: NetworkCreateRequest) -> BoxFuture<'_, Result<NetworkCreateResponse>> {
        Box::pin(async move {
            self.record(format!("create {:?}", req.body.name));
            let name = req.body.name.clone();
            *self.created.lock().unwrap() = Some(req);
            match name.as_str() {
                "" => Err(EngineError::invalid_argument(
                    "network name must not be empty",
                )),
                "dup" => Err(EngineError::conflict(
                    "network with name dup already exists",
                )),
                _ => Ok(NetworkCreateResponse {
                    id: "b".repeat(64),
                    warning: String::new(),
                }),
            }
        })
    }
    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.record(format!("remove {key}"));
            match key {
                "net1" => Ok(()),
                "builtin" => Err(EngineError::forbidden(
                    "bridge is a pre-defined network and cannot be removed",
                )),
                "busy" => Err(EngineError::conflict(
                    "error while removing network: network busy id x has active endpoints",
                )),
                _ => Err(EngineError::not_found(format!("network {key} not found"))),
            }
        })
    }
    fn prune<'a>(&'a self, filters: &'a Filters) -> BoxFuture<'a, Result<NetworkPruneResponse>> {
        Box::pin(async move {
            self.record(format!("prune {}", sorted(filters)));
            Ok(NetworkPruneResponse {
                networks_deleted: Some(vec!["net1".into()]),
            })
        })
    }
    fn connect<'a>(
        &'a self,
        network: &'a str,
        container: &'a str,
        cfg: Option<EndpointSettings>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.record(format!("connect {network} {container} {}", cfg.is_some()));
            *self.connected.lock().unwrap() = cfg;
            match container {
                "gone" => Err(EngineError::not_found("No such container: gone")),
                _ => Ok(()),
            }
        })
    }
    fn disconnect<'a>(
        &'a self,
        network: &'a str,
        container: &'a str,
        force: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.record(format!("disconnect {network} {container} force={force}"));
            Ok(())
        })
    }
}

fn setup() -> (Arc<Fake>, axum::Router) {
    let fake = Arc::new(Fake::default());
    let api: Arc<dyn NetworkApi> = fake.clone();
    (fake, app(crate::routes::networks::routes().with_state(api)))
}

/// What `tests/tests/api_shapes.rs` expects of a user network, as
/// docker-py and the CLI's templates read it.
const NETWORK_SHAPE: &[(&str, &str)] = &[
    ("/Name", "string"),
    ("/Id", "string"),
    ("/Created", "string"),
    ("/Scope", "string"),
    ("/Driver", "string"),
    ("/EnableIPv4", "bool"),
    ("/EnableIPv6", "bool"),
    ("/IPAM", "object"),
    ("/IPAM/Driver", "string"),
    ("/IPAM/Options", "null"),
    ("/IPAM/Config", "array"),
    ("/IPAM/Config/0", "object"),
    ("/IPAM/Config/0/Subnet", "string"),
    ("/Internal", "bool"),
    ("/Attachable", "bool"),
    ("/Ingress", "bool"),
    ("/ConfigFrom", "object"),
    ("/ConfigFrom/Network", "\"\""),
    ("/ConfigOnly", "bool"),
    ("/Containers", "object"),
    ("/Options", "{}"),
    ("/Labels", "object"),
    ("/Labels/l", "string"),
];

#[tokio::test]
async fn inspect_and_list_answer_docker_shapes() {
    let (fake, app) = setup();
    let (st, v) = json(&app, "GET", "/v1.44/networks/net1", "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    check("inspect", &v, NETWORK_SHAPE);
    let c = format!("/Containers/{}", "c".repeat(64));
    check(
        "inspect containers",
        &v,
        &[
            (&format!("{c}/Name"), "string"),
            (&format!("{c}/EndpointID"), "string"),
            (&format!("{c}/MacAddress"), "string"),
            (&format!("{c}/IPv4Address"), "string"),
            (&format!("{c}/IPv6Address"), "\"\""),
        ],
    );
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["IPAM"]["Driver"], "default");

    let (st, v) = json(&app, "GET", "/networks", "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    check("list", &v[0], NETWORK_SHAPE);
    assert_eq!(fake.calls(), ["inspect net1", "list "]);
}

#[tokio::test]
async fn list_and_prune_parse_both_filter_spellings() {
    let (fake, app) = setup();
    // The pre-1.22 map form and the array form mean the same.
    let q = "filters=%7B%22name%22%3A%7B%22net1%22%3Atrue%7D%2C%22label%22%3A%5B%22l%3Dv%22%5D%7D";
    let (st, _) = json(&app, "GET", &format!("/networks?{q}"), "").await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = json(&app, "POST", &format!("/networks/prune?{q}"), "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v, serde_json::json!({"NetworksDeleted": ["net1"]}));
    assert_eq!(
        fake.calls(),
        [
            r#"list label=["l=v"],name=["net1"]"#,
            r#"prune label=["l=v"],name=["net1"]"#
        ]
    );
    // Unparsable filters never reach the service; an unknown key is its call.
    let (st, v) = json(&app, "GET", "/networks?filters=%7Bnope", "").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(message(&v).starts_with("invalid filter"), "{v}");
    let (st, v) = json(
        &app,
        "GET",
        "/networks?filters=%7B%22bogus%22%3A%5B%5D%7D",
        "",
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(message(&v), "invalid filter 'bogus'");
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn errors_map_to_docker_statuses() {
    let (_, app) = setup();
    let (st, v) = json(&app, "GET", "/networks/nope", "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(message(&v), "network nope not found");
    for (key, want) in [
        ("net1", StatusCode::NO_CONTENT),
        ("nope", StatusCode::NOT_FOUND),
        ("busy", StatusCode::CONFLICT),
        ("builtin", StatusCode::FORBIDDEN),
    ] {
        let (st, v) = json(&app, "DELETE", &format!("/networks/{key}"), "").await;
        assert_eq!(st, want, "DELETE {key}: {v}");
        if want == StatusCode::NO_CONTENT {
            assert_eq!(v, serde_json::Value::Null);
        } else {
            message(&v);
        }
    }
    // Outside the served API versions: refused before any route.
    let (st, v) = json(&app, "GET", "/v1.12/networks", "").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(message(&v).contains("is too old"), "{v}");
    let (st, v) = json(&app, "GET", "/networks/net1/nope", "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(message(&v), "page not found: GET /networks/net1/nope");
}

#[tokio::test]
async fn create_hands_the_typed_request_over() {
    let (fake, app) = setup();
    let body = r#"{"Name":"n2","Driver":"bridge","Internal":true,"Labels":{"l":"v"},
        "IPAM":{"Driver":"default","Config":[{"Subnet":"10.9.0.0/24","Gateway":"10.9.0.1"}]},
        "Options":{"com.docker.network.bridge.name":"br-x"},"CheckDuplicate":true}"#;
    let (st, v) = json(&app, "POST", "/networks/create", body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    check("create", &v, &[("/Id", "string"), ("/Warning", "\"\"")]);
    let req = fake.created.lock().unwrap().take().expect("create called");
    assert_eq!(req.body.name, "n2");
    assert_eq!(req.body.internal, Some(true));
    let cfg = req.body.ipam.and_then(|i| i.config).unwrap_or_default();
    assert_eq!(cfg[0].subnet.as_deref(), Some("10.9.0.0/24"));
    assert_eq!(cfg[0].gateway.as_deref(), Some("10.9.0.1"));
    assert_eq!(
        req.body.options.unwrap_or_default()["com.docker.network.bridge.name"],
        "br-x"
    );

    // No name at all is an empty one: the service refuses it (400).
    let (st, v) = json(&app, "POST", "/networks/create", r#"{"Driver":"bridge"}"#).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(message(&v), "network name must not be empty");
    let (st, v) = json(&app, "POST", "/networks/create", r#"{"Name":"dup"}"#).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(message(&v), "network with name dup already exists");
    // Bodies that are not a network never reach the service.
    for bad in ["[1]", "{\"Name\":", "{\"Name\":7}"] {
        let (st, v) = json(&app, "POST", "/networks/create", bad).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
        message(&v);
    }
    assert_eq!(
        fake.calls(),
        [r#"create "n2""#, r#"create """#, r#"create "dup""#]
    );
}

#[tokio::test]
async fn connect_and_disconnect_read_container_config_and_force() {
    let (fake, app) = setup();
    let body = r#"{"Container":"up","EndpointConfig":{"Aliases":["web"],"IPAMConfig":{"IPv4Address":"10.231.0.9"}}}"#;
    let (st, v) = json(&app, "POST", "/networks/net1/connect", body).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let ep = fake
        .connected
        .lock()
        .unwrap()
        .take()
        .expect("endpoint config");
    assert_eq!(ep.aliases, Some(vec!["web".to_string()]));
    assert_eq!(
        ep.ipam_config.and_then(|c| c.ipv4_address).as_deref(),
        Some("10.231.0.9")
    );
    let (st, _) = json(
        &app,
        "POST",
        "/networks/net1/connect",
        r#"{"Container":"up","EndpointConfig":null}"#,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = json(
        &app,
        "POST",
        "/networks/net1/connect",
        r#"{"Container":"gone"}"#,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(message(&v), "No such container: gone");
    for bad in [r#"{}"#, r#"{"Container":""}"#] {
        let (st, v) = json(&app, "POST", "/networks/net1/connect", bad).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert_eq!(message(&v), "Container must be set");
    }
    let (st, v) = json(
        &app,
        "POST",
        "/networks/net1/connect",
        r#"{"Container":"up","EndpointConfig":{"Aliases":"web"}}"#,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(message(&v).starts_with("invalid EndpointConfig"), "{v}");
    let (st, _) = json(
        &app,
        "POST",
        "/networks/net1/disconnect",
        r#"{"Container":"up","Force":true}"#,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = json(
        &app,
        "POST",
        "/networks/net1/disconnect",
        r#"{"Container":"up"}"#,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        fake.calls(),
        [
            "connect net1 up true",
            "connect net1 up false",
            "connect net1 gone false",
            "disconnect net1 up force=true",
            "disconnect net1 up force=false",
        ]
    );
}
