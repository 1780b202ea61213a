//! Exponential backoff per key, in memory: a failed node start or task step waits longer after
//! each failure, and a success forgets the key. After an operator restart every key starts over,
//! which at worst retries once early.

use std::{
    collections::HashMap,
    hash::Hash,
    time::{Duration, Instant},
};

/// Delays: `base`, doubled after each failure, capped at `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl BackoffPolicy {
    /// The delay after `failures` consecutive failures (at least one).
    #[must_use]
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.base.saturating_mul(1_u32 << doublings).min(self.max)
    }
}

/// One key's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failures {
    /// Consecutive failures.
    pub count: u32,
    /// The last error, as a user reads it.
    pub last_error: String,
    /// Not before this instant.
    pub retry_at: Instant,
}

/// Failures by key.
#[derive(Debug)]
pub struct Backoff<K> {
    policy: BackoffPolicy,
    failures: HashMap<K, Failures>,
}

impl<K: Eq + Hash + Clone> Backoff<K> {
    /// No failures yet.
    #[must_use]
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            failures: HashMap::new(),
        }
    }

    /// Records a failure of `key` at `now`; returns the record.
    pub fn fail(&mut self, key: &K, error: String, now: Instant) -> Failures {
        let count = self.failures.get(key).map_or(0, |f| f.count) + 1;
        let record = Failures {
            count,
            last_error: error,
            retry_at: now + self.policy.delay(count),
        };
        self.failures.insert(key.clone(), record.clone());
        record
    }

    /// Forgets `key` (it succeeded, or is gone).
    pub fn succeed(&mut self, key: &K) {
        self.failures.remove(key);
    }

    /// Whether `key` may be tried at `now`.
    #[must_use]
    pub fn ready(&self, key: &K, now: Instant) -> bool {
        self.failures.get(key).is_none_or(|f| f.retry_at <= now)
    }

    /// The failures of `key`, if any.
    #[must_use]
    pub fn get(&self, key: &K) -> Option<&Failures> {
        self.failures.get(key)
    }

    /// Keeps only the keys for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.failures.retain(|key, _| keep(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_up_to_the_cap_and_success_forgets() {
        let policy = BackoffPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(5),
        };
        assert_eq!(policy.delay(1), Duration::from_secs(1));
        assert_eq!(policy.delay(2), Duration::from_secs(2));
        assert_eq!(policy.delay(3), Duration::from_secs(4));
        assert_eq!(policy.delay(4), Duration::from_secs(5));
        assert_eq!(policy.delay(400), Duration::from_secs(5));

        let mut backoff = Backoff::new(policy);
        let now = Instant::now();
        let key = "pod-0".to_owned();
        assert!(backoff.ready(&key, now));
        let first = backoff.fail(&key, "500".into(), now);
        assert_eq!(first.count, 1);
        assert!(!backoff.ready(&key, now));
        assert!(backoff.ready(&key, now + Duration::from_secs(1)));
        let second = backoff.fail(&key, "500 again".into(), now);
        assert_eq!(second.count, 2);
        assert!(!backoff.ready(&key, now + Duration::from_secs(1)));
        backoff.succeed(&key);
        assert!(backoff.ready(&key, now));
        assert!(backoff.get(&key).is_none());
    }
}
