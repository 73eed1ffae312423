//! Numbers and times from query strings. Every value a client sends is
//! checked here before it reaches arithmetic: a value that overflows or makes
//! no sense is a 400 naming the parameter, never a panic in a handler.

use crate::error::ApiError;

/// A point in time from `since`/`until`: seconds and nanoseconds since the
/// epoch, as Go's `time.Unix(sec, nsec)` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub fn as_nanos(self) -> i128 {
        self.secs as i128 * 1_000_000_000 + self.nanos as i128
    }

    pub fn as_secs_f64(self) -> f64 {
        self.secs as f64 + self.nanos as f64 / 1e9
    }

    fn from_nanos(n: i128) -> Option<Timestamp> {
        let secs = i64::try_from(n.div_euclid(1_000_000_000)).ok()?;
        let nanos = n.rem_euclid(1_000_000_000) as u32;
        Some(Timestamp { secs, nanos })
    }
}

/// Nanoseconds since the epoch, now.
pub fn now_nanos() -> i128 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos()
}

/// `since`/`until` as Docker's client turns them into what its daemon reads
/// (moby's api/types/time GetTimestamp, then ParseTimestamps): a Go
/// duration back from `now`, an RFC 3339 time (or a shorter date/time, read
/// as UTC), or unix seconds with an optional fraction (`1700000000.5`).
/// Exponents, `inf`, `NaN` and out-of-range numbers are refused.
pub fn timestamp(value: &str, now: i128) -> Result<Timestamp, String> {
    let bad = || format!("failed to parse value as time or duration: {value:?}");
    if value != "0"
        && let Some(d) = go_duration(value)
    {
        return Timestamp::from_nanos(now - d as i128).ok_or_else(bad);
    }
    if let Some(t) = date_time(value) {
        return Timestamp::from_nanos(t).ok_or_else(bad);
    }
    let (s, frac) = match value.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (value, None),
    };
    if s.is_empty()
        || !s
            .trim_start_matches(['-', '+'])
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let secs = s
        .parse::<i64>()
        .map_err(|_| format!("{value:?}: value out of range"))?;
    let nanos = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            // Nine digits at most, padded: "5" is half a second.
            let digits: String = f.chars().take(9).collect();
            let n: u32 = digits.parse().map_err(|_| bad())?;
            n * 10u32.pow(9 - digits.len() as u32)
        }
        Some(_) => return Err(bad()),
    };
    Ok(Timestamp { secs, nanos })
}

/// RFC 3339 and the shorter forms Docker's client accepts, in nanoseconds.
fn date_time(value: &str) -> Option<i128> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    if let Ok(t) = time::OffsetDateTime::parse(value, &Rfc3339) {
        return Some(t.unix_timestamp_nanos());
    }
    // Without a zone: the daemon's zone, which is UTC for Pier.
    let forms = [
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        format_description!("[year]-[month]-[day]T[hour]"),
    ];
    for f in forms {
        if let Ok(t) = time::PrimitiveDateTime::parse(value, f) {
            return Some(t.assume_utc().unix_timestamp_nanos());
        }
    }
    let d = time::Date::parse(value, format_description!("[year]-[month]-[day]")).ok()?;
    Some(d.midnight().assume_utc().unix_timestamp_nanos())
}

/// Go's `time.ParseDuration` (`1h30m`, `-1.5h`, `250ms`, `0`) in
/// nanoseconds; `None` when it does not parse or overflows an i64, as Go.
pub fn go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int, after) = rest.split_at(int_end);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let e = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(e)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse::<u64>().ok()? as u128
        };
        let mut part = whole.checked_mul(per)?;
        // The fraction, digit by digit, as Go: exact to the nanosecond.
        let mut scale = per;
        for d in frac.bytes().take(30) {
            scale /= 10;
            part += (d - b'0') as u128 * scale;
        }
        total = total.checked_add(part)?;
        if total > i64::MAX as u128 + 1 {
            return None;
        }
        rest = next;
    }
    let v = if neg { -(total as i128) } else { total as i128 };
    i64::try_from(v).ok()
}

/// An optional time parameter; absent or empty is `None`.
pub fn qtime(q: &crate::body::Query, key: &str, now: i128) -> Result<Option<Timestamp>, ApiError> {
    match q.get(key).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(v) => timestamp(v, now)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("invalid value for {key}: {e}"))),
    }
}

