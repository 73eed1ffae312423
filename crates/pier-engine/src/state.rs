//! A container's run state, as Docker names it in `State.Status`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A container's status. Stored and shown as Docker's lowercase word
/// (`running`, `exited`, ...); parsed back at the edges (database, filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ContainerStatus {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl ContainerStatus {
    pub const ALL: [ContainerStatus; 7] = [
        Self::Created,
        Self::Running,
        Self::Paused,
        Self::Restarting,
        Self::Removing,
        Self::Exited,
        Self::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }

    /// Whether a process of the container may be alive: Docker counts paused
    /// and restarting containers as running.
    pub fn is_running(self) -> bool {
        matches!(self, Self::Running | Self::Paused | Self::Restarting)
    }
}

impl fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not one of Docker's container states.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid container status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for ContainerStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

impl From<ContainerStatus> for String {
    fn from(s: ContainerStatus) -> String {
        s.as_str().to_string()
    }
}

impl TryFrom<String> for ContainerStatus {
    type Error = UnknownStatus;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_word() {
        for st in ContainerStatus::ALL {
            assert_eq!(st.to_string().parse::<ContainerStatus>(), Ok(st));
        }
        assert_eq!(
            "Running".parse::<ContainerStatus>(),
            Err(UnknownStatus("Running".into()))
        );
    }

    #[test]
    fn the_database_keeps_the_word() {
        // Records written before the enum stored the bare string.
        let st: ContainerStatus = serde_json::from_str("\"restarting\"").unwrap();
        assert_eq!(st, ContainerStatus::Restarting);
        assert_eq!(
            serde_json::to_string(&ContainerStatus::Exited).unwrap(),
            "\"exited\""
        );
        assert!(serde_json::from_str::<ContainerStatus>("\"gone\"").is_err());
    }

    #[test]
    fn paused_and_restarting_count_as_running() {
        let running: Vec<_> = ContainerStatus::ALL
            .into_iter()
            .filter(|s| s.is_running())
            .collect();
        use ContainerStatus::*;
        assert_eq!(running, [Running, Paused, Restarting]);
    }
}
