//! Log drivers as Docker configures them: the daemon's default merged into a
//! container's `HostConfig.LogConfig`, each driver's options checked with
//! Docker's wording, and the rotation the shim applies.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pier_api::models::HostConfigLogConfig;
use pier_runtime::proto::LogRotation;

/// The daemon's `log-driver` and `log-opts` (daemon.json or flags).
#[derive(Debug, Clone)]
pub struct LogDefaults {
    pub driver: String,
    pub opts: HashMap<String, String>,
}

impl Default for LogDefaults {
    fn default() -> Self {
        LogDefaults {
            driver: "json-file".into(),
            opts: HashMap::new(),
        }
    }
}

/// The drivers Pier stores logs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    JsonFile,
    Local,
    None,
}

/// The `local` driver's defaults, as Docker's: 20 MiB x 5 files, compressed.
const LOCAL_MAX_SIZE: u64 = 20 * 1024 * 1024;
const LOCAL_MAX_FILE: u32 = 5;

/// Sizes as Docker reads `max-size` (go-units `FromHumanSize`): decimal
/// multiples, an optional `b`/`ib` after the unit, fractions allowed.
pub fn parse_size(s: &str) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{s}'");
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(invalid());
    };
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..sep + 1], &s[sep + 1..])
    };
    let size: f64 = num
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing {num:?}: invalid syntax"))?;
    if size < 0.0 || !size.is_finite() {
        return Err(invalid());
    }
    let bad_suffix = || format!("invalid suffix: '{}'", sfx.to_lowercase());
    let sfx_l = sfx.to_ascii_lowercase();
    let mul: f64 = match sfx_l.as_bytes() {
        [] => 1.0,
        [b'b'] => 1.0,
        [u, rest @ ..] => {
            let m = match u {
                b'k' => 1e3,
                b'm' => 1e6,
                b'g' => 1e9,
                b't' => 1e12,
                b'p' => 1e15,
                _ => return Err(bad_suffix()),
            };
            match rest {
                [] | [b'b'] | [b'i', b'b'] => m,
                _ => return Err(bad_suffix()),
            }
        }
    };
    if sfx.len() > 3 {
        return Err(bad_suffix());
    }
    let v = size * mul;
    // Go converts out-of-range floats to the minimum int64; refuse instead.
    if v >= i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(v as i64)
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

fn parse_int(s: &str) -> Result<i64, String> {
    s.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {s:?}: invalid syntax"))
}

/// What a valid log config means for the shim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub driver: Driver,
    pub rotation: LogRotation,
}

