//! Kubernetes resource quantities: `128Mi`, `1G`, `500m` CPUs.

/// Bytes of a memory quantity (`128Mi`, `1G`, `1e3`, `512`).
pub fn bytes(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        "m" => 1e-3,
        _ => return None,
    };
    let v = (n * mult).ceil();
    (v >= 0.0 && v < i64::MAX as f64).then_some(v as i64)
}

/// Thousandths of a CPU (`500m` → 500, `1.5` → 1500).
pub fn milli_cpus(s: &str) -> Option<i64> {
    let s = s.trim();
    let v = match s.strip_suffix('m') {
        Some(m) => m.parse::<f64>().ok()?,
        None => s.parse::<f64>().ok()? * 1000.0,
    };
    (v > 0.0).then_some(v.ceil() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(bytes("128Mi"), Some(128 << 20));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("512"), Some(512));
        assert_eq!(bytes("1e3"), Some(1000));
        assert_eq!(bytes("12Xi"), None);
        assert_eq!(milli_cpus("500m"), Some(500));
        assert_eq!(milli_cpus("1.5"), Some(1500));
        assert_eq!(milli_cpus("x"), None);
    }
}
