//! Health checks (`HEALTHCHECK`, `--health-cmd`): while a container runs, its
//! test command runs as an exec every interval; the results make
//! `State.Health` (`starting`, `healthy`, `unhealthy`, the failing streak and
//! the last five probes) and the `(healthy)` suffix of `ps`, as Docker has them.
//! Failures inside the start period do not count. The state lives in memory:
//! a restarted daemon starts over from `starting` when the container starts.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use pier_api::models::ExecConfig;
use tokio::io::AsyncReadExt;

use crate::exec::ExecStart;
use crate::records::ContainerRecord;
use crate::util::now_rfc3339;
use crate::views::{HealthProbe, HealthReport};
use crate::Engine;

/// Docker keeps this many probe results and this much of each one's output.
const MAX_LOG: usize = 5;
const MAX_OUTPUT: usize = 4096;
const DEFAULT_PERIOD: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
/// Docker's probe period during the start period while still `starting`
/// (`HealthConfig.StartInterval`, API 1.44).
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub(crate) struct Health {
    status: &'static str,
    failing_streak: i64,
    log: VecDeque<HealthProbe>,
    /// The run this state belongs to (`State.StartedAt`).
    started_at: String,
}

/// The probe's command line, or None when the container has no check
/// (none set, or `NONE`).
fn probe_argv(rec: &ContainerRecord) -> Option<Vec<String>> {
    let test = rec.config.healthcheck.as_ref()?.test.clone()?;
    let (kind, rest) = test.split_first()?;
    match kind.as_str() {
        "CMD" if !rest.is_empty() => Some(rest.to_vec()),
        "CMD-SHELL" => {
            let mut argv = rec
                .config
                .shell
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            argv.push(rest.join(" "));
            Some(argv)
        }
        _ => None,
    }
}

fn period(ns: Option<i64>, default: Duration) -> Duration {
    ns.filter(|n| *n > 0)
        .map(|n| Duration::from_nanos(n as u64))
        .unwrap_or(default)
}

/// The payload of a multiplexed stream, stdout and stderr in order.
fn unframe(b: &[u8]) -> Vec<u8> {
    pier_runtime::client::demux(b)
        .into_iter()
        .flat_map(|(_, payload)| payload)
        .collect()
}

