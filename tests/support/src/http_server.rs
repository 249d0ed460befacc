//! A small HTTP/1.1 server on 127.0.0.1 for local stand-ins (the Lambda Runtime API, Sentry's
//! ingestion endpoint). Each connection is served on its own task, so a long poll on one connection
//! never blocks another.

use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{
    Request, Response, StatusCode, body::Incoming, server::conn::http1, service::service_fn,
};
use hyper_util::rt::TokioIo;

/// A request with its whole body.
pub type HttpRequest = Request<Bytes>;
/// A response with its whole body.
pub type HttpResponse = Response<Full<Bytes>>;
/// What a handler returns.
pub type Reply = Pin<Box<dyn Future<Output = HttpResponse> + Send>>;

/// Serves `handler` on a free loopback port until the process ends; returns the address.
pub async fn serve<F>(handler: F) -> std::io::Result<SocketAddr>
where
    F: Fn(HttpRequest) -> Reply + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // Small request/response exchanges: no Nagle delay (the bench times them).
            let _ = stream.set_nodelay(true);
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let handler = Arc::clone(&handler);
                    async move { Ok::<_, std::convert::Infallible>(handler(whole(request).await).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(address)
}

/// The request with its whole body read (an unreadable body counts as empty).
pub async fn whole(request: Request<Incoming>) -> HttpRequest {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Request::from_parts(parts, body)
}

/// A response with `status` (500 if it is not a status code) and `body`.
pub fn respond(status: u16, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
}
