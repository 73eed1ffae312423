//! A service's `secrets` and `configs` as Compose v2 puts them in a
//! container: a `file` source is bind-mounted read-only; `environment` and
//! `content` sources are copied in (an archive put before the container
//! starts), so nothing is written on the host. Secrets land in
//! `/run/secrets/<name>`, configs in `/<name>`, unless `target` says otherwise.

use crate::error::{ComposeError, Result};
use crate::load::Project;
use crate::model::{FileObject, FileRef, Service};

/// A file copied into the container before it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Inject {
    /// Absolute path in the container.
    pub path: String,
    pub content: Vec<u8>,
    pub uid: u64,
    pub gid: u64,
    pub mode: u32,
    /// `uid` or `gid` was given: the daemon keeps the archive's owner
    /// (`copyUIDGID`), as Compose asks.
    pub keep_owner: bool,
}

/// Bind mounts (`src:dst:ro`) and copied files for `svc`.
pub fn plan(p: &Project, service: &str, svc: &Service) -> Result<(Vec<String>, Vec<Inject>)> {
    let mut binds = Vec::new();
    let mut injects = Vec::new();
    for (kind, refs, defs) in [
        ("secrets", &svc.secrets, &p.secrets),
        ("configs", &svc.configs, &p.configs),
    ] {
        for r in refs {
            let def = defs.get(&r.source).ok_or_else(|| {
                ComposeError::Project(format!(
                    "service {service:?} refers to undefined {} {}: invalid compose project",
                    kind.trim_end_matches('s'),
                    r.source
                ))
            })?;
            let target = target(kind, r);
            match content(p, kind, &r.source, def)? {
                None => {
                    if r.uid.is_some() || r.gid.is_some() || r.mode.is_some() {
                        eprintln!(
                            "WARN[0000] services.{service}.{kind}.{}: uid, gid and mode are not supported for a file source, they will be ignored",
                            r.source
                        );
                    }
                    let file = def.file.as_deref().unwrap_or_default();
                    binds.push(format!("{file}:{target}:ro"));
                }
                // Compose skips an empty value.
                Some(content) if content.is_empty() => {}
                Some(content) => {
                    if svc.read_only == Some(true) {
                        return Err(ComposeError::Project(format!(
                            "cannot create {} {:?} in read-only service {service}: `file` is the sole supported option",
                            kind.trim_end_matches('s'),
                            r.source
                        )));
                    }
                    injects.push(Inject {
                        path: target,
                        content,
                        uid: number(r.uid.as_deref(), service, kind, "uid")?,
                        gid: number(r.gid.as_deref(), service, kind, "gid")?,
                        mode: r.mode.unwrap_or(0o444),
                        keep_owner: r.uid.is_some() || r.gid.is_some(),
                    })
                }
            }
        }
    }
    Ok((binds, injects))
}

fn target(kind: &str, r: &FileRef) -> String {
    let name = r.target.clone().unwrap_or_else(|| r.source.clone());
    if name.starts_with('/') {
        name
    } else if kind == "secrets" {
        format!("/run/secrets/{name}")
    } else {
        format!("/{name}")
    }
}

/// The bytes to copy in, or `None` for a `file` source (bind-mounted).
fn content(p: &Project, kind: &str, name: &str, def: &FileObject) -> Result<Option<Vec<u8>>> {
    if let Some(c) = &def.content {
        return Ok(Some(c.clone().into_bytes()));
    }
    if let Some(var) = &def.environment {
        let v = p.environment.get(var).ok_or_else(|| {
            ComposeError::Project(format!(
                "environment variable {var:?} required by {} {name:?} is not set",
                kind.trim_end_matches('s')
            ))
        })?;
        return Ok(Some(v.clone().into_bytes()));
    }
    Ok(None)
}

fn number(v: Option<&str>, service: &str, kind: &str, key: &str) -> Result<u64> {
    match v {
        None => Ok(0),
        Some(s) => s.trim().parse().map_err(|_| {
            ComposeError::Project(format!(
                "services.{service}.{kind}.{key}: {s:?} is not a number"
            ))
        }),
    }
}

