//! Go-compatible value syntaxes: `time.ParseDuration` (HEALTHCHECK) and
//! `units.RAMInBytes` (tmpfs mount sizes).

use std::time::Duration;

/// Parses a Go duration (`1h30m`, `1.5s`, `300ms`, `0`) to signed nanoseconds.
pub(crate) fn parse_go_duration(s: &str) -> Result<i128, String> {
    let bad = || format!("time: invalid duration {}", crate::quote::go_quote(s));
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let value: f64 = num.parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale: f64 = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => {
                return Err(format!(
                    "time: missing unit in duration {}",
                    crate::quote::go_quote(s)
                ))
            }
            u => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    crate::quote::go_quote(u),
                    crate::quote::go_quote(s)
                ))
            }
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    let n = total.round() as i128;
    Ok(if neg { -n } else { n })
}

/// HEALTHCHECK interval flags: None when absent or zero; below 1ms is an error.
pub(crate) fn parse_opt_interval(
    flag: &str,
    value: Option<&str>,
) -> Result<Option<Duration>, String> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let nanos = parse_go_duration(v)?;
    if nanos == 0 {
        return Ok(None);
    }
    if nanos < 1_000_000 {
        return Err(format!("Interval \"{flag}\" cannot be less than 1ms"));
    }
    Ok(Some(Duration::from_nanos(nanos as u64)))
}

/// `units.RAMInBytes`: `64m`, `1g`, `512`, `1.5GiB` with binary multipliers.
pub(crate) fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let num = &s[..num_len];
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    let mut suffix = s[num_len..]
        .strip_prefix(' ')
        .unwrap_or(&s[num_len..])
        .to_ascii_lowercase();
    let mult: f64 = match suffix.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            suffix.remove(0);
            1024f64.powi(match c {
                'k' => 1,
                'm' => 2,
                'g' => 3,
                't' => 4,
                _ => 5,
            })
        }
        _ => 1.0,
    };
    let suffix = suffix.strip_prefix('i').unwrap_or(&suffix);
    let suffix = suffix.strip_prefix('b').unwrap_or(suffix);
    if !suffix.is_empty() {
        return Err(bad());
    }
    Ok((value * mult) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("5s").unwrap(), 5_000_000_000);
        assert_eq!(parse_go_duration("1h30m").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_go_duration("1.5ms").unwrap(), 1_500_000);
        assert_eq!(parse_go_duration("0").unwrap(), 0);
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("abc").is_err());
        assert!(parse_go_duration("").is_err());
        assert_eq!(parse_opt_interval("interval", Some("0s")).unwrap(), None);
        assert!(parse_opt_interval("interval", Some("10us")).is_err());
        assert_eq!(
            parse_opt_interval("interval", Some("3s")).unwrap(),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn ram() {
        assert_eq!(ram_in_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("1GiB").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("512").unwrap(), 512);
        assert!(ram_in_bytes("lots").is_err());
    }
}
