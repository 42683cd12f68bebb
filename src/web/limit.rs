//! `rate_limit`: one token bucket for the whole port, as exporter-toolkit has (one
//! `rate.Limiter` per server, not per client): it holds `burst` tokens, gains one every
//! `interval`, and each request takes one; a request that finds none is refused (429). It
//! decides only; `server` exempts `/-/healthy` and sends the 429.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::lock::lock;

/// A token bucket, full when made.
#[derive(Debug)]
pub(crate) struct RateLimit {
    /// One token is added every `every`.
    every: Duration,
    /// The most tokens the bucket holds: how many requests may come at once.
    burst: u32,
    /// Tokens left, as of the instant.
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub(crate) fn new(every: Duration, burst: u32) -> Self {
        Self {
            every,
            burst,
            bucket: Mutex::new((f64::from(burst), Instant::now())),
        }
    }

    /// Takes a token if there is one.
    pub(crate) fn allow(&self) -> bool {
        let now = Instant::now();
        let mut bucket = lock(&self.bucket);
        let (tokens, since) = *bucket;
        let earned = now.saturating_duration_since(since).as_secs_f64() / self.every.as_secs_f64();
        let tokens = (tokens + earned).min(f64::from(self.burst));
        let allowed = tokens >= 1.0;
        *bucket = (if allowed { tokens - 1.0 } else { tokens }, now);
        allowed
    }

    /// True when `other` has the same settings, so a reload can keep this bucket (and a
    /// re-read of an unchanged limit does not hand out a fresh burst).
    pub(crate) fn same_settings(&self, other: &RateLimit) -> bool {
        (self.every, self.burst) == (other.every, other.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_one_per_interval() {
        let limit = RateLimit::new(Duration::from_secs(1), 3);
        assert_eq!((0..5).filter(|_| limit.allow()).count(), 3, "the burst");
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(!limit.allow(), "not yet a whole token");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(limit.allow());
        assert!(!limit.allow());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            (0..5).filter(|_| limit.allow()).count(),
            3,
            "refilled up to the burst"
        );
        assert!(limit.same_settings(&RateLimit::new(Duration::from_secs(1), 3)));
        assert!(!limit.same_settings(&RateLimit::new(Duration::from_secs(1), 4)));
    }
}
