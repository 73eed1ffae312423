//! The streaming idle timeout (containerd's `stream_idle_timeout`, 4 hours
//! by default): a connection with no frame either way for that long is
//! closed, so a client that vanished without a FIN frees its session.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) const DEFAULT: Duration = Duration::from_secs(4 * 60 * 60);

pub(crate) struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub fn new() -> Self {
        Activity {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    pub fn touch(&self) {
        let now = self.base.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    pub fn idle_for(&self) -> Duration {
        let now = self.base.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// How often to look: often enough to close within a quarter past the limit.
pub(crate) fn check_every(limit: Duration) -> Duration {
    (limit / 4).max(Duration::from_millis(10))
}