/// Checks `opts` for `driver` as Docker does and returns what they mean.
pub fn validate(driver: &str, opts: &HashMap<String, String>) -> Result<Resolved, String> {
    let driver = match driver {
        "json-file" => Driver::JsonFile,
        "local" => Driver::Local,
        "none" => {
            return Ok(Resolved {
                driver: Driver::None,
                rotation: LogRotation::default(),
            })
        }
        other => {
            return Err(format!(
                "logger: no log driver named '{other}' is registered"
            ))
        }
    };
    match opts.get("mode").map(String::as_str) {
        None | Some("") | Some("blocking") => {}
        Some("non-blocking") => {
            return Err(
                "logger: mode=non-blocking is not supported by pier (output is never dropped)"
                    .into(),
            )
        }
        Some(m) => return Err(format!("logger: logging mode not supported: {m}")),
    }
    if opts.contains_key("max-buffer-size") {
        return Err(
            "logger: max-buffer-size option is only supported with 'mode=non-blocking'".into(),
        );
    }
    let generic = |k: &str| k == "mode";
    let mut rot = LogRotation::default();
    match driver {
        Driver::JsonFile => {
            for k in opts.keys().filter(|k| !generic(k)) {
                match k.as_str() {
                    "max-size" | "max-file" | "compress" => {}
                    "labels" | "labels-regex" | "env" | "env-regex" | "tag" => {
                        return Err(format!(
                            "log opt '{k}' of the json-file log driver is not supported by pier"
                        ))
                    }
                    _ => return Err(format!("unknown log opt '{k}' for json-file log driver")),
                }
            }
            let mut cap: i64 = -1;
            if let Some(s) = opts.get("max-size") {
                cap = parse_size(s)?;
                if cap <= 0 {
                    return Err("max-size must be a positive number".into());
                }
            }
            let mut max_file: i64 = 1;
            if let Some(s) = opts.get("max-file") {
                max_file = parse_int(s)?;
                if max_file < 1 {
                    return Err("max-file cannot be less than 1".into());
                }
            }
            if let Some(s) = opts.get("compress") {
                rot.compress = parse_bool(s)?;
                if rot.compress && (max_file == 1 || cap == -1) {
                    return Err("compress cannot be true when max-file is less than 2 or max-size is not set".into());
                }
            }
            // Without max-size the file never rotates and max-file means
            // nothing, as in Docker.
            rot.max_size = cap.max(0) as u64;
            rot.max_file = max_file.min(u32::MAX as i64) as u32;
        }
        Driver::Local => {
            for k in opts.keys().filter(|k| !generic(k)) {
                if !matches!(k.as_str(), "max-size" | "max-file" | "compress") {
                    return Err(format!("unknown log opt '{k}' for log driver local"));
                }
            }
            rot.max_size = LOCAL_MAX_SIZE;
            rot.max_file = LOCAL_MAX_FILE;
            rot.compress = true;
            if let Some(s) = opts.get("max-size") {
                let v = parse_size(s)?;
                if v <= 0 {
                    return Err("max size should be a positive number".into());
                }
                rot.max_size = v as u64;
            }
            if let Some(s) = opts.get("max-file") {
                let v = parse_int(s)?;
                if v < 1 {
                    return Err("max file count cannot be less than 1".into());
                }
                rot.max_file = v.min(u32::MAX as i64) as u32;
            }
            if let Some(s) = opts.get("compress") {
                rot.compress = parse_bool(s)?;
            }
            if rot.compress && rot.max_file <= 1 {
                return Err("compression cannot be enabled when max file count is 1".into());
            }
        }
        Driver::None => unreachable!("returned above"),
    }
    Ok(Resolved {
        driver,
        rotation: rot,
    })
}

