//! What can go wrong loading CNI configs and running plugins. Each error says
//! which file, or which plugin of which network, so an operator can find it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A config file that is not a valid network configuration.
    #[error("CNI config {}: {msg}", path.display())]
    Config { path: PathBuf, msg: String },

    /// A config built in memory (not from a file) that is invalid.
    #[error("invalid CNI config: {0}")]
    Invalid(String),

    #[error("no CNI network named {0:?}")]
    NoNetwork(String),

    /// The conf dir holds no network (containerd: "cni plugin not initialized").
    #[error("no network config found in {}", dir.display())]
    NoConfig { dir: PathBuf },

    #[error("network {network}: plugin {plugin:?} not found in {dirs}")]
    PluginNotFound {
        network: String,
        plugin: String,
        dirs: String,
    },

    /// The plugin's own error answer (`{"code", "msg", "details"}`), or its
    /// stderr when it exited non-zero without one.
    #[error(
        "network {network}: plugin {plugin} {command} failed (code {code}): {msg}{}",
        details_suffix(details)
    )]
    Plugin {
        network: String,
        plugin: String,
        command: &'static str,
        code: u32,
        msg: String,
        details: String,
    },

    #[error("network {network}: plugin {plugin} {command} did not finish within {secs} s and was killed")]
    Timeout {
        network: String,
        plugin: String,
        command: &'static str,
        secs: u64,
    },

    #[error("network {network}: plugin {plugin} {command}: {msg}")]
    BadOutput {
        network: String,
        plugin: String,
        command: &'static str,
        msg: String,
    },

    #[error("network {network}: {msg}")]
    Network { network: String, msg: String },
}

fn details_suffix(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!("; {d}")
    }
}

impl CniError {
    /// The CNI error code of a plugin failure (spec: 1–99 well-known, 100+
    /// plugin-specific), if this is one.
    pub fn plugin_code(&self) -> Option<u32> {
        match self {
            CniError::Plugin { code, .. } => Some(*code),
            _ => None,
        }
    }
}

pub type Result<T, E = CniError> = std::result::Result<T, E>;

pub(crate) fn io_err(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> CniError {
    let path = path.into();
    move |source| CniError::Io { what, path, source }
}
