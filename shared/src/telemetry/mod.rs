//! Telemetry: logs ([`logs`]), one EMF metrics document per invocation that is also its access line
//! ([`emf`], [`Scope::document`]), Sentry events ([`reporting`]), X-Ray traces ([`xray`]) and the
//! once-per-sandbox `init` line ([`startup`]), all set up once per cold start by [`crate::run`]; no
//! function sets any of it up itself.
//!
//! Every invocation runs inside a [`Scope`]: a task-local record of that invocation's metrics,
//! outcome and panic, so concurrent invocations in one process never mix. [`TelemetryLayer`] wraps
//! the Lambda runtime's whole invocation step: it opens the scope before the handler runs and,
//! once the runtime has posted the response (the client already has it), prints the EMF document
//! and flushes Sentry with a bounded wait, before the runtime asks for the next event and Lambda
//! may freeze the sandbox.

pub mod emf;
pub mod logs;
pub mod reporting;
pub mod startup;
pub mod xray;

use std::{
    future::Future,
    panic::PanicHookInfo,
    pin::Pin,
    sync::{
        Arc, Mutex, Once,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use lambda_runtime::LambdaInvocation;
use serde_json::{Map, Value};

pub use logs::{LogFormat, LogLevels};

use crate::{config::Config, error::BoxError, metric};

/// How long the end of an invocation may wait for Sentry to take its events.
pub const SENTRY_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

tokio::task_local! {
    static CURRENT: Arc<Scope>;
}

static COLD: AtomicBool = AtomicBool::new(true);

/// Sets up logs, the EMF labels, the metrics recorder, the panic hook and Sentry, as `config`
/// says, for the function `function`. Returns the Sentry guard, to keep for the life of the
/// process.
pub fn init(config: &Config, function: &str) -> Option<sentry::ClientInitGuard> {
    logs::init(
        config.log_format,
        config.log_levels,
        function,
        config.xray_daemon.as_deref(),
    );
    emf::EmfConfig::set(config);
    install_process_hooks();
    reporting::init(config)
}

/// The metrics recorder and the panic hook; idempotent. [`Scope::new`] calls it, so tests that
/// serve requests in-process get both without [`init`].
pub fn install_process_hooks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        emf::install();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Inside an invocation the panic is reported once, by the runtime boundary, with the
            // request's context; elsewhere the usual hook prints it.
            let stashed = CURRENT.try_with(|scope| scope.stash_panic(PanicReport::capture(info)));
            if stashed.is_err() {
                previous(info);
            }
        }));
    });
}

/// What a panic left behind, for the boundary's log line and Sentry event.
#[derive(Debug, Clone)]
pub struct PanicReport {
    /// The panic's message.
    pub message: String,
    /// `file:line:column`.
    pub location: Option<String>,
    /// The backtrace, as text.
    pub backtrace: String,
    /// The stack trace in Sentry's form, when Sentry is on.
    pub stacktrace: Option<sentry::protocol::Stacktrace>,
}

impl PanicReport {
    fn capture(info: &PanicHookInfo<'_>) -> Self {
        Self {
            message: info
                .payload_as_str()
                .unwrap_or("non-text panic payload")
                .to_owned(),
            location: info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())),
            backtrace: std::backtrace::Backtrace::force_capture().to_string(),
            stacktrace: reporting::enabled()
                .then(sentry::integrations::backtrace::current_stacktrace)
                .flatten(),
        }
    }
}

/// `elapsed` in milliseconds, to the microsecond: how every duration in a log line, a metric or
/// the `init` line is written.
pub fn millis(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// How an invocation ended, as the client saw it.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The contract's request id.
    pub request_id: String,
    /// The HTTP status.
    pub status: u16,
    /// The handler's time.
    pub latency_ms: f64,
    /// The error code of an error answer.
    pub code: Option<&'static str>,
}

/// The telemetry of one invocation.
#[derive(Debug)]
pub struct Scope {
    function: &'static str,
    lambda_request_id: String,
    xray_trace_id: Option<String>,
    /// X-Ray's id of the trace, when the header says the request is sampled (computed once: the
    /// request span and the access line both carry it).
    xray_id: Option<String>,
    cold_start: bool,
    started: Instant,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    metrics: emf::MetricSet,
    /// What the handler said of the request, for its access line ([`annotate`]).
    fields: Map<String, Value>,
    outcome: Option<Outcome>,
    panic: Option<PanicReport>,
    sentry_events: u32,
    emitted: bool,
}

