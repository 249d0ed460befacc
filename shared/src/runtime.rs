//! The runtime wrapper every function runs in: [`run`] builds everything once per cold start, and
//! [`ApiService`] turns every outcome of a handler, a panic included, into a response in the
//! contract shape. Its error type is `Infallible`: a request can never reach the Lambda runtime as
//! an `Err`, which API Gateway would answer with its own 502 body.

use std::{
    any::Any,
    convert::Infallible,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use futures::FutureExt as _;
use lambda_http::{Body, Request, Response};
use tracing::Instrument as _;

use crate::{
    app::App,
    error::{ApiError, BoxError},
    request::{ApiRequest, Invocation, Route},
    response::set_common_headers,
    telemetry,
};

/// The result of a handler.
pub type HandlerResult = Result<Response<Body>, ApiError>;

/// A function's request handler: `async fn handle(app: Arc<App>, req: ApiRequest) -> HandlerResult`.
pub trait Handler: Clone + Send + Sync + 'static {
    /// The future the handler returns.
    type Future: Future<Output = HandlerResult> + Send + 'static;
    /// Handles one request.
    fn call(&self, app: Arc<App>, request: ApiRequest) -> Self::Future;
}

impl<F, Fut> Handler for F
where
    F: Fn(Arc<App>, ApiRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    type Future = Fut;
    fn call(&self, app: Arc<App>, request: ApiRequest) -> Fut {
        self(app, request)
    }
}

/// Starts the function: telemetry, configuration and the DynamoDB client once per cold start, then
/// the Lambda runtime (concurrent invocations when Lambda asks for them).
///
/// A configuration error does not stop the process: every request is then answered with a 500 in
/// the contract shape and the cause is logged, instead of API Gateway's own 502.
pub async fn run<H: Handler>(
    function: &'static str,
    route: Route,
    handler: H,
) -> Result<(), BoxError> {
    telemetry::init();
    let app = App::from_env().await.map_err(|err| {
        tracing::error!(error.cause_chain = ?err, "function configuration failed; every request will get a 500");
        Arc::<str>::from(err.to_string())
    });
    let service = ApiService::new(function, route, app.map(Arc::new), handler);
    lambda_http::runtime_concurrent(service)
        .run_concurrent()
        .await
}

/// The tower service behind every function.
#[derive(Clone)]
pub struct ApiService<H> {
    function: &'static str,
    route: Route,
    app: Result<Arc<App>, Arc<str>>,
    handler: H,
}

impl<H> std::fmt::Debug for ApiService<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiService")
            .field("function", &self.function)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl<H: Handler> ApiService<H> {
    /// Serves `route` with `handler`. `app` is the error text of a failed start-up, if it failed.
    pub fn new(
        function: &'static str,
        route: Route,
        app: Result<Arc<App>, Arc<str>>,
        handler: H,
    ) -> Self {
        Self {
            function,
            route,
            app,
            handler,
        }
    }

    /// Handles one request; never fails.
    pub fn handle(
        &self,
        request: Request,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        let invocation = Invocation::from_request(&request, self.function, self.route);
        let span = tracing::info_span!(
            "request",
            request_id = %invocation.request_id,
            lambda_request_id = %invocation.lambda_request_id,
            function = invocation.function,
            route = %invocation.route,
        );
        let app = self.app.clone();
        let handler = self.handler.clone();
        async move {
            let started = Instant::now();
            let request_id = invocation.request_id.clone();
            let method = request.method().clone();
            let outcome = AssertUnwindSafe(async {
                match app {
                    Ok(app) => handler.call(app, ApiRequest::new(request, invocation)).await,
                    Err(startup) => Err(ApiError::internal(format!("start-up failed: {startup}"))),
                }
            })
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(ApiError::Internal(Box::new(Panicked::from(panic)))));
            let mut response = match outcome {
                Ok(response) => response,
                Err(err) => {
                    if err.is_server_error() {
                        tracing::error!(
                            status = err.status().as_u16(),
                            code = err.code(),
                            error.cause_chain = ?err,
                            "request failed"
                        );
                    } else {
                        tracing::info!(status = err.status().as_u16(), code = err.code(), error.cause_chain = ?err, "request refused");
                    }
                    err.into_response(&request_id)
                }
            };
            set_common_headers(&mut response, &request_id);
            tracing::info!(
                method = %method,
                status = response.status().as_u16(),
                latency_ms = started.elapsed().as_secs_f64() * 1000.0,
                response_bytes = response.body().len(),
                "access"
            );
            response
        }
        .instrument(span)
    }
}

impl<H: Handler> tower::Service<Request> for ApiService<H> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let response = self.handle(request);
        Box::pin(async move { Ok(response.await) })
    }
}

/// A handler panicked; the message is kept for the logs, never shown.
#[derive(Debug, thiserror::Error)]
#[error("handler panicked: {message}")]
pub struct Panicked {
    /// The panic's message, when it had a text one.
    pub message: String,
}

impl From<Box<dyn Any + Send>> for Panicked {
    fn from(panic: Box<dyn Any + Send>) -> Self {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-text panic payload".to_owned());
        Self { message }
    }
}
