//! Logs: one JSON object a line inside Lambda, pretty and coloured in a terminal; `LOG_FORMAT`
//! switches.
//!
//! JSON lines carry `timestamp`, `level`, `target`, `message`, the event's own fields, and the fields
//! of every span the event is in: inside a request that is `request_id`, `lambda_request_id` and,
//! when the request is traced, `xray_trace_id`. What is the same on every line of a sandbox (the
//! function, the route) is not repeated: CloudWatch's log group names the function. Every value
//! goes through a JSON encoder, so user input (newlines, quotes, control characters) can never
//! break a line or forge a field. An error field is written as its message plus `<field>.chain`,
//! the messages of its whole cause chain.
//!
//! A request's access line is not written here: in JSON it is the invocation's EMF document
//! ([`super::emf`], [`super::Scope::finish`]), one line per request after the response; in a
//! terminal it is an `access` event written at the same moment.

use std::{fmt, io::Write as _};

use serde_json::{Map, Value};
use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
    level_filters::LevelFilter,
    span::{Attributes, Id, Record},
};
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::{FilterExt as _, filter_fn},
    layer::{Context, SubscriberExt as _},
    registry::LookupSpan,
    util::SubscriberInitExt as _,
};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object a line, for CloudWatch Logs Insights.
    Json,
    /// Human-readable and coloured, for a terminal.
    Pretty,
}

impl LogFormat {
    /// `LOG_FORMAT=json|pretty`; without it, JSON inside Lambda (or when Lambda's own log format is
    /// JSON) and pretty elsewhere. `lookup` reads a variable ([`crate::config`]).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        match lookup("LOG_FORMAT").map(|v| v.to_ascii_lowercase()) {
            Some(v) if v == "json" => Self::Json,
            Some(v) if v == "pretty" => Self::Pretty,
            _ if lookup("AWS_LAMBDA_LOG_FORMAT")
                .is_some_and(|v| v.eq_ignore_ascii_case("json")) =>
            {
                Self::Json
            }
            _ if lookup("AWS_LAMBDA_RUNTIME_API").is_some()
                && lookup("CARGO_LAMBDA_VERSION").is_none() =>
            {
                Self::Json
            }
            _ => Self::Pretty,
        }
    }
}

/// The crates whose lines follow [`LogLevels::ours`]: the shared crate, and the function's own
/// crate (its name is the function's name), added by [`LogLevels::directive`].
pub const OUR_CRATES: &[&str] = &["shared"];

/// How much is logged: the configured level applies to this project's crates only.
///
/// The level is ours to apply, not Lambda's: Lambda's own filter (`ApplicationLogLevel`) counts a
/// JSON line without a `level` as INFO, so at WARN it would drop every EMF document and the
/// metrics with it. template.yaml therefore keeps Lambda's level at INFO or more verbose and
/// passes the chosen `LogLevel` as `LOG_LEVEL`, which this filter applies to log lines only.
///
/// Dependencies stay at `info` or less even at `TRACE`, because below it they print what must never
/// reach a log: lambda_runtime logs every raw event (password, bearer token, API key, email) and
/// the AWS SDK logs request and response bodies (emails, password hashes). Someone who needs their
/// detail while debugging asks for it separately, knowing what it prints:
/// `DEPENDENCY_LOG_LEVEL=debug`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLevels {
    /// The level of our crates: `LOG_LEVEL` (template.yaml's `LogLevel`), then
    /// `AWS_LAMBDA_LOG_LEVEL` (Lambda's application log level), then `RUST_LOG`, as a level;
    /// `info` when none is a level.
    pub ours: LevelFilter,
    /// The level of everything else: `DEPENDENCY_LOG_LEVEL`, else [`LogLevels::ours`] but never
    /// below `info`.
    pub dependencies: LevelFilter,
}

