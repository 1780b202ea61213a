//! One HTTP/1.1 exchange on a fresh connection (plain or mutual TLS), like upstream's `Connection: close`.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{ACCEPT, CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::route::Route;
use crate::tls::MutualTls;

/// Largest response body read; gossip views of large clusters stay far below.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How requests reach the server.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Plain HTTP (`managementApiAuth.insecure`).
    Plain,
    /// HTTPS with client certificates (`managementApiAuth.manual`).
    MutualTls(MutualTls),
}

impl Transport {
    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Transport::Plain => "http",
            Transport::MutualTls(_) => "https",
        }
    }
}

/// Status and body of an answer.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// Sends one request on a new connection and reads the whole answer. Errors are plain text because
/// the caller wraps them with the pod and route.
pub(crate) async fn exchange(
    transport: &Transport,
    address: SocketAddr,
    route: Route,
    path_and_query: &str,
    body: Option<Vec<u8>>,
    user_agent: &str,
) -> Result<RawResponse, String> {
    let request = build_request(address, route, path_and_query, body, user_agent)?;
    let tcp = TcpStream::connect(address)
        .await
        .map_err(|error| format!("connect to {address}: {error}"))?;
    // Requests are small and answered at once; don't wait for Nagle.
    tcp.set_nodelay(true)
        .map_err(|error| format!("configure socket: {error}"))?;
    match transport {
        Transport::Plain => send(TokioIo::new(tcp), request).await,
        Transport::MutualTls(tls) => {
            let connector = tokio_rustls::TlsConnector::from(tls.config());
            let server_name = ServerName::IpAddress(address.ip().into());
            let stream = connector
                .connect(server_name, tcp)
                .await
                .map_err(|error| format!("TLS handshake with {address}: {error}"))?;
            send(TokioIo::new(stream), request).await
        }
    }
}

fn build_request(
    address: SocketAddr,
    route: Route,
    path_and_query: &str,
    body: Option<Vec<u8>>,
    user_agent: &str,
) -> Result<http::Request<Full<Bytes>>, String> {
    let builder = http::Request::builder()
        .method(route.method())
        .uri(path_and_query)
        .header(HOST, address.to_string())
        .header(CONNECTION, "close")
        .header(USER_AGENT, user_agent)
        .header(ACCEPT, "application/json, text/plain, */*");
    let request = match body {
        Some(bytes) => builder
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(bytes))),
        None => builder.body(Full::new(Bytes::new())),
    };
    request.map_err(|error| format!("build request: {error}"))
}

/// Aborts the connection driver when the exchange ends or is cancelled by a timeout.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn send<I>(io: I, request: http::Request<Full<Bytes>>) -> Result<RawResponse, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|error| format!("HTTP handshake: {error}"))?;
    let _driver = AbortOnDrop(tokio::spawn(async move {
        // Its errors surface through send_request below.
        let _ = connection.await;
    }));
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| format!("HTTP exchange: {error}"))?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|error| format!("read body: {error}"))?
        .to_bytes();
    Ok(RawResponse { status, body })
}
