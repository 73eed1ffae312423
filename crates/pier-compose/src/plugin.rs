//! The docker CLI plugin protocol: installed as `~/.docker/cli-plugins/docker-compose`,
//! `pier` is asked `docker-cli-plugin-metadata`, then run as
//! `docker-compose compose <args>`, which the normal command line handles.

use std::path::Path;

/// True when this process was started under the plugin's name.
pub fn invoked_as_plugin(argv0: &str) -> bool {
    Path::new(argv0)
        .file_name()
        .is_some_and(|n| n == "docker-compose")
}

/// Answers `docker-compose docker-cli-plugin-metadata`; `None` for anything else.
pub fn metadata(args: &[String]) -> Option<i32> {
    let (argv0, first) = (args.first()?, args.get(1)?);
    if !invoked_as_plugin(argv0) || first != "docker-cli-plugin-metadata" {
        return None;
    }
    let m = serde_json::json!({
        "SchemaVersion": "0.1.0",
        "Vendor": "Pier",
        "Version": format!("v{}", crate::labels::COMPOSE_VERSION),
        "ShortDescription": "Docker Compose (Pier's native compose)",
    });
    crate::out::line(&serde_json::to_string_pretty(&m).unwrap_or_default());
    Some(0)
}

/// The daemon a plugin run talks to: the docker CLI's `DOCKER_HOST` when
/// set (Pier's own CLI ignores it; as a docker plugin it is the docker CLI's
/// choice that counts).
pub fn host(explicit: Option<&str>) -> Option<String> {
    if let Some(h) = explicit {
        return Some(h.to_string());
    }
    let argv0 = std::env::args().next().unwrap_or_default();
    if invoked_as_plugin(&argv0) {
        return std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
    }
    None
}
