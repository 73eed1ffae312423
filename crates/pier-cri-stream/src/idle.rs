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

    /// Whether the session has been quiet for over `limit` (0: never).
    pub fn expired(&self, limit: Duration) -> bool {
        !limit.is_zero() && self.idle_for() > limit
    }

    fn idle_for(&self) -> Duration {
        let now = self.base.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// How often to look: often enough to close within a quarter past the
/// limit; rarely when there is none.
pub(crate) fn check_every(limit: Duration) -> Duration {
    if limit.is_zero() {
        return Duration::from_secs(3600);
    }
    (limit / 4).max(Duration::from_millis(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_no_limit() {
        let a = Activity::new();
        std::thread::sleep(Duration::from_millis(20));
        assert!(a.expired(Duration::from_millis(5)));
        assert!(!a.expired(Duration::ZERO));
        a.touch();
        assert!(!a.expired(Duration::from_secs(60)));
        assert_eq!(check_every(Duration::ZERO), Duration::from_secs(3600));
    }
}