impl LogLevels {
    /// Reads the levels through `lookup` ([`crate::config`]).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let level = |name: &str| lookup(name).and_then(|v| parse_level(&v));
        let ours = level("LOG_LEVEL")
            .or_else(|| level("AWS_LAMBDA_LOG_LEVEL"))
            .or_else(|| level("RUST_LOG"))
            .unwrap_or(LevelFilter::INFO);
        let dependencies =
            level("DEPENDENCY_LOG_LEVEL").unwrap_or_else(|| ours.min(LevelFilter::INFO));
        Self { ours, dependencies }
    }

    /// The filter directive for the function `function` (also its crate's name).
    pub fn directive(&self, function: &str) -> String {
        let mut directive = self.dependencies.to_string().to_ascii_lowercase();
        let ours = self.ours.to_string().to_ascii_lowercase();
        for target in OUR_CRATES.iter().copied().chain([function]) {
            directive.push_str(&format!(",{target}={ours}"));
        }
        directive
    }
}

impl Default for LogLevels {
    fn default() -> Self {
        Self {
            ours: LevelFilter::INFO,
            dependencies: LevelFilter::INFO,
        }
    }
}

/// A level name as Lambda and `RUST_LOG` spell them, any case; Lambda's `FATAL` is `error`.
fn parse_level(value: &str) -> Option<LevelFilter> {
    match value.trim().to_ascii_lowercase().as_str() {
        "trace" => Some(LevelFilter::TRACE),
        "debug" => Some(LevelFilter::DEBUG),
        "info" => Some(LevelFilter::INFO),
        "warn" | "warning" => Some(LevelFilter::WARN),
        "error" | "fatal" => Some(LevelFilter::ERROR),
        "off" => Some(LevelFilter::OFF),
        _ => None,
    }
}

/// Installs the global subscriber with `levels` for the function `function`; a second call does
/// nothing.
///
/// The filter is the log layer's own, not the subscriber's: X-Ray's spans ([`super::xray`], target
/// `xray`) never reach the log lines, and the log level never hides them, as it never hides
/// metrics. `xray_daemon` turns traces on ([`super::xray::layer`]).
pub fn init(format: LogFormat, levels: LogLevels, function: &str, xray_daemon: Option<&str>) {
    let _ = SETTINGS.set((format, levels.ours));
    let filter =
        EnvFilter::try_new(levels.directive(function)).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = filter.and(filter_fn(|meta| meta.target() != super::xray::TARGET));
    let registry = tracing_subscriber::registry().with(super::xray::layer(xray_daemon, function));
    let _ = match format {
        LogFormat::Json => registry
            .with(JsonLines::stdout().with_filter(logs))
            .try_init(),
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().pretty().with_filter(logs))
            .try_init(),
    };
}

/// The format and our level, as [`init`] set them.
static SETTINGS: std::sync::OnceLock<(LogFormat, LevelFilter)> = std::sync::OnceLock::new();

/// The lines are JSON (also before [`init`], as in the in-process tests).
pub fn json() -> bool {
    SETTINGS
        .get()
        .is_none_or(|(format, _)| *format == LogFormat::Json)
}

/// Our crates' level lets INFO lines through (also before [`init`]).
pub fn info_enabled() -> bool {
    SETTINGS
        .get()
        .is_none_or(|(_, ours)| *ours >= LevelFilter::INFO)
}

/// Writes one finished JSON line to stdout ([`write_stdout`]).
pub fn write_stdout_line(line: &Value) {
    let mut text = line.to_string();
    text.push('\n');
    write_stdout(&text);
}

/// Writes finished lines to stdout, where Lambda sends them to CloudWatch Logs: one `write`, so
/// concurrent lines never interleave within a line.
fn write_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Now, as every line's `timestamp` is written (RFC 3339, microseconds, UTC).
pub fn timestamp() -> Value {
    Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// Where finished lines go.
type Sink = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// The JSON-lines layer: keeps each span's fields, writes each event as one line.
#[derive(Clone)]
pub struct JsonLines {
    sink: Sink,
}

impl fmt::Debug for JsonLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JsonLines")
    }
}

