//! Traces for AWS X-Ray: the subsegments of each sampled invocation (the handler, each DynamoDB
//! attempt, the Argon2id hash, the wait on the login limit), sent to the X-Ray daemon over UDP
//! after the response, like the EMF document.
//!
//! # What is built on, and what is written here
//! - The spans are ordinary `tracing` spans of target [`TARGET`] (so the log layers never see them,
//!   and the log level never hides them), turned into OpenTelemetry spans by
//!   `tracing-opentelemetry`, with X-Ray trace ids (`opentelemetry-aws`'s `XrayIdGenerator`).
//! - The parent of every trace is the invocation's own trace header, which Lambda hands each
//!   invocation (`Lambda-Runtime-Trace-Id`, in the Lambda context), parsed by `opentelemetry-aws`'s
//!   X-Ray propagator. Not the `_X_AMZN_TRACE_ID` environment variable: under concurrent
//!   invocations one process serves several traces at once. A parent that is not sampled makes
//!   the sampler (parent-based, never a root of our own) record nothing, so nothing is sent.
//! - `opentelemetry-aws`'s `SegmentTranslator` turns the spans into segment documents (a top-level
//!   span becomes an independent subsegment of Lambda's function segment, the others nest in it).
//! - Written here: the span processor and the UDP client. The SDK's batch processor exports on a
//!   timer or when full, and its simple processor exports each span as it ends, while the
//!   client waits; neither exports an invocation's spans as one batch after its response, before
//!   Lambda may freeze the sandbox. [`Collector`] keeps each trace's ended spans apart, and
//!   [`export`] sends one trace's when the invocation ends. `opentelemetry-aws`'s daemon client
//!   stops a batch at the first failed send and binds every interface; [`DaemonClient`] binds
//!   the daemon's own kind of address (loopback for a loopback daemon), never blocks (a
//!   non-blocking socket, failed sends dropped) and sends every document it can.
//!
//! No Lambda extension or layer is used: each adds cold-start time, and the daemon Lambda runs for
//! every function with active tracing is enough (`AWS_XRAY_DAEMON_ADDRESS`).

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket},
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use opentelemetry::{
    Context,
    trace::{TraceContextExt as _, TraceId, TracerProvider as _},
};
use opentelemetry_aws::{
    trace::{XrayIdGenerator, xray_propagator::span_context_from_str},
    xray_exporter::SegmentTranslator,
};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{Sampler, SdkTracerProvider, Span as OtelSpan, SpanData, SpanProcessor},
};
use tracing::{Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{Layer, filter::filter_fn, registry::LookupSpan};

/// The `tracing` target of every span that goes to X-Ray, and only those.
pub const TARGET: &str = "xray";
/// Where Lambda's X-Ray daemon listens (`host:port`), set by Lambda when tracing is active.
pub const DAEMON_ADDRESS_ENV: &str = "AWS_XRAY_DAEMON_ADDRESS";
/// The most traces kept waiting for their invocation's end; past it the oldest are dropped (an
/// invocation that never reached [`export`] must not grow memory).
const MAX_PENDING_TRACES: usize = 64;
/// The most spans kept for one trace.
const MAX_SPANS_PER_TRACE: usize = 256;

/// What tracing needs for the life of the process, when it is on.
struct Tracing {
    /// Kept for the life of the process: the tracer in the layer is this provider's.
    _provider: SdkTracerProvider,
    collector: Arc<Collector>,
    client: DaemonClient,
    translator: SegmentTranslator,
}

static TRACING: OnceLock<Tracing> = OnceLock::new();

/// Turns tracing on when `daemon` (the value of [`DAEMON_ADDRESS_ENV`]) names a daemon, for a
/// function named `service`: the layer to add to the subscriber, which sees only [`TARGET`]'s
/// spans. `None` (tracing off) without a daemon, with an address that does not parse, or when
/// tracing was already set up.
pub fn layer<S>(daemon: Option<&str>, service: &str) -> Option<impl Layer<S>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let address = parse_daemon_address(daemon?)?;
    let client = DaemonClient::new(address).ok()?;
    let collector = Arc::new(Collector::default());
    let provider = SdkTracerProvider::builder()
        .with_id_generator(XrayIdGenerator::default())
        // Only what Lambda sampled: a span without a sampled parent records nothing.
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
        .with_span_processor(Forward(Arc::clone(&collector)))
        .with_resource(
            Resource::builder_empty()
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.name",
                    service.to_owned(),
                ))
                .build(),
        )
        .build();
    let tracer = provider.tracer("users-api");
    let tracing = Tracing {
        _provider: provider,
        collector,
        client,
        // One document per invocation, its subsegments nested: one datagram, not one per span.
        translator: SegmentTranslator::new().always_nest_subsegments(),
    };
    TRACING.set(tracing).ok()?;
    Some(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_filter(filter_fn(|meta| meta.is_span() && meta.target() == TARGET)),
    )
}