/// An integer parameter. A decimal fraction is cut (clients written in
/// Python send `10.0`); exponents of any size, `inf` and `NaN`, and values
/// beyond an i64 are refused.
pub fn integer(value: &str) -> Option<i64> {
    if let Ok(n) = value.parse::<i64>() {
        return Some(n);
    }
    let (int, frac) = value.split_once('.')?;
    let digits = int.trim_start_matches(['-', '+']);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    int.parse::<i64>().ok()
}

/// An optional integer parameter; empty is absent.
pub fn qint(q: &crate::body::Query, key: &str) -> Result<Option<i64>, ApiError> {
    match q.get(key).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => integer(s).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!("invalid value for {key}: {s:?}: not an integer"))
        }),
    }
}

/// A terminal dimension (`h`, `w` of resize): 0 to 65535, as Docker's
/// `strconv.ParseUint(v, 10, 16)`. Absent is 0.
pub fn qdimension(q: &crate::body::Query, key: &str) -> Result<u16, ApiError> {
    match q.get(key).filter(|s| !s.is_empty()) {
        None => Ok(0),
        Some(v) => v.parse::<u16>().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid value for {key}: {v:?}: expected a number from 0 to 65535"
            ))
        }),
    }
}

/// `tail` of logs: `all` (or absent) is `None`; as Docker, a negative count
/// means all lines too.
pub fn qtail(q: &crate::body::Query) -> Result<Option<usize>, ApiError> {
    match q.get("tail").map(String::as_str) {
        None | Some("") | Some("all") => Ok(None),
        Some(t) => {
            let n = t.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid value for tail: {t:?}: expected \"all\" or a number of lines"
                ))
            })?;
            Ok(usize::try_from(n).ok())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i128 = 1_700_000_000_000_000_000;

    #[test]
    fn timestamps_take_docker_forms() {
        let ts = |v| timestamp(v, NOW);
        assert_eq!(
            ts("1700000000.5"),
            Ok(Timestamp {
                secs: 1_700_000_000,
                nanos: 500_000_000
            })
        );
        assert_eq!(ts("0").unwrap().as_nanos(), 0);
        assert_eq!(ts("1h").unwrap().as_nanos(), NOW - 3_600_000_000_000);
        assert_eq!(ts("1h30m").unwrap().secs, 1_700_000_000 - 5400);
        assert_eq!(ts("2023-11-14T22:13:20Z").unwrap().secs, 1_700_000_000);
        assert_eq!(ts("2023-11-14T22:13:20+01:00").unwrap().secs, 1_699_996_400);
        assert_eq!(ts("2023-11-14").unwrap().secs, 1_699_920_000);
        assert_eq!(ts("2023-11-14T22:13").unwrap().secs, 1_700_000_000 - 20);
        assert_eq!(ts(&i64::MAX.to_string()).unwrap().secs, i64::MAX);
    }

    #[test]
    fn nonsense_and_overflowing_timestamps_are_refused() {
        for v in [
            "1e30",
            "1e19",
            "inf",
            "NaN",
            "-inf",
            "9223372036854775808",
            "99999999999999999999999",
            "1.2.3",
            "1.",
            ".5",
            "yesterday",
            "5x",
            "99999999999999999999h",
            "2562048h",
            "2023-13-01",
            "",
        ] {
            assert!(timestamp(v, NOW).is_err(), "{v} should be refused");
        }
        let msg = timestamp("1e30", NOW).unwrap_err();
        assert_eq!(msg, r#"failed to parse value as time or duration: "1e30""#);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(go_duration("-90s"), Some(-90_000_000_000));
        assert_eq!(go_duration("1m0.5s"), Some(60_500_000_000));
        assert_eq!(go_duration("250ms"), Some(250_000_000));
        assert_eq!(go_duration(".5s"), Some(500_000_000));
        assert_eq!(go_duration("2562047h"), Some(2_562_047 * 3_600_000_000_000));
        assert_eq!(go_duration("2562048h"), None);
        for bad in ["", "10", "s", "-", "1x", "1.s.", "..s"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn integers_and_dimensions() {
        assert_eq!(integer("10"), Some(10));
        assert_eq!(integer("10.0"), Some(10));
        assert_eq!(integer("-3"), Some(-3));
        for bad in [
            "1e30",
            "inf",
            "NaN",
            "9223372036854775808",
            "1.5e3",
            "",
            "x",
        ] {
            assert_eq!(integer(bad), None, "{bad}");
        }
        let q = |v: &str| crate::body::Query::from([("h".to_string(), v.to_string())]);
        assert_eq!(qdimension(&q("24"), "h").unwrap(), 24);
        assert!(qdimension(&q("65536"), "h").is_err());
        assert!(qdimension(&q("-1"), "h").is_err());
    }
}
