//! Waiting for the state a test expects, with a deadline and a message that says what was awaited.

use std::{fmt::Debug, future::Future, time::Duration};

use kube::{Api, Resource, runtime::wait::await_condition};
use serde::de::DeserializeOwned;
use tokio::time::{Instant, sleep, timeout};

use crate::HarnessError;

/// How often `until` asks again.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Calls `probe` until it returns `Some`, or fails once `limit` has passed.
pub async fn until<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> Result<T, HarnessError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    until_ok(what, limit, || {
        let probed = probe();
        async move { Ok(probed.await) }
    })
    .await
}

/// Calls `probe` until it returns `Ok(Some)`; fails at once when it returns an error (say, the
/// process being waited for has exited), or once `limit` has passed.
pub async fn until_ok<T, F, Fut>(
    what: &str,
    limit: Duration,
    mut probe: F,
) -> Result<T, HarnessError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, HarnessError>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                what: what.to_string(),
                after: limit,
            });
        }
        sleep(POLL_INTERVAL).await;
    }
}

/// Watches the object `name` until `condition` holds for it, and returns it.
pub async fn object<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    limit: Duration,
    condition: impl Fn(&K) -> bool + Send + 'static,
) -> Result<K, HarnessError>
where
    K: Clone + Debug + Send + DeserializeOwned + Resource + 'static,
{
    let awaited = await_condition(api.clone(), name, move |object: Option<&K>| {
        object.is_some_and(&condition)
    });
    match timeout(limit, awaited).await {
        Ok(Ok(Some(object))) => Ok(object),
        Ok(Ok(None)) => Err(HarnessError::Timeout {
            what: format!("{what} (the object is gone)"),
            after: limit,
        }),
        Ok(Err(error)) => Err(HarnessError::Wait(error.to_string())),
        Err(_) => Err(HarnessError::Timeout {
            what: what.to_string(),
            after: limit,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn until_returns_the_value_or_names_what_timed_out() {
        let mut calls = 0;
        let value = until("third call", Duration::from_secs(5), || {
            calls += 1;
            let done = calls == 3;
            async move { done.then_some(42) }
        })
        .await
        .unwrap();
        assert_eq!(value, 42);

        let err = until("never", Duration::from_millis(300), || async { None::<()> })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("never"), "{err}");
    }
}
