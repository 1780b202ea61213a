//! A Kubernetes client that records every request it sends but its watches, so that tests can
//! count the requests of a controller (a pass over an unchanged object must make none).

use std::{
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use http::{Method, Request};
use kube::{Client, Config, client::ClientBuilder};
use tower::{Layer, Service};

use crate::HarnessError;

/// The requests a counting client sent, as `METHOD path?query`. Clones share the record.
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    requests: Arc<Mutex<Vec<(Method, String)>>>,
}

impl RequestLog {
    /// The write requests (any method but GET) sent so far.
    #[must_use]
    pub fn writes(&self) -> Vec<String> {
        self.requests
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|(m, _)| *m != Method::GET)
                    .map(|(m, p)| format!("{m} {p}"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every request sent so far (watches aside), as `METHOD path?query`.
    #[must_use]
    pub fn all(&self) -> Vec<String> {
        self.requests
            .lock()
            .map(|r| r.iter().map(|(m, p)| format!("{m} {p}")).collect())
            .unwrap_or_default()
    }

    /// How many requests were sent so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.requests.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// True when nothing was sent.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        if let Ok(mut r) = self.requests.lock() {
            r.clear();
        }
    }
}

/// A client of `config` whose requests are recorded in the returned log.
///
/// # Errors
/// When the client cannot be built.
pub fn counting_client(config: Config) -> Result<(Client, RequestLog), HarnessError> {
    let log = RequestLog::default();
    Ok((counting_client_into(config, log.clone())?, log))
}

/// A client of `config` whose requests are recorded in `log`.
///
/// # Errors
/// When the client cannot be built.
pub fn counting_client_into(mut config: Config, log: RequestLog) -> Result<Client, HarnessError> {
    k8ssandra_reconcile::identity::identify(&mut config);
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&RecordLayer(log))
        .build())
}

struct RecordLayer(RequestLog);

impl<S> Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Record {
            inner,
            log: self.0.clone(),
        }
    }
}

/// The recording service.
#[derive(Clone)]
pub struct Record<S> {
    inner: S,
    log: RequestLog,
}

impl<S, B> Service<Request<B>> for Record<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let watch = request
            .uri()
            .query()
            .is_some_and(|q| q.contains("watch=true"));
        if !watch && let Ok(mut r) = self.log.requests.lock() {
            r.push((request.method().clone(), request.uri().to_string()));
        }
        self.inner.call(request)
    }
}
