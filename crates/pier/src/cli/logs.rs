//! `pier logs`.

use super::stream::copy_output;
use anyhow::Result;
use clap::Args;
use pier_client::{body_async_read, query, Client};
use serde_json::Value;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

/// Docker's `GetTimestamp`: a relative duration (`42m`) becomes now minus it,
/// an RFC 3339 time becomes unix seconds, a number passes through.
pub fn timestamp_param(v: &str) -> String {
    if v.parse::<f64>().is_ok() {
        return v.to_string();
    }
    use time::macros::format_description;
    use time::{Date, OffsetDateTime, PrimitiveDateTime};
    let secs_nanos = |t: OffsetDateTime| format!("{}.{:09}", t.unix_timestamp(), t.nanosecond());
    if let Ok(ns) = super::opts::go_duration(v) {
        return secs_nanos(OffsetDateTime::now_utc() - time::Duration::nanoseconds(ns));
    }
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(v, rfc3339) {
        return secs_nanos(t);
    }
    // Without a zone: UTC, whole seconds.
    let forms = [
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
    ];
    for f in forms {
        if let Ok(t) = PrimitiveDateTime::parse(v, f) {
            return t.assume_utc().unix_timestamp().to_string();
        }
    }
    if let Ok(d) = Date::parse(v, format_description!("[year]-[month]-[day]")) {
        return d.midnight().assume_utc().unix_timestamp().to_string();
    }
    v.to_string()
}

pub async fn logs(client: &Client, a: LogsArgs) -> Result<i32> {
    let info: Value = client
        .get_json(&format!("/containers/{}/json", a.container))
        .await?;
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut q = vec![
        ("stdout", "1".to_string()),
        ("stderr", "1".to_string()),
        ("tail", a.tail.clone()),
    ];
    if a.follow {
        q.push(("follow", "1".into()));
    }
    if a.timestamps {
        q.push(("timestamps", "1".into()));
    }
    if a.details {
        q.push(("details", "1".into()));
    }
    if let Some(s) = &a.since {
        q.push(("since", timestamp_param(s)));
    }
    if let Some(u) = &a.until {
        q.push(("until", timestamp_param(u)));
    }
    let resp = client
        .get(&format!("/containers/{}/logs{}", a.container, query(&q)))
        .await?;
    copy_output(body_async_read(resp), tty).await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp_param("1700000000"), "1700000000");
        assert_eq!(
            timestamp_param("2013-01-02T13:23:37Z"),
            "1357133017.000000000"
        );
        assert_eq!(timestamp_param("2013-01-02"), "1357084800");
        let rel: f64 = timestamp_param("10m").parse().unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
        assert!((now - 600.0 - rel).abs() < 5.0);
    }
}
