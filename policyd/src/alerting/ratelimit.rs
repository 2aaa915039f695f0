//! A token bucket per workload: `rate` records per second on average, bursts up to `burst`.
//! Refused records are counted per workload, so `rampartctl status` can show who was throttled.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    suppressed: u64,
}

#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `rate` per second (> 0), `burst` >= 1.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate: rate.max(f64::MIN_POSITIVE),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Takes a token for `key`; false means the record is over budget (and is counted).
    pub fn allow(&mut self, key: &K, now: Instant) -> bool {
        let burst = self.burst;
        let b = self.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            last: now,
            suppressed: 0,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            b.suppressed += 1;
            false
        }
    }

    pub fn suppressed(&self, key: &K) -> u64 {
        self.buckets.get(key).map_or(0, |b| b.suppressed)
    }

    pub fn total_suppressed(&self) -> u64 {
        self.buckets.values().map(|b| b.suppressed).sum()
    }

    /// Forgets a workload that is gone (its counts have been reported).
    pub fn remove(&mut self, key: &K) -> u64 {
        self.buckets.remove(key).map_or(0, |b| b.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_throttles_then_refills() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(2.0, 3);
        let allowed = (0..10).filter(|_| rl.allow(&"pod-a", t0)).count();
        assert_eq!(allowed, 3, "the burst");
        assert_eq!(rl.suppressed(&"pod-a"), 7);
        // Another workload has its own budget.
        assert!(rl.allow(&"pod-b", t0));
        // Half a second at 2/s refills one token.
        assert!(rl.allow(&"pod-a", t0 + Duration::from_millis(500)));
        assert!(!rl.allow(&"pod-a", t0 + Duration::from_millis(500)));
        assert_eq!(rl.total_suppressed(), 8);
        assert_eq!(rl.remove(&"pod-a"), 8);
        assert_eq!(rl.suppressed(&"pod-a"), 0);
    }
}
