//! RFC 3339 timestamps as Docker writes them in image configs and history.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Now, as Docker writes it: `2024-05-01T12:34:56.123456789Z` (Go's RFC3339Nano:
/// trailing zeros of the fraction dropped).
pub fn now_rfc3339() -> String {
    format(OffsetDateTime::now_utc())
}

fn format(t: OffsetDateTime) -> String {
    // Only years past 9999 fail to format; no clock says that.
    t.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, nanos: u32) -> String {
        let t = OffsetDateTime::from_unix_timestamp(secs).unwrap()
            + time::Duration::nanoseconds(nanos.into());
        format(t)
    }

    #[test]
    fn known_dates() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400, 5_000), "2000-02-29T00:00:00.000005Z");
        assert_eq!(at(1_700_000_000, 0), "2023-11-14T22:13:20Z");
        assert_eq!(
            at(1_700_000_000, 123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
    }
}
