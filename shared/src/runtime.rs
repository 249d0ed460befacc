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
use http::Method;
use lambda_http::{Body, Request, Response};
use tower::util::Either;
use tower_http::cors::Cors;
use tracing::Instrument as _;

use crate::{
    app::App,
    config::Config,
    cors::AllowedOrigins,
    error::{ApiError, BoxError},
    request::{ApiRequest, Invocation, Route},
    response::set_common_headers,
    telemetry::{self, Outcome, PanicReport, Scope, TelemetryLayer, reporting, startup, xray},
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
/// the Lambda runtime (concurrent invocations when Lambda asks for them), with every invocation
/// inside a [`TelemetryLayer`].
///
/// A configuration error does not stop the process: every request is then answered with a 500 in
/// the contract shape (with the CORS headers of the origins that parsed), and the error, with its
/// causes, is logged at start and reported with each 500, instead of API Gateway's own 502.
pub async fn run<H: Handler>(
    function: &'static str,
    route: Route,
    handler: H,
) -> Result<(), BoxError> {
    // The `init` line is written once start-up and the DynamoDB connection are both done.
    startup::begin();
    startup::sandbox(function, route.to_string());
    let (config, invalid) = startup::time("config", Config::from_env);
    let _sentry = startup::time("telemetry", || telemetry::init(&config, function));
    let origins = config.cors.clone();
    let app: Started = match invalid {
        Some(err) => {
            tracing::error!(
                error = &err as &dyn std::error::Error,
                "function configuration failed; every request will get a 500"
            );
            Err(Arc::new(err.into()))
        }
        // The DynamoDB client is made, and its connection opened, on a background thread: the
        // runtime asks for the first event meanwhile (crate::store's connection).
        None => {
            let ahead = config.init_ahead_of_requests && config.dynamodb_preopen;
            let app = startup::time("app", || {
                startup::begin();
                Arc::new(App::connect(config, |opened| {
                    startup::dynamodb(opened.client_ms, opened.connect_ms, opened.connected);
                }))
            });
            if ahead {
                // Provisioned concurrency: no request waits on this init, so the connection is
                // opened before the first /next, at init's CPU (bounded by the pre-open's own
                // bound; it never fails).
                app.store.settle(PROVISIONED_SETTLE_BOUND).await;
            }
            Ok(app)
        }
    };
    let runtime = startup::time("runtime", || {
        lambda_http::runtime_concurrent(service(function, route, app, handler, &origins))
            .layer(TelemetryLayer::new(function))
    });
    startup::end();
    runtime.run_concurrent().await
}

/// How long a provisioned-concurrency init waits for the DynamoDB connection: past the pre-open's
/// own bound (1 s), so it only ends early if the client itself hangs.
const PROVISIONED_SETTLE_BOUND: std::time::Duration = std::time::Duration::from_secs(3);

/// What start-up left: the app, or why it could not be built (kept as the error it was, so each
/// 500 it causes reports its cause chain).
pub type Started = Result<Arc<App>, Arc<BoxError>>;

/// A request arrived at a function whose start-up failed.
#[derive(Debug, thiserror::Error)]
#[error("the function did not start")]
struct StartupFailed(#[source] Arc<BoxError>);

/// The service a function runs: [`ApiService`], inside tower-http's CORS layer when `origins`
/// allows any (see [`crate::cors`]). The tests serve requests through this same function.
pub fn service<H: Handler>(
    function: &'static str,
    route: Route,
    app: Started,
    handler: H,
    origins: &AllowedOrigins,
) -> Either<Cors<ApiService<H>>, ApiService<H>> {
    let method = Method::from_bytes(route.method.as_bytes()).unwrap_or(Method::GET);
    tower::ServiceBuilder::new()
        .option_layer(origins.layer(method))
        .service(ApiService::new(function, route, app, handler))
}

/// The tower service behind every function.
#[derive(Clone)]
pub struct ApiService<H> {
    function: &'static str,
    route: Route,
    app: Started,
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
    /// Serves `route` with `handler`; `app` is what start-up left.
    pub fn new(function: &'static str, route: Route, app: Started, handler: H) -> Self {
        Self {
            function,
            route,
            app,
            handler,
        }
    }

    /// Handles one request; never fails. Runs in the invocation's telemetry [`Scope`] (opening one
    /// when called outside the runtime layer).
    pub fn handle(
        &self,
        request: Request,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        let invocation = Invocation::from_request(&request, self.function, self.route);
        let app = self.app.clone();
        let handler = self.handler.clone();
        async move {
            match Scope::current() {
                Some(scope) => serve(scope, app, handler, request, invocation).await,
                None => {
                    let scope = Scope::new(
                        invocation.function,
                        &invocation.lambda_request_id,
                        invocation.xray_trace_id.clone(),
                    );
                    let response = scope
                        .run(serve(Arc::clone(&scope), app, handler, request, invocation))
                        .await;
                    scope.finish().await;
                    response
                }
            }
        }
    }
}

/// One request, start to end: the handler, a panic turned into a 500, the boundary's one log line
/// per failure, the Sentry event, the common headers and the access line.
async fn serve<H: Handler>(
    scope: Arc<Scope>,
    app: Started,
    handler: H,
    request: Request,
    invocation: Invocation,
) -> Response<Body> {
    let started = Instant::now();
    let request_id = invocation.request_id.clone();
    let method = request.method().clone();
    let function = invocation.function;
    let route = invocation.route.to_string();
    // Only what differs between requests: the function and route are the sandbox's (CloudWatch's
    // log group names them), and the access line is the EMF document, written after the response.
    let span = tracing::info_span!(
        "request",
        request_id = %invocation.request_id,
        lambda_request_id = %invocation.lambda_request_id,
        xray_trace_id = scope.xray_id(),
    );
    // X-Ray's subsegment for the handler, under the invocation's own trace header.
    let trace = xray::handler(
        function,
        method.as_str(),
        &route,
        invocation.xray_trace_id.as_deref(),
    );
    let traced = trace.clone();
    let xray_header = invocation.xray_trace_id.clone();
    async move {
        tracing::debug!(
            time_left_ms = invocation.remaining().map(|d| d.as_millis() as u64),
            "invocation started"
        );
        let outcome = AssertUnwindSafe(async {
            if method.as_str() != invocation.route.method {
                // API Gateway answers undeclared methods itself; this is the same answer for a
                // request that reaches the function anyway.
                return Err(ApiError::MethodNotAllowed {
                    allow: invocation.route.path_methods(),
                });
            }
            match app {
                Ok(app) => {
                    // Boxed as a trait object: the handler's future is not nested in this one's
                    // type, so a deep handler does not push the compiler past its layout
                    // recursion limit. One allocation per request.
                    let handled: Pin<Box<dyn Future<Output = HandlerResult> + Send>> =
                        Box::pin(handler.call(app, ApiRequest::new(request, invocation)));
                    handled.await
                }
                Err(startup) => Err(ApiError::internal(StartupFailed(startup))),
            }
        })
        .catch_unwind()
        .await;
        let (result, panic) = match outcome {
            Ok(result) => (result, None),
            Err(payload) => {
                let report = scope.take_panic();
                let panicked = Panicked::new(payload, report.as_ref());
                (Err(ApiError::Internal(Box::new(panicked))), report)
            }
        };
        let code = result.as_ref().err().map(ApiError::code);
        let mut response = match result {
            Ok(response) => response,
            Err(err) => {
                let status = err.status().as_u16();
                let error: &(dyn std::error::Error + 'static) = &err;
                match &panic {
                    Some(report) => tracing::error!(
                        status,
                        code = err.code(),
                        panic.message = %report.message,
                        panic.location = report.location.as_deref(),
                        panic.backtrace = %report.backtrace,
                        "handler panicked"
                    ),
                    None if err.is_server_error() => {
                        tracing::error!(status, code = err.code(), error, "request failed");
                    }
                    // The access line carries a 4xx's status and code; its detail is the client's.
                    None => tracing::debug!(status, code = err.code(), error, "request refused"),
                }
                let detail = err.to_string();
                let captured = reporting::capture(&reporting::Failure {
                    error,
                    status,
                    detail: &detail,
                    request_id: &request_id,
                    function,
                    route: &route,
                    panic: panic.as_ref(),
                    trace: xray::ids(&traced, xray_header.as_deref()),
                });
                if captured {
                    scope.count_sentry_event();
                }
                err.into_response(&request_id)
            }
        };
        set_common_headers(&mut response, &request_id);
        let status = response.status().as_u16();
        let latency_ms = telemetry::millis(started.elapsed());
        xray::record_status(&traced, status);
        scope.set_outcome(Outcome {
            request_id,
            status,
            latency_ms,
            code,
        });
        response
    }
    .instrument(span)
    .instrument(trace)
    .await
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

/// A handler panicked; the message and location are kept for the logs and Sentry, never shown.
#[derive(Debug, thiserror::Error)]
#[error("handler panicked: {message}{}", location.as_deref().map(|l| format!(" at {l}")).unwrap_or_default())]
pub struct Panicked {
    /// The panic's message, when it had a text one.
    pub message: String,
    /// Where it panicked, when the panic hook saw it.
    pub location: Option<String>,
}

impl Panicked {
    fn new(payload: Box<dyn Any + Send>, report: Option<&PanicReport>) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-text panic payload".to_owned());
        Self {
            message,
            location: report.and_then(|r| r.location.clone()),
        }
    }
}
