//! The gate's fresh prechecks (`/gate/{cluster}?fresh=1`): shared among concurrent callers, at
//! most one per cluster per `gate.min_fresh_interval`, never inside a 429's back-off, and all of
//! them within one token bucket (`gate.fresh_budget`), so nobody who reaches the port can spend
//! the API quota beyond it. A fresh precheck runs through the runner like any other (the
//! cluster's single flight and budget), and is recorded like any other.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::runner::{Prechecker, Runner};
use crate::config::FreshBudget;

/// Where a `?fresh=1` answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FreshSource {
    /// A precheck that finished after the request arrived (this request's, or one it shared).
    Fresh,
    /// Inside `min_fresh_interval` of the last fresh precheck, within a 429's back-off, or over
    /// the fresh budget: the latest result, not a new one.
    Recent {
        /// How long until a fresh precheck would be made again.
        retry_in: Duration,
    },
}

/// The gate's view of the runner: fresh prechecks by cluster name, without the generic.
pub(crate) trait FreshPrecheck: Send + Sync + std::fmt::Debug {
    /// Runs (or joins, or declines within `min_interval` or over `budget`) a fresh precheck;
    /// `None` for an unknown cluster. Recorded in the state like any precheck.
    fn fresh(self: Arc<Self>, name: &str, policy: FreshPolicy) -> FreshFuture;
}

/// What limits the gate's fresh prechecks (from `gate:`; a reload may change it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FreshPolicy {
    /// At most one fresh precheck per cluster in this window.
    pub min_interval: Duration,
    /// All fresh prechecks together, across clusters.
    pub budget: FreshBudget,
}

/// What [`FreshPrecheck::fresh`] returns.
pub(crate) type FreshFuture = Pin<Box<dyn Future<Output = Option<FreshSource>> + Send>>;

/// A token bucket on the tokio clock: `burst` tokens, refilled at `per_second`.
#[derive(Debug, Default)]
pub(super) struct TokenBucket {
    /// Tokens left at `at`.
    tokens: f64,
    /// When `tokens` was last brought up to date; `None`: never used (full).
    at: Option<Instant>,
}

impl TokenBucket {
    /// Takes one token, or says how long until one is there.
    fn take(&mut self, budget: FreshBudget, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(budget.burst);
        let refill = |at| now.saturating_duration_since(at).as_secs_f64() * budget.per_second;
        self.tokens = (self.tokens + self.at.replace(now).map_or(burst, refill)).min(burst);
        if self.tokens < 1.0 {
            return Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / budget.per_second,
            ));
        }
        self.tokens -= 1.0;
        Ok(())
    }
}

impl<P: Prechecker> FreshPrecheck for Runner<P> {
    fn fresh(self: Arc<Self>, name: &str, policy: FreshPolicy) -> FreshFuture {
        let name = name.to_string();
        Box::pin(async move {
            let flight = self.flight(&name)?;
            let arrived = Instant::now();
            let mut times = flight.guard.clone().lock_owned().await;
            if times.last_finished.is_some_and(|t| t >= arrived) {
                // A precheck finished while we waited for the lock: share it.
                return Some(FreshSource::Fresh);
            }
            if let Some(until) = times.rate_limited_until.filter(|until| *until > arrived) {
                // NCP said 429: a fresh precheck would spend quota it asked us not to.
                return Some(FreshSource::Recent {
                    retry_in: until - arrived,
                });
            }
            if let Some(started) = times.last_fresh_started {
                let since = arrived.saturating_duration_since(started);
                if since < policy.min_interval {
                    return Some(FreshSource::Recent {
                        retry_in: policy.min_interval - since,
                    });
                }
            }
            let token = crate::lock::lock(&self.fresh_tokens).take(policy.budget, Instant::now());
            if let Err(retry_in) = token {
                return Some(FreshSource::Recent { retry_in });
            }
            times.last_fresh_started = Some(arrived);
            // In its own task, so a caller that hangs up does not cancel the call others are waiting on.
            let call = tokio::spawn(async move {
                if let Some(admission) = flight.lanes.admit(times.lane).await {
                    self.precheck_locked(&flight, &mut times, admission, None)
                        .await;
                }
            });
            match call.await {
                Ok(()) => Some(FreshSource::Fresh),
                Err(e) => {
                    tracing::error!(cluster = %name, error = %e, "fresh precheck task failed");
                    None
                }
            }
        })
    }
}
