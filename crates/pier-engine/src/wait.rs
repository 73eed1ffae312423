//! Waiting for containers: `POST /containers/{id}/wait` and the exit events
//! behind it, remembered for a while for waiters that come late.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::records::ContainerRecord;
use crate::{Engine, EngineError, Result};

/// Broadcast to waiters when a container exits or is removed.
#[derive(Debug, Clone)]
pub(crate) struct ExitEvent {
    pub id: String,
    pub exit_code: i64,
    pub removed: bool,
}

/// Docker's wait conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: Option<&str>) -> Result<WaitCondition> {
        match s.unwrap_or("") {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(EngineError::invalid_argument(format!(
                "invalid condition: \"{other}\""
            ))),
        }
    }
}

impl Engine {
    /// `POST /containers/{id}/wait`: subscribes at once (so a wait sent
    /// before start sees the exit) and returns the future of the exit code.
    pub fn wait_container(
        self: &Arc<Self>,
        key: &str,
        cond: WaitCondition,
    ) -> Result<std::pin::Pin<Box<dyn std::future::Future<Output = Result<i64>> + Send + 'static>>>
    {
        let mut rx = self.exits.subscribe();
        let rec = match self.find_container(key) {
            Ok(r) => r,
            Err(e) => {
                // Docker's CLI sends its wait alongside the start: a fast
                // `--rm` container may be gone before the wait arrives.
                if let Some(ev) = self.recent_exit(key, Duration::from_secs(10))
                    && ev.removed
                {
                    let code = ev.exit_code;
                    return Ok(Box::pin(async move { Ok(code) }));
                }
                return Err(e);
            }
        };
        let id = rec.id.clone();
        let recent = self
            .recent_exit(&rec.id, Duration::from_secs(2))
            .filter(|_| cond == WaitCondition::NextExit && !rec.state.running());
        let immediate =
            (cond == WaitCondition::NotRunning && !rec.state.running()) || recent.is_some();
        let code = rec.state.exit_code;
        Ok(Box::pin(async move {
            if immediate {
                return Ok(code);
            }
            loop {
                match rx.recv().await {
                    Ok(e) if e.id == id => {
                        if cond != WaitCondition::Removed || e.removed {
                            return Ok(e.exit_code);
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(EngineError::internal("engine shutting down"))
                    }
                }
            }
        }))
    }

    /// The last exit or removal of a container (by ID or name) within `within`.
    fn recent_exit(&self, key: &str, within: Duration) -> Option<ExitEvent> {
        let recent = self.recent_exits.lock().unwrap_or_else(|e| e.into_inner());
        recent
            .iter()
            .rev()
            .find(|(_, name, ev)| {
                ev.id == key
                    || (key.len() >= 12 && ev.id.starts_with(key))
                    || name == key.trim_start_matches('/')
            })
            .filter(|(t, _, _)| t.elapsed() < within)
            .map(|(_, _, ev)| ev.clone())
    }

    /// Broadcasts an exit/removal and remembers it for late waiters.
    pub(crate) fn publish_exit(&self, rec: &ContainerRecord, exit_code: i64, removed: bool) {
        let ev = ExitEvent {
            id: rec.id.clone(),
            exit_code,
            removed,
        };
        {
            let mut recent = self.recent_exits.lock().unwrap_or_else(|e| e.into_inner());
            recent.retain(|(t, _, _)| t.elapsed() < Duration::from_secs(10));
            recent.push_back((std::time::Instant::now(), rec.name.clone(), ev.clone()));
        }
        let _ = self.exits.send(ev);
    }
}

/// Returns at the next exit or removal of `id` (or when the engine shuts down).
pub(crate) async fn wait_exit(rx: &mut broadcast::Receiver<ExitEvent>, id: &str) {
    loop {
        match rx.recv().await {
            Ok(e) if e.id == id => return,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
