//! `docker import --change` / `docker commit --change`: a few Dockerfile
//! instructions applied to an image config.

use pier_api::models::ContainerConfig;

use crate::{EngineError, Result};

/// Splits an instruction's argument into exec form (JSON array) or shell form.
fn exec_or_shell(rest: &str) -> Vec<String> {
    let t = rest.trim();
    if t.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(t)
    {
        return v;
    }
    vec!["/bin/sh".into(), "-c".into(), t.to_string()]
}

/// `k=v k2="v 2"` or legacy `k v`.
fn key_values(rest: &str) -> Result<Vec<(String, String)>> {
    let rest = rest.trim();
    let first = rest.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| EngineError::invalid_argument(format!("{rest}: missing value")))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    for word in shell_words(rest) {
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| EngineError::invalid_argument(format!("invalid key=value: {word}")))?;
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Splits on whitespace, honouring double and single quotes.
fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// Applies `changes` (one instruction each) to `cfg`.
pub(crate) fn apply(cfg: &mut ContainerConfig, changes: &[String]) -> Result<()> {
    for change in changes.iter().filter(|c| !c.trim().is_empty()) {
        let change = change.trim();
        let (instr, rest) = change
            .split_once(char::is_whitespace)
            .unwrap_or((change, ""));
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => cfg.cmd = Some(exec_or_shell(rest)),
            "ENTRYPOINT" => cfg.entrypoint = Some(exec_or_shell(rest)),
            "WORKDIR" => cfg.working_dir = Some(rest.trim().to_string()),
            "USER" => cfg.user = Some(rest.trim().to_string()),
            "STOPSIGNAL" => cfg.stop_signal = Some(rest.trim().to_string()),
            "ENV" => {
                let env = cfg.env.get_or_insert_with(Vec::new);
                for (k, v) in key_values(rest)? {
                    set_env(env, &k, &v);
                }
            }
            "LABEL" => {
                let labels = cfg.labels.get_or_insert_with(Default::default);
                for (k, v) in key_values(rest)? {
                    labels.insert(k, v);
                }
            }
            "EXPOSE" => {
                let ports = cfg.exposed_ports.get_or_insert_with(Vec::new);
                for p in rest.split_whitespace() {
                    let p = if p.contains('/') {
                        p.to_string()
                    } else {
                        format!("{p}/tcp")
                    };
                    if !ports.contains(&p) {
                        ports.push(p);
                    }
                }
            }
            "VOLUME" => {
                let t = rest.trim();
                let vols: Vec<String> = if t.starts_with('[') {
                    serde_json::from_str(t)
                        .map_err(|e| EngineError::invalid_argument(format!("VOLUME {t}: {e}")))?
                } else {
                    t.split_whitespace().map(str::to_string).collect()
                };
                let v = cfg.volumes.get_or_insert_with(Vec::new);
                v.extend(vols);
            }
            "ONBUILD" => cfg
                .on_build
                .get_or_insert_with(Vec::new)
                .push(rest.trim().to_string()),
            other => {
                return Err(EngineError::invalid_argument(format!(
                    "{other} is not a valid change command"
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_dockerfile_changes() {
        let mut c = ContainerConfig::default();
        apply(
            &mut c,
            &[
                r#"CMD ["sh"]"#.into(),
                "ENV A=1 B=\"two words\"".into(),
                "ENV C 3 4".into(),
                "WORKDIR /app".into(),
                "ENTRYPOINT echo hi".into(),
                "EXPOSE 80 53/udp".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["sh"]);
        assert_eq!(c.env.unwrap(), vec!["A=1", "B=two words", "C=3 4"]);
        assert_eq!(c.working_dir.as_deref(), Some("/app"));
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.exposed_ports.unwrap(), vec!["80/tcp", "53/udp"]);
        assert!(apply(&mut ContainerConfig::default(), &["RUN x".into()]).is_err());
    }
}