/// Docker's `mergeAndVerifyLogConfig`: an empty driver is the daemon's, and a
/// container of the daemon's driver inherits each default option it does
/// not set itself.
pub fn merge_and_validate(
    cfg: &mut HostConfigLogConfig,
    defaults: &LogDefaults,
) -> Result<Resolved, String> {
    if cfg.typ.as_deref().unwrap_or("").is_empty() {
        cfg.typ = Some(defaults.driver.clone());
    }
    let typ = cfg.typ.clone().unwrap_or_default();
    let opts = cfg.config.get_or_insert_with(HashMap::new);
    if typ == defaults.driver {
        for (k, v) in &defaults.opts {
            opts.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    validate(&typ, opts)
}

/// The resolved config of a stored container (old records: json-file).
pub fn resolved_of(cfg: Option<&HostConfigLogConfig>) -> Resolved {
    let typ = cfg.and_then(|c| c.typ.as_deref()).unwrap_or("json-file");
    let empty = HashMap::new();
    let opts = cfg.and_then(|c| c.config.as_ref()).unwrap_or(&empty);
    validate(typ, opts).unwrap_or(Resolved {
        driver: Driver::JsonFile,
        rotation: LogRotation::default(),
    })
}

/// Where a container's log lives (None: the `none` driver keeps none).
pub fn log_file(dir: &Path, id: &str, driver: Driver) -> Option<PathBuf> {
    match driver {
        Driver::JsonFile => Some(dir.join(format!("{id}-json.log"))),
        Driver::Local => Some(dir.join("local-logs").join("container.log")),
        Driver::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sizes_parse_like_go_units() {
        assert_eq!(parse_size("10m"), Ok(10_000_000));
        assert_eq!(parse_size("1k"), Ok(1000));
        assert_eq!(parse_size("1KiB"), Ok(1000));
        assert_eq!(parse_size("2g"), Ok(2_000_000_000));
        assert_eq!(parse_size("1.5M"), Ok(1_500_000));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("512b"), Ok(512));
        assert_eq!(parse_size("3 mb"), Ok(3_000_000));
        assert_eq!(parse_size("abc"), Err("invalid size: 'abc'".into()));
        assert_eq!(parse_size("10x"), Err("invalid suffix: 'x'".into()));
        assert_eq!(parse_size("10mbb"), Err("invalid suffix: 'mbb'".into()));
        assert!(parse_size("1e400").is_err());
        assert!(parse_size("99999999999p").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn json_file_options_checked_like_docker() {
        let r = validate("json-file", &opts(&[("max-size", "1m"), ("max-file", "2")])).unwrap();
        assert_eq!(r.rotation.max_size, 1_000_000);
        assert_eq!(r.rotation.max_file, 2);
        assert!(!r.rotation.compress);
        assert_eq!(
            validate("json-file", &opts(&[("bogus", "1")])).unwrap_err(),
            "unknown log opt 'bogus' for json-file log driver"
        );
        assert_eq!(
            validate("json-file", &opts(&[("max-size", "0")])).unwrap_err(),
            "max-size must be a positive number"
        );
        assert_eq!(
            validate("json-file", &opts(&[("max-file", "0")])).unwrap_err(),
            "max-file cannot be less than 1"
        );
        assert!(validate("json-file", &opts(&[("compress", "true")])).is_err());
        assert!(
            validate(
                "json-file",
                &opts(&[("compress", "true"), ("max-size", "1k"), ("max-file", "3")])
            )
            .unwrap()
            .rotation
            .compress
        );
        assert_eq!(
            validate("syslog", &HashMap::new()).unwrap_err(),
            "logger: no log driver named 'syslog' is registered"
        );
        assert!(validate("json-file", &opts(&[("mode", "non-blocking")])).is_err());
        assert!(validate("json-file", &opts(&[("mode", "blocking")])).is_ok());
    }

    #[test]
    fn local_defaults_are_dockers() {
        let r = validate("local", &HashMap::new()).unwrap();
        assert_eq!(r.driver, Driver::Local);
        assert_eq!(
            r.rotation,
            LogRotation {
                max_size: 20 * 1024 * 1024,
                max_file: 5,
                compress: true,
                ..Default::default()
            }
        );
        assert_eq!(
            validate("local", &opts(&[("max-file", "1")])).unwrap_err(),
            "compression cannot be enabled when max file count is 1"
        );
        assert_eq!(
            validate("local", &opts(&[("tag", "x")])).unwrap_err(),
            "unknown log opt 'tag' for log driver local"
        );
        assert_eq!(
            validate("none", &opts(&[("x", "y")])).unwrap().driver,
            Driver::None
        );
    }

    #[test]
    fn defaults_merge_per_option() {
        let d = LogDefaults {
            driver: "json-file".into(),
            opts: opts(&[("max-size", "5m"), ("max-file", "3")]),
        };
        let mut c = HostConfigLogConfig {
            typ: None,
            config: Some(opts(&[("max-file", "2")])),
        };
        let r = merge_and_validate(&mut c, &d).unwrap();
        assert_eq!(c.typ.as_deref(), Some("json-file"));
        assert_eq!(r.rotation.max_size, 5_000_000);
        assert_eq!(r.rotation.max_file, 2);
        // Another driver does not inherit the default driver's options.
        let mut c = HostConfigLogConfig {
            typ: Some("local".into()),
            config: None,
        };
        assert_eq!(merge_and_validate(&mut c, &d).unwrap().rotation.max_file, 5);
    }
}