/// A tar of `files` (with their parent directories) to put at `/`.
pub fn archive(files: &[Inject]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let io = |e| ComposeError::io("secret archive", e);
    let mut dirs: Vec<String> = Vec::new();
    for f in files {
        let rel = f.path.trim_start_matches('/');
        let mut acc = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for d in &parts[..parts.len().saturating_sub(1)] {
            acc.push_str(d);
            acc.push('/');
            if dirs.contains(&acc) {
                continue;
            }
            dirs.push(acc.clone());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(0);
            h.set_mtime(0);
            b.append_data(&mut h, &acc, std::io::empty()).map_err(io)?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(f.mode);
        h.set_uid(f.uid);
        h.set_gid(f.gid);
        h.set_size(f.content.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, rel, f.content.as_slice())
            .map_err(io)?;
    }
    b.into_inner().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{load, Options};

    fn project(yaml: &str, env: &[(&str, &str)]) -> Result<Project> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), yaml).unwrap();
        std::fs::write(dir.path().join("pw.txt"), "s3cret").unwrap();
        load(&Options {
            cwd: dir.path().to_path_buf(),
            os_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
    }

    #[test]
    fn file_sources_bind_and_others_are_copied() {
        let p = project(
            "services:\n  s:\n    image: x\n    secrets:\n      - pw\n      - source: tok\n        target: token\n        uid: '10'\n        mode: 0400\n    configs:\n      - conf\n      - source: conf\n        target: /etc/app.conf\nsecrets:\n  pw:\n    file: ./pw.txt\n  tok:\n    environment: TOKEN\nconfigs:\n  conf:\n    content: |\n      a=1\n",
            &[("TOKEN", "t0k")],
        )
        .unwrap();
        let (binds, inj) = plan(&p, "s", &p.services["s"]).unwrap();
        assert_eq!(binds.len(), 1);
        assert!(
            binds[0].ends_with("/pw.txt:/run/secrets/pw:ro"),
            "{binds:?}"
        );
        assert_eq!(
            inj,
            vec![
                Inject {
                    path: "/run/secrets/token".into(),
                    content: b"t0k".to_vec(),
                    uid: 10,
                    gid: 0,
                    mode: 0o400,
                    keep_owner: true
                },
                Inject {
                    path: "/conf".into(),
                    content: b"a=1\n".to_vec(),
                    uid: 0,
                    gid: 0,
                    mode: 0o444,
                    keep_owner: false
                },
                Inject {
                    path: "/etc/app.conf".into(),
                    content: b"a=1\n".to_vec(),
                    uid: 0,
                    gid: 0,
                    mode: 0o444,
                    keep_owner: false
                },
            ]
        );
        let names: Vec<String> = tar::Archive::new(archive(&inj).unwrap().as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            vec![
                "run/",
                "run/secrets/",
                "run/secrets/token",
                "conf",
                "etc/",
                "etc/app.conf"
            ]
        );
    }

    #[test]
    fn read_only_services_take_only_files() {
        let p = project(
            "services:\n  s:\n    image: x\n    read_only: true\n    configs: [c]\nconfigs:\n  c:\n    content: x\n",
            &[],
        )
        .unwrap();
        let e = plan(&p, "s", &p.services["s"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot create config \"c\" in read-only service s: `file` is the sole supported option"
        );
    }

    #[test]
    fn bad_definitions_are_refused() {
        let e = project("services:\n  s:\n    image: x\n    secrets: [nope]\n", &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "service \"s\" refers to undefined secret nope: invalid compose project"
        );
        let e = project(
            "services:\n  s:\n    image: x\nsecrets:\n  a:\n    file: ./pw.txt\n    content: x\n",
            &[],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "secrets.a: must have exactly one of file, environment or content"
        );
        let e = project(
            "services:\n  s:\n    image: x\nsecrets:\n  a:\n    environment: UNSET_VAR\n",
            &[],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "secrets.a.environment: environment variable \"UNSET_VAR\" required by secret \"a\" is not set"
        );
        let e = project(
            "services:\n  s:\n    image: x\nsecrets:\n  a:\n    external: true\n",
            &[],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("secrets.a.external: not supported"),
            "{e}"
        );
    }
}