impl Engine {
    /// After a start: begins probing if the container has a check.
    pub(crate) fn watch_health(self: &Arc<Self>, rec: &ContainerRecord) {
        let Some(argv) = probe_argv(rec) else {
            return;
        };
        {
            let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
            // Forget containers that are gone.
            h.retain(|id, _| matches!(self.meta.container::<ContainerRecord>(id), Ok(Some(_))));
            h.insert(
                rec.id.clone(),
                Health {
                    status: "starting",
                    failing_streak: 0,
                    log: VecDeque::new(),
                    started_at: rec.state.started_at.clone(),
                },
            );
        }
        let cfg = rec.config.healthcheck.clone().unwrap_or_default();
        let interval = period(cfg.interval, DEFAULT_PERIOD);
        let timeout = period(cfg.timeout, DEFAULT_PERIOD);
        let start_period = period(cfg.start_period, Duration::ZERO);
        let start_interval = period(cfg.start_interval, DEFAULT_START_INTERVAL);
        let retries = cfg.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES);
        let (id, run) = (rec.id.clone(), rec.state.started_at.clone());
        let this = self.clone();
        tokio::spawn(async move {
            let began = tokio::time::Instant::now();
            loop {
                let starting =
                    began.elapsed() < start_period && this.health_status(&id) == Some("starting");
                tokio::time::sleep(if starting { start_interval } else { interval }).await;
                let rec = match this.meta.container::<ContainerRecord>(&id) {
                    Ok(Some(r)) if r.state.running() && r.state.started_at == run => r,
                    _ => return,
                };
                if rec.state.paused {
                    continue;
                }
                let start = now_rfc3339();
                let (code, output) = this.probe(&id, &argv, timeout).await;
                // A probe cut short by the container's exit says nothing.
                match this.meta.container::<ContainerRecord>(&id) {
                    Ok(Some(r)) if r.state.running() && r.state.started_at == run => {}
                    _ => return,
                }
                let in_start_period = began.elapsed() < start_period;
                this.record_probe(&rec, start, code, output, retries, in_start_period);
            }
        });
    }

    fn health_status(&self, id: &str) -> Option<&'static str> {
        let h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        h.get(id).map(|h| h.status)
    }

    /// Runs the test once as an exec: exit code (-1 on timeout) and output.
    async fn probe(
        self: &Arc<Self>,
        id: &str,
        argv: &[String],
        timeout: Duration,
    ) -> (i64, String) {
        let cfg = ExecConfig {
            cmd: Some(argv.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec_id = match self.create_exec(id, cfg) {
            Ok(x) => x,
            Err(e) => return (-1, e.to_string()),
        };
        let run = async {
            let stream = self
                .start_exec(&exec_id, ExecStart { detach: false })
                .await?;
            let mut buf = Vec::new();
            if let Some(mut s) = stream {
                let _ = s.read_to_end(&mut buf).await;
            }
            self.execs.finished(&exec_id, Duration::from_secs(5)).await;
            let code = self.execs.inspect(&exec_id)?.exit_code.unwrap_or(-1);
            Ok::<_, crate::EngineError>((code, unframe(&buf)))
        };
        let r = tokio::time::timeout(timeout, run).await;
        self.execs.forget(&exec_id);
        match r {
            Ok(Ok((code, mut out))) => {
                out.truncate(MAX_OUTPUT);
                (code, String::from_utf8_lossy(&out).into_owned())
            }
            Ok(Err(e)) => (-1, e.to_string()),
            Err(_) => (
                -1,
                format!("Health check exceeded timeout ({}s)", timeout.as_secs_f64()),
            ),
        }
    }

    fn record_probe(
        &self,
        rec: &ContainerRecord,
        start: String,
        code: i64,
        output: String,
        retries: i64,
        in_start_period: bool,
    ) {
        let changed = {
            let mut all = self.health.lock().unwrap_or_else(|e| e.into_inner());
            let Some(h) = all.get_mut(&rec.id) else {
                return;
            };
            let before = h.status;
            if code == 0 {
                h.status = "healthy";
                h.failing_streak = 0;
            } else if !(in_start_period && h.status == "starting") {
                h.failing_streak += 1;
                if h.failing_streak >= retries {
                    h.status = "unhealthy";
                }
            }
            h.log.push_back(HealthProbe {
                start,
                end: now_rfc3339(),
                exit_code: code,
                output,
            });
            while h.log.len() > MAX_LOG {
                h.log.pop_front();
            }
            (before != h.status).then_some(h.status)
        };
        if let Some(s) = changed {
            self.container_event(&format!("health_status: {s}"), rec, &[]);
        }
    }

    /// `State.Health` of the container's current or last run, if it has a check.
    pub(crate) fn health_report(&self, rec: &ContainerRecord) -> Option<HealthReport> {
        probe_argv(rec)?;
        let all = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let h = all
            .get(&rec.id)
            .filter(|h| h.started_at == rec.state.started_at)?;
        Some(HealthReport {
            status: h.status,
            failing_streak: h.failing_streak,
            log: h.log.iter().cloned().collect(),
        })
    }

    /// The `ps` status suffix: ` (healthy)`, ` (health: starting)`, ` (unhealthy)`.
    pub(crate) fn health_suffix(&self, rec: &ContainerRecord) -> String {
        if !rec.state.running() {
            return String::new();
        }
        match self.health_report(rec).map(|h| h.status) {
            Some("starting") => " (health: starting)".into(),
            Some(s) => format!(" ({s})"),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_unwrapped() {
        let mut b = crate::logs::frame(1, b"out\n").to_vec();
        b.extend_from_slice(&crate::logs::frame(2, b"err\n"));
        assert_eq!(unframe(&b), b"out\nerr\n");
    }
}