impl JsonLines {
    /// Lines to stdout, where Lambda sends them to CloudWatch Logs.
    pub fn stdout() -> Self {
        Self::to(write_stdout)
    }

    /// Lines to `sink` (each ends with a newline).
    pub fn to(sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            sink: std::sync::Arc::new(sink),
        }
    }
}

/// A span's fields, kept in the span's extensions.
#[derive(Debug, Default)]
struct SpanFields(Map<String, Value>);

impl<S> Layer<S> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attrs.record(&mut JsonVisitor(&mut fields.0));
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            values.record(&mut JsonVisitor(&mut fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        (self.sink)(&render(event, &ctx));
    }
}

fn render<S>(event: &Event<'_>, ctx: &Context<'_, S>) -> String
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let metadata = event.metadata();
    let mut line = Map::new();
    line.insert("timestamp".into(), timestamp());
    line.insert("level".into(), Value::from(metadata.level().as_str()));
    line.insert("target".into(), Value::from(metadata.target()));
    if let Some(scope) = ctx.event_scope(event) {
        for span in scope.from_root() {
            if let Some(fields) = span.extensions().get::<SpanFields>() {
                for (name, value) in &fields.0 {
                    line.insert(name.clone(), value.clone());
                }
            }
        }
    }
    let mut fields = Map::new();
    event.record(&mut JsonVisitor(&mut fields));
    line.extend(fields);
    let mut text = serde_json::to_string(&line).unwrap_or_else(|_| {
        r#"{"level":"ERROR","message":"a log line could not be encoded"}"#.to_owned()
    });
    text.push('\n');
    text
}

/// Records tracing fields as JSON values.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // Three decimals are plenty for milliseconds, and keep lines short.
        let rounded = (value * 1000.0).round() / 1000.0;
        self.0.insert(field.name().into(), Value::from(rounded));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), Value::from(value.to_string()));
        let mut chain = Vec::new();
        let mut source = value.source();
        while let Some(cause) = source {
            chain.push(Value::from(cause.to_string()));
            source = cause.source();
        }
        self.0
            .insert(format!("{}.chain", field.name()), Value::Array(chain));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Mutex};

    use super::*;

    fn capture(f: impl FnOnce()) -> Vec<Value> {
        let lines = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&lines);
        let subscriber = tracing_subscriber::registry().with(JsonLines::to(move |line| {
            sink.lock().unwrap().push_str(line)
        }));
        tracing::subscriber::with_default(subscriber, f);
        let text = lines.lock().unwrap().clone();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn hostile_text_stays_on_one_line_and_span_fields_reach_every_line() {
        let hostile = "a\nb\"c\u{0}\u{1b}[31m\r\n{\"level\":\"ERROR\"}";
        let lines = capture(|| {
            let span = tracing::info_span!(
                "request",
                request_id = "r-1",
                status = tracing::field::Empty
            );
            let _entered = span.enter();
            tracing::info!(input = hostile, "first");
            span.record("status", 201_u16);
            tracing::warn!(latency_ms = 1.23456, "second");
        });
        assert_eq!(lines.len(), 2, "one line per event, whatever the input");
        assert_eq!(lines[0]["input"], hostile);
        assert_eq!(lines[0]["request_id"], "r-1");
        assert_eq!(lines[0]["message"], "first");
        assert_eq!(lines[0]["level"], "INFO");
        assert!(lines[0].get("status").is_none());
        assert_eq!(lines[1]["status"], 201);
        assert_eq!(lines[1]["latency_ms"], 1.235);
        assert_eq!(lines[1]["level"], "WARN");
        assert!(lines[1]["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn errors_carry_their_cause_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let err = Outer(std::io::Error::other("inner"));
        let lines = capture(|| {
            tracing::error!(error = &err as &dyn std::error::Error, "failed");
        });
        assert_eq!(lines[0]["error"], "outer");
        assert_eq!(lines[0]["error.chain"], serde_json::json!(["inner"]));
    }
}
