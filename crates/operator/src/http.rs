//! The operator's HTTP endpoints: `/metrics` (Prometheus text), `/healthz` (the process serves)
//! and `/readyz` (its watch caches listed: it acts on what is there).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use prometheus_client::{encoding::text::encode, registry::Registry};
use tokio::net::TcpListener;

/// What the endpoints read.
#[derive(Clone)]
pub struct Endpoints {
    /// The metrics.
    pub registry: Arc<Registry>,
    /// Set once the watch caches listed.
    pub ready: Arc<AtomicBool>,
}

/// The answer to one request (pure but for reading the metrics).
#[must_use]
pub fn answer(endpoints: &Endpoints, method: &Method, path: &str) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".to_owned());
    }
    match path {
        "/metrics" => {
            let mut body = String::new();
            if encode(&mut body, &endpoints.registry).is_err() {
                return text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode\n".into());
            }
            Response::builder()
                .header(
                    CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
                .body(Full::new(Bytes::from(body)))
                .unwrap_or_default()
        }
        "/healthz" | "/livez" => text(StatusCode::OK, "ok\n".to_owned()),
        "/readyz" if endpoints.ready.load(Ordering::Relaxed) => {
            text(StatusCode::OK, "ok\n".to_owned())
        }
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the watch caches have not listed yet\n".to_owned(),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: /metrics, /healthz, /readyz\n".to_owned(),
        ),
    }
}

/// Binds `address`, so that a port in use stops the start with a clear error.
///
/// # Errors
/// When the address cannot be bound.
pub async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the HTTP endpoints on {address}"))
}

/// Serves the endpoints on `listener` until the process stops.
pub async fn serve(listener: TcpListener, endpoints: Endpoints) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = answer(&endpoints, request.method(), request.uri().path());
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "HTTP connection");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn body(response: Response<Full<Bytes>>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn metrics_health_and_readiness_answer() {
        let mut registry = Registry::default();
        let metrics = k8ssandra_reconcile::metrics::ReconcileMetrics::register(&mut registry);
        metrics.succeeded("cassandradatacenter", std::time::Duration::from_millis(1));
        let endpoints = Endpoints {
            registry: Arc::new(registry),
            ready: Arc::default(),
        };
        let metrics = answer(&endpoints, &Method::GET, "/metrics");
        assert_eq!(metrics.status(), StatusCode::OK);
        assert!(body(metrics).await.contains("reconciles_total"));
        assert_eq!(
            answer(&endpoints, &Method::GET, "/healthz").status(),
            StatusCode::OK
        );
        assert_eq!(
            answer(&endpoints, &Method::GET, "/readyz").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        endpoints.ready.store(true, Ordering::Relaxed);
        assert_eq!(
            answer(&endpoints, &Method::GET, "/readyz").status(),
            StatusCode::OK
        );
        assert_eq!(
            answer(&endpoints, &Method::GET, "/nope").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            answer(&endpoints, &Method::POST, "/metrics").status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