impl Scope {
    /// Opens the telemetry of one invocation. The first one in a process is the cold start.
    pub fn new(
        function: &'static str,
        lambda_request_id: &str,
        xray_trace_id: Option<String>,
    ) -> Arc<Self> {
        install_process_hooks();
        Arc::new(Self {
            function,
            lambda_request_id: lambda_request_id.to_owned(),
            xray_id: xray::sampled_xray_id(xray_trace_id.as_deref()),
            xray_trace_id,
            cold_start: COLD.swap(false, Ordering::Relaxed),
            started: Instant::now(),
            state: Mutex::default(),
        })
    }

    /// The scope of the invocation running on this task, if any.
    pub fn current() -> Option<Arc<Self>> {
        CURRENT.try_with(Arc::clone).ok()
    }

    /// Runs `future` inside this scope: metrics, panics and Sentry events go to it.
    pub fn run<F: Future>(self: &Arc<Self>, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(Arc::clone(self), future)
    }

    /// Whether this is the process's first invocation.
    pub fn cold_start(&self) -> bool {
        self.cold_start
    }

    /// X-Ray's id of the invocation's trace (`1-…`), when the request is sampled.
    pub fn xray_id(&self) -> Option<&str> {
        self.xray_id.as_deref()
    }

    /// The Lambda request id.
    pub fn lambda_request_id(&self) -> &str {
        &self.lambda_request_id
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn with_metrics(&self, f: impl FnOnce(&mut emf::MetricSet)) {
        f(&mut self.state().metrics);
    }

    /// Records how the invocation ended.
    pub fn set_outcome(&self, outcome: Outcome) {
        self.state().outcome = Some(outcome);
    }

    fn stash_panic(&self, report: PanicReport) {
        self.state().panic = Some(report);
    }

    /// The report of a panic caught in this invocation.
    pub fn take_panic(&self) -> Option<PanicReport> {
        self.state().panic.take()
    }

    pub(crate) fn count_sentry_event(&self) {
        self.state().sentry_events += 1;
    }

    /// The invocation's EMF document, which is also its access line: what was recorded, the
    /// per-request metrics derived from the outcome (`Latency` always; `Errors4xx`,
    /// `Errors5xx` and `ColdStart` only when they count one, so `ColdStart: 1` marks a sandbox's
    /// first request), and the request's facts an on-call engineer filters on: `request_id`,
    /// `status`, `code` (an error's), `xray_trace_id` (when a trace exists) and what the handler
    /// [`annotate`]d. Lambda's own request id is on the request's other lines (a 5xx's error line
    /// among them) and on Lambda's START/END/REPORT lines, not here: every byte of this line is
    /// paid for on every request. With `access`, also the `level` and `message` of a log line;
    /// without it (a log level above INFO), the metrics only, which never depend on the log level.
    pub fn document(&self) -> Value {
        self.document_with(logs::info_enabled() && logs::json())
    }

    fn document_with(&self, access: bool) -> Value {
        let state = self.state();
        let mut metrics = state.metrics.clone();
        let outcome = state.outcome.clone();
        let fields = state.fields.clone();
        drop(state);
        // Without an outcome the service never answered: the runtime reported an error, which API
        // Gateway turns into a 5xx.
        let status = outcome.as_ref().map_or(500, |o| o.status);
        let latency_ms = outcome.as_ref().map_or_else(
            || self.started.elapsed().as_secs_f64() * 1000.0,
            |o| o.latency_ms,
        );
        metrics.push(metric::LATENCY.name, latency_ms);
        // Counts of what happens to some requests only are written when they happen: their sums
        // (all the dashboard and the alarms read) are the same, for fewer bytes on every line.
        if (400..500).contains(&status) {
            metrics.add(metric::ERRORS_4XX.name, 1.0);
        }
        if status >= 500 {
            metrics.add(metric::ERRORS_5XX.name, 1.0);
        }
        if self.cold_start {
            metrics.add(metric::COLD_START.name, 1.0);
        }

        let mut properties = Map::new();
        if access {
            properties.insert("level".into(), Value::from("INFO"));
            properties.insert("message".into(), Value::from("access"));
        }
        let request_id = outcome
            .as_ref()
            .map_or(self.lambda_request_id.as_str(), |o| o.request_id.as_str());
        properties.insert("request_id".into(), Value::from(request_id));
        properties.insert("status".into(), Value::from(status));
        if let Some(code) = outcome.as_ref().and_then(|o| o.code) {
            properties.insert("code".into(), Value::from(code));
        }
        if let Some(trace) = &self.xray_id {
            properties.insert("xray_trace_id".into(), Value::from(trace.as_str()));
        }
        if access {
            for (name, value) in fields {
                properties.entry(name).or_insert(value);
            }
        }
        let config = emf::EmfConfig::get();
        metrics.document(
            config,
            &[
                ("Service", config.service.as_str()),
                ("Function", self.function),
            ],
            properties,
            chrono::Utc::now().timestamp_millis(),
        )
    }

    /// Ends the invocation: prints its EMF document, its access line, on stdout and sends its
    /// X-Ray subsegments (once), then gives Sentry a bounded time to send what this invocation
    /// captured. In a terminal (`LOG_FORMAT=pretty`) the access line is a readable event of its
    /// own, before the document.
    pub async fn finish(&self) {
        let first = !std::mem::replace(&mut self.state().emitted, true);
        if first {
            if !logs::json() && logs::info_enabled() {
                self.access_event();
            }
            logs::write_stdout_line(&self.document());
            // The invocation's subsegments, after its response, like the EMF document.
            xray::export(self.xray_trace_id.as_deref());
        }
        if self.state().sentry_events > 0 {
            reporting::flush(SENTRY_FLUSH_TIMEOUT).await;
        }
    }

    /// The access line as a `tracing` event, for the pretty format.
    fn access_event(&self) {
        let (outcome, fields) = {
            let state = self.state();
            (state.outcome.clone(), state.fields.clone())
        };
        let Some(outcome) = outcome else { return };
        let fields = (!fields.is_empty()).then(|| serde_json::Value::Object(fields).to_string());
        tracing::info!(
            request_id = %outcome.request_id,
            status = outcome.status,
            latency_ms = outcome.latency_ms,
            code = outcome.code,
            cold_start = self.cold_start,
            fields,
            "access"
        );
    }
}

/// Adds `name: value` to the current request's access line (its EMF document): what a handler
/// learnt that an on-call engineer filters on (`user_id`, `limit`), said once, on the request's one
/// line, instead of a log line of its own. Outside an invocation it is dropped. Never a secret:
/// the line reaches CloudWatch as it is.
pub fn annotate(name: &'static str, value: impl Into<Value>) {
    if let Some(scope) = Scope::current() {
        scope.state().fields.insert(name.to_owned(), value.into());
    }
}

/// The runtime layer that gives every invocation a [`Scope`] and finishes it after the response
/// has been posted.
#[derive(Debug, Clone, Copy)]
pub struct TelemetryLayer {
    function: &'static str,
}

impl TelemetryLayer {
    /// The layer for `function`.
    pub fn new(function: &'static str) -> Self {
        Self { function }
    }
}

impl<S> tower::Layer<S> for TelemetryLayer {
    type Service = TelemetryService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TelemetryService {
            inner,
            layer: *self,
        }
    }
}

/// See [`TelemetryLayer`].
#[derive(Debug, Clone)]
pub struct TelemetryService<S> {
    inner: S,
    layer: TelemetryLayer,
}

impl<S> tower::Service<LambdaInvocation> for TelemetryService<S>
where
    S: tower::Service<LambdaInvocation, Response = (), Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = ();
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        let scope = Scope::new(
            self.layer.function,
            &invocation.context.request_id,
            invocation.context.xray_trace_id.clone(),
        );
        let inner = self.inner.call(invocation);
        Box::pin(async move {
            // When this returns, the runtime has posted the response: the client has it.
            let result = scope.run(inner).await;
            scope.finish().await;
            result
        })
    }
}
