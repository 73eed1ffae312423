//! Swarm mode's endpoints (`/swarm`, `/services`, `/nodes`, `/secrets`,
//! `/configs`, `/tasks`): Pier is never part of a swarm, so each answers as
//! Docker does on a node outside one: 503 with Docker's wording, which clients
//! (the CLI, docker-py, compose) recognise; docker-py's test teardown takes
//! any error from `leave` as "nothing to leave". A 404 or a closed connection
//! made `docker swarm init` report a broken pipe.

use axum::body::Bytes;
use axum::http::{StatusCode, Uri};
use axum::routing::any;
use axum::Router;

use crate::error::ApiError;
use crate::AppState;

/// Docker's `errNoManager` for a node with no swarm at all.
pub const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

/// Docker's `errNoSwarm` (`POST /swarm/leave` on a node outside a swarm).
const NOT_IN_A_SWARM: &str = "This node is not part of a swarm";

/// `init` and `join` would succeed on Docker; Pier says why it cannot.
const NO_SWARM_MODE: &str = "Pier does not implement swarm mode: its cluster path is Kubernetes";

const NOUNS: &[&str] = &["services", "nodes", "secrets", "configs", "tasks"];

pub fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route("/swarm", any(answer))
        .route("/swarm/{*rest}", any(answer));
    for noun in NOUNS {
        r = r
            .route(&format!("/{noun}"), any(answer))
            .route(&format!("/{noun}/{{*rest}}"), any(answer));
    }
    r
}

/// The body is read to its end first: a response sent while the client is
/// still writing makes the server close the connection, which the client
/// sees as a broken pipe instead of this answer.
async fn answer(uri: Uri, _body: Bytes) -> ApiError {
    let path = uri.path().trim_end_matches('/');
    let message = if path.ends_with("/swarm/init") || path.ends_with("/swarm/join") {
        NO_SWARM_MODE
    } else if path.ends_with("/swarm/leave") {
        NOT_IN_A_SWARM
    } else {
        NOT_A_MANAGER
    };
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
}
