//! Slot math: when a cluster's prechecks fall due. Pure functions of names, the interval and
//! the clock.
//!
//! A cluster's slot is a fixed phase within the interval, derived from a hash of its name, so
//! 1,000 clusters never fire at once. Slots are anchored to the wall clock (Unix time modulo the
//! interval), so a restarted exporter keeps each cluster's rhythm, and two replicas with the
//! same config precheck a cluster at the same moment.
//!
//! [`phase`], [`next_slot`] and [`wall_anchor`] are public because that rhythm is a promise the
//! README makes ("Schedule"): the integration tests use them to keep clear of a scheduled
//! precheck, and a copy of the hash there could drift from this one unnoticed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Longest back-off after repeated 429s without `Retry-After`.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Phases are whole multiples of this (or of a twentieth of the interval, if that is shorter), so
/// clusters whose slots fall close together are prechecked in one burst, on one timer wake-up.
/// What a precheck costs in CPU is dominated by waking the process from idle (threads, caches),
/// so bursts matter: a coarser quantum puts more prechecks on one wake-up (the measured effect
/// is in BENCHMARKS.md, "slot quantum"). The bursts stay bounded by `concurrency`, and with at
/// least 20 slots per interval (120 at 60 s) start times stay even at the 1 s resolution a
/// dashboard shows.
pub(crate) const SLOT_QUANTUM: Duration = Duration::from_millis(500);

/// A cluster's fixed phase within the interval: FNV-1a of its name, finished with MurmurHash3's
/// 64-bit mixer (FNV alone leaves the high bits of similar names clustered), scaled to the interval
/// and rounded down to the slot quantum (see [`SLOT_QUANTUM`]).
/// Deterministic across runs and versions (unlike `std`'s hasher, which may change).
pub fn phase(name: &str, interval: Duration) -> Duration {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    let nanos = (u128::from(h) * interval.as_nanos()) >> 64;
    let quantum = SLOT_QUANTUM.min(interval / 20).as_nanos().max(1);
    Duration::from_nanos((nanos / quantum * quantum) as u64)
}

/// The first slot `anchor + phase + k·interval` (k ≥ 0) strictly after `now`.
pub fn next_slot(anchor: Instant, phase: Duration, interval: Duration, now: Instant) -> Instant {
    let first = anchor + phase;
    if now < first {
        return first;
    }
    let behind = (now - first).as_nanos();
    let k = behind / interval.as_nanos() + 1;
    first + Duration::from_nanos((k * interval.as_nanos()) as u64)
}

/// The back-off after the `streak`-th 429 in a row: `Retry-After` when given, else
/// `interval · 2^streak`, capped at [`MAX_BACKOFF`].
pub(crate) fn backoff(retry_after: Option<Duration>, interval: Duration, streak: u32) -> Duration {
    retry_after
        .unwrap_or_else(|| interval.saturating_mul(2u32.saturating_pow(streak.min(16))))
        .min(MAX_BACKOFF)
}

/// The instant slots are counted from: the last time before `now` at which Unix time was a
/// whole multiple of `interval` (`wall` is the wall clock at `now`). Anchored this way, a
/// cluster's slots fall at the same wall-clock times whenever the exporter was started.
pub fn wall_anchor(now: Instant, wall: SystemTime, interval: Duration) -> Instant {
    let since_epoch = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let into = Duration::from_nanos((since_epoch.as_nanos() % interval.as_nanos().max(1)) as u64);
    now.checked_sub(into).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `phase` of the names in `phases_are_pinned`, at 60 s, in ms (computed once, by this code and by an independent Python copy of the hash).
    const PINNED_PHASES_MS: [u128; 4] = [56000, 53500, 10500, 56000];

    #[test]
    fn phase_is_deterministic_and_inside_the_interval() {
        let i = Duration::from_secs(60);
        assert_eq!(phase("orders", i), phase("orders", i));
        assert_ne!(phase("orders", i), phase("payments", i));
        for n in 0..1000 {
            assert!(phase(&format!("c{n}"), i) < i);
        }
    }

    #[test]
    fn phases_fall_on_the_slot_quantum() {
        let i = Duration::from_secs(60);
        let mut distinct = std::collections::BTreeSet::new();
        for n in 0..1000 {
            let p = phase(&format!("cluster-{n}"), i);
            assert_eq!(p.as_nanos() % SLOT_QUANTUM.as_nanos(), 0, "{p:?}");
            distinct.insert(p);
        }
        // 60 s / 500 ms = 120 slots, nearly all of them used by 1,000 names.
        assert!(distinct.len() > 110, "{} distinct slots", distinct.len());
        // Short intervals get a finer quantum: a twentieth of the interval.
        let short = Duration::from_secs(2);
        let p = phase("orders", short);
        assert_eq!(p.as_nanos() % (short / 20).as_nanos(), 0);
        assert!(p < short);
    }

    #[test]
    fn phases_spread_evenly() {
        // 1,000 names over 10 buckets of a 60 s interval: each bucket should hold about 100.
        let i = Duration::from_secs(60);
        let mut buckets = [0usize; 10];
        for n in 0..1000 {
            buckets[(phase(&format!("cluster-{n}"), i).as_secs() / 6) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&b| (60..=140).contains(&b)),
            "{buckets:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn next_slot_math() {
        let a = Instant::now();
        let i = Duration::from_secs(60);
        let p = Duration::from_secs(15);
        assert_eq!(next_slot(a, p, i, a), a + p);
        assert_eq!(next_slot(a, p, i, a + p), a + p + i);
        assert_eq!(
            next_slot(a, p, i, a + Duration::from_secs(200)),
            a + Duration::from_secs(255)
        );
    }

    #[test]
    fn backoff_honours_retry_after_and_caps() {
        let i = Duration::from_secs(60);
        assert_eq!(
            backoff(Some(Duration::from_secs(5)), i, 1),
            Duration::from_secs(5)
        );
        assert_eq!(backoff(None, i, 1), Duration::from_secs(120));
        assert_eq!(backoff(None, i, 3), Duration::from_secs(480));
        assert_eq!(backoff(None, i, 100), MAX_BACKOFF);
        assert_eq!(
            backoff(Some(Duration::from_secs(999_999)), i, 1),
            MAX_BACKOFF
        );
    }

    #[test]
    fn phases_are_pinned() {
        // Fixed values: a change of the hash moves every cluster's slot after an upgrade.
        let i = Duration::from_secs(60);
        let got: Vec<u128> = ["orders-kafka", "payments-kafka", "c0", ""]
            .iter()
            .map(|n| phase(n, i).as_millis())
            .collect();
        assert_eq!(got, PINNED_PHASES_MS);
    }

    #[tokio::test(start_paused = true)]
    async fn slots_follow_the_wall_clock() {
        let now = Instant::now();
        let i = Duration::from_secs(60);
        let wall = UNIX_EPOCH + Duration::from_secs(60 * 1_000_000 + 25);
        assert_eq!(wall_anchor(now, wall, i), now - Duration::from_secs(25));
        // Two starts 7 s apart put the same cluster's slot at the same wall time.
        let later = now + Duration::from_secs(7);
        let wall_later = wall + Duration::from_secs(7);
        let p = Duration::from_secs(40);
        assert_eq!(
            next_slot(wall_anchor(now, wall, i), p, i, now),
            next_slot(wall_anchor(later, wall_later, i), p, i, later)
        );
    }
}
