//! The container's process: user, environment, working directory and rlimits;
//! its capability set comes from `caps`.

use serde_json::{json, Value};

use super::{SpecError, SpecOptions};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(super) fn rlimit_type(name: &str) -> Option<&'static str> {
    Some(match name {
        "core" => "RLIMIT_CORE",
        "cpu" => "RLIMIT_CPU",
        "data" => "RLIMIT_DATA",
        "fsize" => "RLIMIT_FSIZE",
        "locks" => "RLIMIT_LOCKS",
        "memlock" => "RLIMIT_MEMLOCK",
        "msgqueue" => "RLIMIT_MSGQUEUE",
        "nice" => "RLIMIT_NICE",
        "nofile" => "RLIMIT_NOFILE",
        "nproc" => "RLIMIT_NPROC",
        "rss" => "RLIMIT_RSS",
        "rtprio" => "RLIMIT_RTPRIO",
        "rttime" => "RLIMIT_RTTIME",
        "sigpending" => "RLIMIT_SIGPENDING",
        "stack" => "RLIMIT_STACK",
        "as" => "RLIMIT_AS",
        _ => return None,
    })
}

/// This process's own nofile limits: the default, since the container cannot get
/// more than we have without CAP_SYS_RESOURCE (Docker also just inherits).
pub(super) fn own_nofile() -> (u64, u64) {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((1024, 1024))
}

fn env_has(env: &[String], key: &str) -> bool {
    env.iter()
        .any(|e| e.split_once('=').map(|(k, _)| k) == Some(key) || e == key)
}

/// Docker's environment: PATH, HOSTNAME and TERM first when missing, then the
/// given items, then HOME when missing.
fn build_env(o: &SpecOptions) -> Vec<String> {
    let mut env = Vec::new();
    if !env_has(&o.env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if let Some(h) = &o.hostname
        && !env_has(&o.env, "HOSTNAME")
    {
        env.push(format!("HOSTNAME={h}"));
    }
    if o.terminal && !env_has(&o.env, "TERM") {
        env.push("TERM=xterm".into());
    }
    env.extend(o.env.iter().cloned());
    if !env_has(&env, "HOME") {
        env.push(format!("HOME={}", o.home.as_deref().unwrap_or("/")));
    }
    env
}

fn rlimits(o: &SpecOptions) -> Result<Vec<Value>, SpecError> {
    let mut out: Vec<(String, u64, u64)> = Vec::new();
    let (soft, hard) = own_nofile();
    out.push(("RLIMIT_NOFILE".into(), soft, hard));
    for u in &o.ulimits {
        let t = rlimit_type(&u.name)
            .ok_or_else(|| SpecError::Ulimit(u.name.clone(), "unknown ulimit name".into()))?;
        out.retain(|(n, _, _)| n != t);
        out.push((t.to_string(), u.soft, u.hard));
    }
    Ok(out
        .into_iter()
        .map(|(t, s, h)| json!({"type": t, "soft": s, "hard": h}))
        .collect())
}

/// The spec's `process` object, running with capability set `caps`.
pub(super) fn process(o: &SpecOptions, caps: &[String]) -> Result<Value, SpecError> {
    let cwd = if o.cwd.is_empty() {
        "/"
    } else {
        o.cwd.as_str()
    };
    if !cwd.starts_with('/') {
        return Err(SpecError::Invalid(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }

    let mut process = json!({
        "terminal": o.terminal,
        "user": {"uid": o.uid, "gid": o.gid},
        "args": o.args,
        "env": build_env(o),
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": rlimits(o)?,
    });
    // Only when set: libcontainer 0.7 treats a present `false` like `true` when
    // ordering seccomp after the capability drop, and the load then fails.
    if o.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    if !o.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(o.additional_gids);
    }
    if let Some(adj) = o.oom_score_adj {
        process["oomScoreAdj"] = json!(adj);
    }
    Ok(process)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::spec::build_spec_on;
    use crate::spec::tests::{host, opts, r#gen};
    use crate::spec::Ulimit;

    #[test]
    fn ulimits_and_process_options() {
        let mut o = opts();
        o.ulimits = vec![
            Ulimit::parse("nofile=100:200").unwrap(),
            Ulimit::parse("nproc=50").unwrap(),
        ];
        o.oom_score_adj = Some(500);
        o.no_new_privileges = true;
        let v = r#gen(&o);
        let rl = v["process"]["rlimits"].as_array().unwrap();
        assert_eq!(rl.len(), 2);
        assert!(rl
            .iter()
            .any(|l| l["type"] == "RLIMIT_NOFILE" && l["soft"] == 100 && l["hard"] == 200));
        assert!(rl
            .iter()
            .any(|l| l["type"] == "RLIMIT_NPROC" && l["soft"] == 50));
        assert_eq!(v["process"]["oomScoreAdj"], 500);
        assert_eq!(v["process"]["noNewPrivileges"], true);
        assert!(Ulimit::parse("nofile=200:100").is_err());
        assert!(Ulimit::parse("bogus=1").is_err());
    }

    #[test]
    fn user_and_terminal() {
        let mut o = opts();
        o.uid = 1000;
        o.gid = 1000;
        o.additional_gids = vec![10, 20];
        o.home = Some("/home/u".into());
        o.terminal = true;
        o.env = vec!["FOO=bar".into()];
        o.cwd = "/work".into();
        let v = r#gen(&o);
        assert_eq!(
            v["process"]["user"],
            json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20]})
        );
        assert_eq!(v["process"]["terminal"], true);
        assert_eq!(v["process"]["cwd"], "/work");
        let env = v["process"]["env"].as_array().unwrap();
        assert!(env.iter().any(|e| e == "TERM=xterm"));
        assert!(env.iter().any(|e| e == "FOO=bar"));
        assert!(env.iter().any(|e| e == "HOME=/home/u"));
        o.cwd = "rel".into();
        assert!(build_spec_on(&o, &host(), true).is_err());
    }
}
