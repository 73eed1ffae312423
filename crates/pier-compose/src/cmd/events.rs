//! `events` (the daemon's container events for this project) and `wait`
//! (block until the services' containers stop).

use crate::ctx::{select, Ctx};
use crate::error::{ComposeError, Result};
use crate::labels;
use crate::load::Project;
use crate::out;
use clap::Args;
use pier_client::{query, JsonLines};
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Output events as a stream of json objects
    #[arg(long)]
    pub json: bool,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    /// Drops project when the first container stops
    #[arg(long)]
    pub down_project: bool,
    #[arg(required = true)]
    pub services: Vec<String>,
}

fn utc(nanos: i128) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Go's `2006-01-02 15:04:05.000000`, as Compose prints an event (UTC).
pub fn text_time(nanos: i128) -> String {
    utc(nanos)
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]"
        ))
        .unwrap_or_default()
}

/// Go's RFC 3339 with nanoseconds (trailing zeros dropped), as `time.Time`
/// marshals to JSON.
pub fn json_time(nanos: i128) -> String {
    utc(nanos)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One daemon event as Compose prints it, or `None` for what it leaves out
/// (not a container, a one-off container, another service).
pub fn render(ev: &Value, services: &[String], as_json: bool) -> Option<String> {
    if ev["Type"] != "container" {
        return None;
    }
    let attrs = ev["Actor"]["Attributes"].as_object()?;
    if attrs.get(labels::ONEOFF).and_then(Value::as_str) == Some("True") {
        return None;
    }
    let service = attrs
        .get(labels::SERVICE)
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !services.is_empty() && !services.iter().any(|s| s == service) {
        return None;
    }
    let mut kept: Vec<(&String, &str)> = attrs
        .iter()
        .filter(|(k, _)| !k.starts_with("com.docker.compose."))
        .map(|(k, v)| (k, v.as_str().unwrap_or_default()))
        .collect();
    kept.sort();
    let nanos = ev["timeNano"]
        .as_i64()
        .map(i128::from)
        .unwrap_or_else(|| i128::from(ev["time"].as_i64().unwrap_or(0)) * 1_000_000_000);
    let id = ev["Actor"]["ID"].as_str().unwrap_or_default();
    let action = ev["Action"].as_str().unwrap_or_default();
    if as_json {
        let a: serde_json::Map<String, Value> =
            kept.iter().map(|(k, v)| ((*k).clone(), json!(v))).collect();
        return Some(
            json!({
                "action": action,
                "attributes": a,
                "id": id,
                "service": service,
                "time": json_time(nanos),
                "type": "container",
            })
            .to_string(),
        );
    }
    let a: Vec<String> = kept.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // Compose's event text ends with a newline and is printed with another.
    Some(format!(
        "{} container {action} {id} ({})\n",
        text_time(nanos),
        a.join(", ")
    ))
}

pub async fn events(ctx: &Ctx, p: &Project, a: &EventsArgs) -> Result<i32> {
    let mut p = p.clone();
    if !a.services.is_empty() {
        select(&mut p, &a.services)?;
    }
    let api = ctx.api().await?;
    let filters = json!({ "label": [format!("{}={}", labels::PROJECT, p.name)] }).to_string();
    let mut q = vec![("filters", filters)];
    if let Some(s) = &a.since {
        q.push(("since", s.clone()));
    }
    if let Some(u) = &a.until {
        q.push(("until", u.clone()));
    }
    let resp = api.client.get(&format!("/events{}", query(&q))).await?;
    let mut lines = JsonLines::new(resp);
    while let Some(ev) = lines.next::<Value>().await {
        if let Some(s) = render(&ev?, &a.services, a.json) {
            out::line(&s);
        }
    }
    Ok(0)
}

pub async fn wait(ctx: &Ctx, p: &Project, a: &WaitArgs) -> Result<i32> {
    let mut p = p.clone();
    let names = select(&mut p, &a.services)?;
    let api = ctx.api().await?;
    let list: Vec<_> = api
        .containers(&p.name, false, None)
        .await?
        .into_iter()
        .filter(|c| names.contains(&c.service))
        .collect();
    if list.is_empty() {
        return Err(ComposeError::Project(format!(
            "no containers for project {:?}",
            p.name
        )));
    }
    let mut waits = tokio::task::JoinSet::new();
    for c in list {
        let api = crate::api::Api::new(api.client.clone());
        waits.spawn(async move { (c.id.clone(), api.wait(&c.id).await) });
    }
    let mut code = 0;
    while let Some(r) = waits.join_next().await {
        let (id, r) = r.map_err(|e| ComposeError::Project(e.to_string()))?;
        code = r?;
        out::line(&format!("container {id:?} exited with status code {code}"));
        if a.down_project {
            waits.abort_all();
            let down = super::down::DownArgs {
                volumes: false,
                rmi: None,
                remove_orphans: true,
                timeout: None,
                project_name: None,
                services: Vec::new(),
            };
            super::down::down(ctx, &p, &down).await?;
            break;
        }
    }
    Ok(code as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_go_formats_them() {
        let t = 1_709_209_805_123_456_789i128;
        assert_eq!(text_time(t), "2024-02-29 12:30:05.123456");
        assert_eq!(json_time(t), "2024-02-29T12:30:05.123456789Z");
        assert_eq!(json_time(1_000_000_000 * 86400), "1970-01-02T00:00:00Z");
        assert_eq!(json_time(1_500_000_000), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn events_keep_container_ones_without_compose_labels() {
        let ev = json!({
            "Type": "container", "Action": "start", "timeNano": 1_500_000_000i64,
            "Actor": {"ID": "abc", "Attributes": {
                "name": "p-web-1", "image": "busybox",
                "com.docker.compose.service": "web",
                "com.docker.compose.oneoff": "False"}}
        });
        assert_eq!(
            render(&ev, &[], false).unwrap(),
            "1970-01-01 00:00:01.500000 container start abc (image=busybox, name=p-web-1)\n"
        );
        let j: Value = serde_json::from_str(&render(&ev, &[], true).unwrap()).unwrap();
        assert_eq!(j["service"], "web");
        assert_eq!(
            j["attributes"],
            json!({"image": "busybox", "name": "p-web-1"})
        );
        assert!(render(&ev, &["db".to_string()], false).is_none());
        let mut one = ev.clone();
        one["Actor"]["Attributes"]["com.docker.compose.oneoff"] = json!("True");
        assert!(render(&one, &[], false).is_none());
        let mut net = ev.clone();
        net["Type"] = json!("network");
        assert!(render(&net, &[], false).is_none());
    }
}
