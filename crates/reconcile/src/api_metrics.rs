//! Kubernetes API requests counted by cluster, verb, resource and result (the HTTP status, or
//! `error` when no answer came), by a tower layer on the kube client: what the operator costs an
//! API server, and whether its permissions suffice (a `403` is counted as such).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{Method, Request, Response};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use tower::{Layer, Service};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    cluster: String,
    verb: &'static str,
    resource: String,
    result: String,
}

/// The request counter. Cheap to clone; clones share the series.
#[derive(Debug, Clone, Default)]
pub struct ApiRequestMetrics {
    requests: Family<RequestLabels, Counter>,
}

impl ApiRequestMetrics {
    /// Creates the family and registers it as `kubernetes_requests_total`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "kubernetes_requests",
            "Kubernetes API requests by cluster (the kubeconfig context; local for the \
             operator's own), verb, resource and result (HTTP status, or error)",
            metrics.requests.clone(),
        );
        metrics
    }

    /// The layer that counts the requests of a client of `cluster`.
    #[must_use]
    pub fn layer(&self, cluster: &str) -> ApiRequestLayer {
        ApiRequestLayer {
            metrics: self.clone(),
            cluster: if cluster.is_empty() {
                "local".to_owned()
            } else {
                cluster.to_owned()
            },
        }
    }
}

/// The verb (as Kubernetes RBAC names it) and the resource (`pods`, `cassandradatacenters/status`)
/// of a request.
#[must_use]
pub fn classify(method: &Method, path: &str, query: Option<&str>) -> (&'static str, String) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/... or /apis/<group>/<version>/...
    let rest: &[&str] = match parts.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return (verb_of(method, true, query), "other".to_owned()),
    };
    let rest = match rest {
        ["namespaces", _ns, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    let (resource, named, sub) = match rest {
        [] => ("", false, None),
        [resource] => (*resource, false, None),
        [resource, _name] => (*resource, true, None),
        [resource, _name, sub, ..] => (*resource, true, Some(*sub)),
    };
    let resource = match sub {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_owned(),
    };
    (verb_of(method, !named, query), resource)
}

fn verb_of(method: &Method, collection: bool, query: Option<&str>) -> &'static str {
    let watch = query.is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    match *method {
        Method::GET if watch => "watch",
        Method::GET if collection => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => "other",
    }
}

/// Counts the requests of one client.
#[derive(Debug, Clone)]
pub struct ApiRequestLayer {
    metrics: ApiRequestMetrics,
    cluster: String,
}

impl<S> Layer<S> for ApiRequestLayer {
    type Service = CountRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountRequests {
            inner,
            layer: self.clone(),
        }
    }
}

/// The counting service.
#[derive(Debug, Clone)]
pub struct CountRequests<S> {
    inner: S,
    layer: ApiRequestLayer,
}

impl<S, B, RB> Service<Request<B>> for CountRequests<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    RB: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (verb, resource) = classify(
            request.method(),
            request.uri().path(),
            request.uri().query(),
        );
        let layer = self.layer.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let outcome = answer.await;
            let result = match &outcome {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "error".to_owned(),
            };
            layer
                .metrics
                .requests
                .get_or_create(&RequestLabels {
                    cluster: layer.cluster.clone(),
                    verb,
                    resource,
                    result,
                })
                .inc();
            outcome
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_named_as_rbac_names_them() {
        let cases = [
            (
                Method::GET,
                "/api/v1/namespaces/ns/pods",
                None,
                "list",
                "pods",
            ),
            (
                Method::GET,
                "/api/v1/pods",
                Some("watch=true&timeoutSeconds=290"),
                "watch",
                "pods",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/ns/pods/p-0",
                None,
                "get",
                "pods",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/ns",
                None,
                "get",
                "namespaces",
            ),
            (
                Method::PATCH,
                "/apis/cassandra.datastax.com/v1beta1/namespaces/ns/cassandradatacenters/dc1/status",
                None,
                "patch",
                "cassandradatacenters/status",
            ),
            (
                Method::POST,
                "/api/v1/namespaces/ns/pods/p-0/eviction",
                None,
                "create",
                "pods/eviction",
            ),
            (
                Method::POST,
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases",
                None,
                "create",
                "leases",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/ns/persistentvolumeclaims/data-p-0",
                None,
                "delete",
                "persistentvolumeclaims",
            ),
            (Method::GET, "/version", None, "list", "other"),
        ];
        for (method, path, query, verb, resource) in cases {
            assert_eq!(
                classify(&method, path, query),
                (verb, resource.to_owned()),
                "{method} {path}"
            );
        }
    }
}
