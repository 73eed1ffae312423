//! The daemon's own log on stderr, as dockerd writes it: `--log-format
//! text` (colour codes only on a terminal) or `json`, one object per line
//! in logrus's shape (`level`, `msg`, `time`, then the event's fields), so
//! whatever reads dockerd's JSON log reads Pier's.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// `--log-format` / daemon.json `log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" | "" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            // dockerd's words.
            _ => Err(format!("unknown log format: {s}")),
        }
    }
}

/// Sets the process's log subscriber (once; later calls change nothing).
/// `PIER_LOG` (a tracing filter) wins over `filter`.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_env("PIER_LOG").unwrap_or_else(|_| EnvFilter::new(filter));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => b.event_format(LogrusJson).try_init(),
        // Colour codes only for a terminal, as dockerd: a log file or
        // journal gets plain text.
        LogFormat::Text => b
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

/// One JSON object per event, keys as logrus writes them.
struct LogrusJson;

impl<S, N> FormatEvent<S, N> for LogrusJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let line = logrus_line(
            *event.metadata().level(),
            &pier_engine::now_rfc3339(),
            |v| event.record(v),
        );
        writeln!(writer, "{line}")
    }
}

/// The object for one event; `record` feeds the event's fields to a visitor.
fn logrus_line(level: Level, time: &str, record: impl FnOnce(&mut Fields)) -> Value {
    let mut f = Fields::default();
    record(&mut f);
    // Sorted, as Go's encoder writes logrus's map.
    let mut obj = std::collections::BTreeMap::new();
    // As logrus: a field named like one of its own keys is kept under `fields.`.
    for (k, v) in f.fields {
        let k = if matches!(k.as_str(), "level" | "msg" | "time") {
            format!("fields.{k}")
        } else {
            k
        };
        obj.insert(k, v);
    }
    let level = match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warning",
        Level::ERROR => "error",
    };
    obj.insert("level".into(), level.into());
    obj.insert("msg".into(), f.message.unwrap_or_default().into());
    obj.insert("time".into(), time.into());
    Value::Object(obj.into_iter().collect())
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    fields: Map<String, Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, v: Value) {
        if field.name() == "message" {
            self.message = Some(match v {
                Value::String(s) => s,
                v => v.to_string(),
            });
        } else {
            self.fields.insert(field.name().to_string(), v);
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_as_dockerd_names_them() {
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("text".parse(), Ok(LogFormat::Text));
        assert_eq!(
            "xml".parse::<LogFormat>(),
            Err("unknown log format: xml".to_string())
        );
    }

    #[test]
    fn a_line_has_logrus_keys_and_the_fields() {
        let line = logrus_line(Level::WARN, "2026-01-02T03:04:05Z", |f| {
            f.message = Some("container died".into());
            f.fields.insert("id".into(), "abc".into());
            f.fields.insert("msg".into(), "clash".into());
        });
        assert_eq!(
            line.to_string(),
            r#"{"fields.msg":"clash","id":"abc","level":"warning","msg":"container died","time":"2026-01-02T03:04:05Z"}"#
        );
    }
}