/// Whether tracing is on in this process.
pub fn enabled() -> bool {
    TRACING.get().is_some()
}

/// The OpenTelemetry parent of an invocation whose trace header (the Lambda context's
/// `xray_trace_id`) is `header`: sampled or not, as the header says. `None` without a header.
pub fn parent(header: Option<&str>) -> Option<Context> {
    let span_context = span_context_from_str(header?)?;
    Some(Context::new().with_remote_span_context(span_context))
}

/// The trace id in an invocation's trace header.
pub fn trace_id(header: Option<&str>) -> Option<TraceId> {
    span_context_from_str(header?).map(|c| c.trace_id())
}

/// The handler's span of an invocation whose trace header is `header`: the top-level subsegment,
/// under Lambda's function segment. A span that records nothing when tracing is off.
pub fn handler(function: &'static str, method: &str, route: &str, header: Option<&str>) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: TARGET,
        "handler",
        otel.name = function,
        http.request.method = method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if let Some(parent) = parent(header) {
        let _ = span.set_parent(parent);
    }
    span
}

/// Records the status the handler answered with on its span: a 5xx marks it as a fault.
pub fn record_status(span: &Span, status: u16) {
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "error");
    }
}

/// The span of one attempt of a DynamoDB call: its own subsegment (named `DynamoDB`, the
/// service-map node), with the operation, table and attempt number; [`record_attempt`] adds how
/// it ended.
pub fn dynamodb_attempt(operation: &'static str, table: &str, attempt: u32) -> Span {
    if !enabled() {
        return Span::none();
    }
    let method = operation.split(' ').next().unwrap_or(operation);
    tracing::info_span!(
        target: TARGET,
        "DynamoDB",
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        rpc.system = "aws-api",
        rpc.service = "DynamoDB",
        rpc.method = method,
        aws.operation = method,
        annotation.operation = operation,
        annotation.table = table,
        annotation.attempt = attempt,
        annotation.outcome = tracing::field::Empty,
        annotation.error_kind = tracing::field::Empty,
        metadata.backoff_ms = tracing::field::Empty,
    )
}

/// How a DynamoDB attempt ended: `ok`, `retried` (with the error's kind and the backoff before
/// the next attempt) or `failed` (not retried: permanent, or given up).
pub fn record_attempt(
    span: &Span,
    outcome: &'static str,
    error_kind: Option<&str>,
    backoff: Option<Duration>,
) {
    span.record("annotation.outcome", outcome);
    if let Some(kind) = error_kind {
        span.record("annotation.error_kind", kind);
        span.record("otel.status_code", "error");
    }
    if let Some(backoff) = backoff {
        span.record("metadata.backoff_ms", backoff.as_millis() as u64);
    }
}

/// A span of our own work inside the handler (`Argon2id hash`, `login limit`).
pub fn work(name: &'static str) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::info_span!(target: TARGET, "work", otel.name = name)
}

/// The ids that lead from a Sentry event or a log line to the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceIds {
    /// The trace id as X-Ray writes it (`1-5759e988-bd862e3fe1be46a994272793`), for X-Ray's search.
    pub xray: String,
    /// The same 128 bits in hex, as OpenTelemetry and Sentry write a trace id.
    pub trace_id: String,
    /// The handler's subsegment when traced, else Lambda's function segment (the header's parent).
    pub span_id: String,
}

/// The trace id of the invocation whose trace header is `header`, as X-Ray writes it
/// (`1-5759e988-bd862e3fe1be46a994272793`), when the header says the request is sampled: only
/// then does a trace exist to go to. What the log lines and the EMF document carry.
pub fn sampled_xray_id(header: Option<&str>) -> Option<String> {
    let context = span_context_from_str(header?)?;
    context.is_sampled().then(|| {
        let hex = context.trace_id().to_string();
        format!("1-{}-{}", &hex[..8], &hex[8..])
    })
}

/// The [`TraceIds`] of the handler span `span` in the invocation whose trace header is `header`.
pub fn ids(span: &Span, header: Option<&str>) -> Option<TraceIds> {
    let from_header = span_context_from_str(header?)?;
    let traced = span.context().span().span_context().clone();
    let span_id = if traced.is_valid() && traced.trace_id() == from_header.trace_id() {
        traced.span_id()
    } else {
        from_header.span_id()
    };
    let hex = from_header.trace_id().to_string();
    Some(TraceIds {
        xray: format!("1-{}-{}", &hex[..8], &hex[8..]),
        trace_id: hex,
        span_id: span_id.to_string(),
    })
}

