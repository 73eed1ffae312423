//! Docker's ways of printing sizes, durations, times and ids (go-units and
//! the docker CLI's formatter helpers).

use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// Go's `%.<prec>g` (or `%v` with `prec == None`: shortest round-trip form).
pub fn go_float_g(f: f64, prec: Option<usize>) -> String {
    if f == 0.0 {
        return "0".into();
    }
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Scientific form first to learn the decimal exponent after rounding.
    let sci = match prec {
        Some(p) => format!("{:.*e}", p.max(1) - 1, f),
        None => format!("{:e}", f),
    };
    let (mant, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().unwrap_or(0);
    let limit = prec.map(|p| p.max(1) as i32).unwrap_or(21);
    if exp < -4 || exp >= limit {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let decimals = match prec {
        Some(p) => (p as i32 - 1 - exp).max(0) as usize,
        None => {
            let digits = mant.trim_start_matches('-').replace('.', "").len() as i32;
            (digits - 1 - exp).max(0) as usize
        }
    };
    trim_zeros(&format!("{:.*}", decimals, f)).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// go-units `HumanSizeWithPrecision`: decimal units, `prec` significant digits.
pub fn human_size_prec(size: f64, prec: usize) -> String {
    let (v, unit) = scale(size, 1000.0, &DECIMAL_UNITS);
    format!("{}{}", go_float_g(v, Some(prec)), unit)
}

/// go-units `HumanSize` (4 significant digits), as `docker system df` uses it.
pub fn human_size(size: f64) -> String {
    human_size_prec(size, 4)
}

/// go-units `BytesSize`: binary units, as `docker stats` prints memory.
pub fn bytes_size(size: f64) -> String {
    let (v, unit) = scale(size, 1024.0, &BINARY_UNITS);
    format!("{}{}", go_float_g(v, Some(4)), unit)
}

fn scale(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// go-units `HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

/// What "… ago" columns count from and the zone dates print in: the system's
/// for real output, fixed ones for snapshot tests (which print UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    System,
    /// `now` in unix seconds.
    #[cfg_attr(not(test), allow(dead_code))]
    Fixed {
        now: i64,
    },
}

impl Clock {
    fn now_millis(self) -> i64 {
        match self {
            Clock::System => (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
            Clock::Fixed { now } => now * 1000,
        }
    }

    /// "3 seconds ago" for a unix timestamp.
    pub fn ago(self, ts: i64) -> String {
        let d = (self.now_millis() - ts * 1000).max(0) as u64;
        format!("{} ago", human_duration(Duration::from_millis(d)))
    }

    /// Go's `time.Time.String()`: `2024-01-02 15:04:05 +0000 UTC`.
    pub fn time_string(self, ts: i64) -> String {
        match self {
            Clock::System => go_time_string(ts),
            Clock::Fixed { .. } => OffsetDateTime::from_unix_timestamp(ts)
                .map(go_time_text)
                .unwrap_or_default(),
        }
    }

    /// RFC 3339 to the second, in the local zone (UTC for a fixed clock).
    pub fn rfc3339(self, ts: i64) -> String {
        match self {
            Clock::System => rfc3339_local(ts),
            Clock::Fixed { .. } => OffsetDateTime::from_unix_timestamp(ts)
                .ok()
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_default(),
        }
    }
}

/// The local zone's offset at `t` (TZ, else /etc/localtime), as Docker's CLI
/// prints times; UTC when the system cannot tell.
pub fn local_offset(t: OffsetDateTime) -> UtcOffset {
    UtcOffset::local_offset_at(t).unwrap_or(UtcOffset::UTC)
}

/// A unix timestamp in local time.
fn local_from_unix(ts: i64) -> Option<OffsetDateTime> {
    let t = OffsetDateTime::from_unix_timestamp(ts).ok()?;
    Some(t.to_offset(local_offset(t)))
}

/// Go's `time.Time.String()` in local time: `2024-01-02 15:04:05 +0000 UTC`.
pub fn go_time_string(ts: i64) -> String {
    local_from_unix(ts).map(go_time_text).unwrap_or_default()
}

fn go_time_text(t: OffsetDateTime) -> String {
    let offset = t
        .format(format_description!(
            "[offset_hour sign:mandatory][offset_minute]"
        ))
        .unwrap_or_default();
    let zone = if t.offset().is_utc() {
        "UTC".to_string()
    } else {
        std::env::var("TZ")
            .ok()
            .filter(|z| !z.contains('/') && !z.is_empty())
            .unwrap_or_else(|| offset.clone())
    };
    let when = t
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_default();
    format!("{when} {offset} {zone}")
}

/// RFC 3339 to the second in local time (`2024-01-02T15:04:05+01:00`, `Z` in UTC),
/// as `docker history --format` shows it.
pub fn rfc3339_local(ts: i64) -> String {
    let Some(t) = local_from_unix(ts) else {
        return String::new();
    };
    // RFC 3339 has no seconds in offsets (old local mean times had them).
    t.format(&Rfc3339)
        .or_else(|_| t.to_offset(UtcOffset::UTC).format(&Rfc3339))
        .unwrap_or_default()
}

/// Strips `sha256:` and shortens to 12 characters, like `stringid.TruncateID`.
pub fn short_id(id: &str) -> String {
    let id = id.split_once(':').map(|(_, h)| h).unwrap_or(id);
    id.chars().take(12).collect()
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote` for the printable text we deal with.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size_prec(0.0, 3), "0B");
        assert_eq!(human_size_prec(4_261_234.0, 3), "4.26MB");
        assert_eq!(human_size_prec(1_234.0, 3), "1.23kB");
        assert_eq!(human_size_prec(999.0, 3), "999B");
        assert_eq!(human_size_prec(123_456_789.0, 3), "123MB");
        assert_eq!(human_size_prec(1_000_000.0, 3), "1MB");
        assert_eq!(human_size(4_261_234.0), "4.261MB");
        assert_eq!(human_size(12_000.0), "12kB");
        assert_eq!(bytes_size(1_048_576.0), "1MiB");
        assert_eq!(bytes_size(1_572_864.0), "1.5MiB");
    }

    #[test]
    fn go_g_format() {
        assert_eq!(go_float_g(999.5, Some(3)), "1e+03");
        assert_eq!(go_float_g(0.5, None), "0.5");
        assert_eq!(go_float_g(2.25, Some(4)), "2.25");
        assert_eq!(go_float_g(1e21, None), "1e+21");
    }

    #[test]
    fn durations_like_go_units() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(3)), "3 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(119)), "About a minute");
        assert_eq!(human_duration(s(120)), "2 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(5400)), "2 hours");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
        assert_eq!(human_duration(s(20 * 86400)), "2 weeks");
        assert_eq!(human_duration(s(90 * 86400)), "3 months");
        assert_eq!(human_duration(s(800 * 86400)), "2 years");
    }

    #[test]
    fn ids_and_text() {
        assert_eq!(short_id("sha256:0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(
            ellipsis("sh -c 'sleep 1000; echo done'", 20),
            "sh -c 'sleep 1000; …"
        );
        assert_eq!(
            go_quote(&ellipsis("sh -c 'sleep 1000; echo done'", 20)),
            "\"sh -c 'sleep 1000; …\""
        );
        assert_eq!(go_quote("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn ago_for_old_times() {
        assert!(Clock::System.ago(0).ends_with("years ago"));
        assert_eq!(Clock::Fixed { now: 90 }.ago(0), "About a minute ago");
        assert!(Clock::System.ago(0).ends_with("years ago"));
        let now = OffsetDateTime::now_utc().unix_timestamp();
        assert_eq!(Clock::System.ago(now - 70), "About a minute ago");
        assert_eq!(Clock::System.ago(now + 5), "Less than a second ago");
    }

    #[test]
    fn go_time_strings() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(go_time_text(t), "2023-11-14 22:13:20 +0000 UTC");
        let east = t.to_offset(UtcOffset::from_hms(5, 30, 0).unwrap());
        let zone = std::env::var("TZ")
            .ok()
            .filter(|z| !z.contains('/') && !z.is_empty())
            .unwrap_or_else(|| "+0530".into());
        assert_eq!(
            go_time_text(east),
            format!("2023-11-15 03:43:20 +0530 {zone}")
        );
    }
}
