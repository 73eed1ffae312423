//! Builds against a fake backend over temp directories.

mod copy;
mod fake;
mod parallel;
mod stages;

use std::path::Path;

use pier_api::models::ContainerConfig;
use serde_json::Value;

use crate::backend::ImageConfig;
use crate::build::{build, BuildOptions, BuildResult};
use crate::error::BuildError;
use crate::progress::Event;
use fake::Fake;

pub(crate) fn base_config() -> ImageConfig {
    ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        config: Some(ContainerConfig {
            env: Some(vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()]),
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A fake with a `base` image holding a passwd/group file.
pub(crate) fn fake() -> Fake {
    let f = Fake::new();
    f.add_image(
        "base",
        &[
            (
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
            ),
            ("etc/group", "root:x:0:\napp:x:1000:\nstaff:x:50:\n"),
        ],
        base_config(),
    );
    f
}

pub(crate) fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (p, c) in files {
        let f = d.path().join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, c).unwrap();
    }
    d
}

pub(crate) struct Out {
    pub result: Result<BuildResult, BuildError>,
    pub events: Vec<Event>,
}

impl Out {
    pub fn text(&self) -> String {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Stream(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }
    pub fn id(&self) -> String {
        match &self.result {
            Ok(r) => r.image_id.clone(),
            Err(e) => panic!("build failed: {e}\n{}", self.text()),
        }
    }
    pub fn err(&self) -> String {
        match &self.result {
            Ok(_) => panic!("build succeeded:\n{}", self.text()),
            Err(e) => e.to_string(),
        }
    }
}

pub(crate) fn run_build(
    fake: &Fake,
    ctx: &Path,
    dockerfile: &str,
    tweak: impl FnOnce(&mut BuildOptions),
) -> Out {
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let mut opts = BuildOptions {
        context: ctx.to_path_buf(),
        ..Default::default()
    };
    tweak(&mut opts);
    let mut events = Vec::new();
    let result = build(fake, &opts, &mut events);
    Out { result, events }
}

/// Builds in a fresh context and returns the image config JSON.
pub(crate) fn config_for(dockerfile: &str) -> Value {
    let f = fake();
    let c = context(&[]);
    let out = run_build(&f, c.path(), dockerfile, |_| {});
    let id = out.id();
    f.config_of(&id)
}

pub(crate) fn history(cfg: &Value) -> Vec<(String, bool)> {
    cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["created_by"].as_str().unwrap_or("").to_string(),
                h["empty_layer"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}
