//! Restart policies decided as moby's restartmanager decides them: which exit
//! restarts, and after how long (100 ms, doubling per restart up to a minute,
//! back to 100 ms once a run lasted 10 s).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use pier_api::models::RestartPolicyNameEnum as P;

use crate::records::ContainerRecord;

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the delay, whatever its exit.
const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// The delay before each container's next restart, kept in memory as
/// dockerd's restart manager keeps it (a daemon restart begins again at 100 ms).
#[derive(Default)]
pub(crate) struct Backoff {
    delays: Mutex<HashMap<String, Duration>>,
}

impl Backoff {
    /// The delay before restarting `id` after a run of `ran`.
    pub(crate) fn next(&self, id: &str, ran: Duration) -> Duration {
        let mut m = self.delays.lock().unwrap_or_else(|e| e.into_inner());
        let prev = m.get(id).copied().filter(|_| ran < HEALTHY_RUN);
        let d = next_delay(prev);
        m.insert(id.to_string(), d);
        d
    }

    /// A start by hand (or the container's removal) begins again at 100 ms.
    pub(crate) fn reset(&self, id: &str) {
        self.delays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

fn next_delay(prev: Option<Duration>) -> Duration {
    match prev {
        None => FIRST_DELAY,
        Some(d) => (d * 2).min(MAX_DELAY),
    }
}

/// Whether the exit just recorded in `rec` restarts it, while the daemon runs.
/// A stop by hand cancels every policy until the next start.
pub(crate) fn restarts_after_exit(rec: &ContainerRecord) -> bool {
    !rec.state.stopped_by_user && policy_restarts(rec, false)
}

/// Whether a daemon starting finds `rec` (not running) to start again: as
/// dockerd, `always` even when it was stopped by hand, `unless-stopped` only
/// when it was not.
pub(crate) fn restarts_on_boot(rec: &ContainerRecord) -> bool {
    use crate::ContainerStatus as S;
    matches!(rec.state.status, S::Exited | S::Restarting)
        && policy_restarts(rec, rec.state.stopped_by_user)
}

fn policy_restarts(rec: &ContainerRecord, stopped_by_hand: bool) -> bool {
    let Some(p) = &rec.host_config.restart_policy else {
        return false;
    };
    match p.name {
        Some(P::ALWAYS) => true,
        Some(P::UNLESS_STOPPED) => !stopped_by_hand,
        Some(P::ON_FAILURE) => {
            let max = p.maximum_retry_count.unwrap_or(0);
            rec.state.exit_code != 0 && (max == 0 || rec.restart_count < max)
        }
        _ => false,
    }
}

/// How long the run that just ended lasted (zero when unknown).
pub(crate) fn run_length(rec: &ContainerRecord) -> Duration {
    let t = |s: &str| crate::util::parse_rfc3339(s);
    match (t(&rec.state.started_at), t(&rec.state.finished_at)) {
        (Some(a), Some(b)) if b > a => (b - a).try_into().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_100ms_to_a_minute() {
        let b = Backoff::default();
        let short = Duration::from_millis(5);
        let got: Vec<u64> = (0..4)
            .map(|_| b.next("c", short).as_millis() as u64)
            .collect();
        assert_eq!(got, [100, 200, 400, 800]);
        for _ in 0..20 {
            b.next("c", short);
        }
        assert_eq!(b.next("c", short), MAX_DELAY);
        // A run of 10 s starts again at 100 ms; so does a start by hand.
        assert_eq!(b.next("c", HEALTHY_RUN), FIRST_DELAY);
        b.next("c", short);
        b.reset("c");
        assert_eq!(b.next("c", short), FIRST_DELAY);
        assert_eq!(b.next("other", short), FIRST_DELAY);
    }
}