/// Sends the ended spans of the trace `header` names to the daemon, as segment documents; what
/// failed to send is dropped, never waited on. Called once the response
/// has been posted.
pub fn export(header: Option<&str>) {
    let (Some(tracing), Some(trace)) = (TRACING.get(), trace_id(header)) else {
        return;
    };
    let spans = tracing.collector.take(trace);
    if spans.is_empty() {
        return;
    }
    for document in tracing.translator.translate_spans(&spans) {
        let mut buf = Vec::with_capacity(1024);
        buf.extend_from_slice(DAEMON_HEADER);
        document.to_writer(&mut buf);
        tracing.client.send(&buf);
    }
}

/// `host:port`, as Lambda sets it (`169.254.79.129:2000`); `localhost` is loopback.
fn parse_daemon_address(value: &str) -> Option<SocketAddr> {
    let value = value.trim();
    if let Ok(address) = value.parse() {
        return Some(address);
    }
    let (host, port) = value.rsplit_once(':')?;
    let port = port.parse().ok()?;
    (host == "localhost").then_some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
}

/// The header the daemon expects before each document.
const DAEMON_HEADER: &[u8] = b"{\"format\": \"json\", \"version\": 1}\n";

/// A non-blocking UDP socket connected to the daemon.
#[derive(Debug)]
struct DaemonClient {
    socket: UdpSocket,
}

impl DaemonClient {
    fn new(daemon: SocketAddr) -> std::io::Result<Self> {
        let local: IpAddr = match daemon.ip() {
            IpAddr::V4(ip) if ip.is_loopback() => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            IpAddr::V6(ip) if ip.is_loopback() => Ipv6Addr::LOCALHOST.into(),
            IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let socket = UdpSocket::bind((local, 0))?;
        socket.set_nonblocking(true)?;
        socket.connect(daemon)?;
        Ok(Self { socket })
    }

    fn send(&self, datagram: &[u8]) {
        // No daemon listening, a full buffer or a document over 64 KB: the trace is lost, the
        // request is not held up.
        let _ = self.socket.send(datagram);
    }
}

/// Each trace's ended spans, kept apart until its invocation ends.
#[derive(Debug, Default)]
struct Collector {
    traces: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    spans: HashMap<TraceId, Vec<SpanData>>,
    order: std::collections::VecDeque<TraceId>,
}

impl Collector {
    fn push(&self, span: SpanData) {
        let trace = span.span_context.trace_id();
        let mut pending = self
            .traces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !pending.spans.contains_key(&trace) {
            if pending.order.len() >= MAX_PENDING_TRACES
                && let Some(oldest) = pending.order.pop_front()
            {
                pending.spans.remove(&oldest);
            }
            pending.order.push_back(trace);
        }
        let spans = pending.spans.entry(trace).or_default();
        if spans.len() < MAX_SPANS_PER_TRACE {
            spans.push(span);
        }
    }

    fn take(&self, trace: TraceId) -> Vec<SpanData> {
        let mut pending = self
            .traces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.order.retain(|t| *t != trace);
        pending.spans.remove(&trace).unwrap_or_default()
    }
}

/// The span processor: every ended, sampled span goes to the [`Collector`].
#[derive(Debug)]
struct Forward(Arc<Collector>);

impl SpanProcessor for Forward {
    fn on_start(&self, _span: &mut OtelSpan, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.0.push(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn daemon_addresses_are_host_and_port() {
        assert_eq!(
            parse_daemon_address("169.254.79.129:2000"),
            Some("169.254.79.129:2000".parse().unwrap())
        );
        assert_eq!(
            parse_daemon_address("localhost:2000"),
            Some("127.0.0.1:2000".parse().unwrap())
        );
        assert_eq!(parse_daemon_address("nowhere"), None);
        assert_eq!(parse_daemon_address("example.com:2000"), None);
    }

    #[test]
    fn the_trace_header_gives_the_parent_and_its_sampling() {
        let sampled = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let unsampled =
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0";
        let cx = parent(Some(sampled)).expect("a parent");
        assert!(cx.span().span_context().is_sampled());
        assert!(cx.span().span_context().is_remote());
        assert!(
            !parent(Some(unsampled))
                .unwrap()
                .span()
                .span_context()
                .is_sampled()
        );
        assert_eq!(
            trace_id(Some(sampled)).map(|t| t.to_string()),
            Some("5759e988bd862e3fe1be46a994272793".to_owned())
        );
        assert!(parent(None).is_none());
        assert!(parent(Some("garbage")).is_none());
        assert_eq!(
            sampled_xray_id(Some(sampled)).as_deref(),
            Some("1-5759e988-bd862e3fe1be46a994272793")
        );
        assert_eq!(sampled_xray_id(Some(unsampled)), None);
        assert_eq!(sampled_xray_id(None), None);
    }
}
