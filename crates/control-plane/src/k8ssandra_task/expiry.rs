//! The TTL step (pure): a finished K8ssandraTask is deleted `ttlSecondsAfterFinished` after its
//! completion (a day when unset, as upstream; 0 keeps it). Its CassandraTasks are made with a TTL
//! of 0, so that they go with it, not before.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The TTL when the template sets none.
pub const DEFAULT_TTL_SECONDS: i32 = 86_400;

/// What becomes of a task as to its TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Not finished, or kept for good.
    Keep,
    /// Deleted after this long.
    DeleteIn(Duration),
    /// Due now.
    DeleteNow,
}

/// The expiry of a task with TTL `ttl_seconds` that finished at `completion`.
#[must_use]
pub fn expiry(ttl_seconds: Option<i32>, completion: Option<&Time>, now: &Time) -> Expiry {
    let ttl = ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    let Some(completion) = completion.filter(|_| ttl > 0) else {
        return Expiry::Keep;
    };
    let left = k8ssandra_reconcile::scope::left_after(completion, i64::from(ttl), now);
    if left.is_zero() {
        Expiry::DeleteNow
    } else {
        Expiry::DeleteIn(left)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn an_unfinished_task_is_kept() {
        assert_eq!(expiry(Some(5), None, &at(100)), Expiry::Keep);
    }

    #[test]
    fn zero_keeps_a_finished_task_for_good() {
        assert_eq!(expiry(Some(0), Some(&at(0)), &at(1_000_000)), Expiry::Keep);
    }

    #[test]
    fn unset_is_a_day() {
        assert_eq!(
            expiry(None, Some(&at(1000)), &at(1000)),
            Expiry::DeleteIn(Duration::from_secs(86_401))
        );
        assert_eq!(expiry(None, Some(&at(0)), &at(86_401)), Expiry::DeleteNow);
    }

    #[test]
    fn the_remaining_time_is_waited_for_then_the_task_is_due() {
        assert_eq!(
            expiry(Some(5), Some(&at(100)), &at(102)),
            Expiry::DeleteIn(Duration::from_secs(4))
        );
        // Completion times are rounded down: the task may have finished at 100.9.
        assert_eq!(
            expiry(Some(5), Some(&at(100)), &at(105)),
            Expiry::DeleteIn(Duration::from_secs(1))
        );
        assert_eq!(expiry(Some(5), Some(&at(100)), &at(106)), Expiry::DeleteNow);
        assert_eq!(expiry(Some(5), Some(&at(100)), &at(900)), Expiry::DeleteNow);
    }
}
