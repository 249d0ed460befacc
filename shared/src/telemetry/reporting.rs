//! Sentry: error events for 5xx responses and panics (and 4xx when `SENTRY_CAPTURE_4XX=true`), with
//! the detail and status the user saw.
//!
//! `SENTRY_DSN` turns it on; without it nothing is sent and nothing else changes. The environment is
//! the stage, the release `users-api@<version>`, default PII is off. Each event is captured on a
//! hub of its own, so concurrent invocations never share scope data, and no breadcrumbs are
//! recorded at all: an event can never carry another request's data, an email or a password.
//!
//! `before_send` moves what the boundary attached (the response's status and detail) into
//! `extra.http_exception_detail`, `extra.status_code` and the tag `http_status`, next to the tags
//! `request_id` and `function`, and strips request and user data.

use std::{
    borrow::Cow,
    sync::{Arc, OnceLock},
    time::Duration,
};

use sentry::protocol::{Context, Event, Level, Mechanism};

use super::PanicReport;
use crate::config::Config;

/// Settings read at start-up.
#[derive(Debug, Clone, Copy)]
struct Settings {
    capture_4xx: bool,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Where the boundary puts what `before_send` turns into the seed's fields.
const RESPONSE_CONTEXT: &str = "http_response";

/// Starts Sentry when `SENTRY_DSN` is set and valid. The DSN itself is never logged.
pub fn init(config: &Config) -> Option<sentry::ClientInitGuard> {
    let dsn = config.sentry_dsn.as_deref()?;
    let dsn = match dsn.parse::<sentry::types::Dsn>() {
        Ok(dsn) => dsn,
        Err(_) => {
            tracing::warn!("SENTRY_DSN is not a valid DSN; Sentry stays off");
            return None;
        }
    };
    let _ = SETTINGS.set(Settings {
        capture_4xx: config.sentry_capture_4xx,
    });
    let mut options = sentry::ClientOptions::default();
    options.dsn = Some(dsn);
    options.environment = Some(Cow::Owned(config.stage.clone()));
    options.release = Some(Cow::Owned(format!(
        "users-api@{}",
        env!("CARGO_PKG_VERSION")
    )));
    options.send_default_pii = false;
    options.max_breadcrumbs = 0;
    options.attach_stacktrace = false;
    options.before_send = Some(Arc::new(before_send));
    options.shutdown_timeout = super::SENTRY_FLUSH_TIMEOUT;
    Some(sentry::init(options))
}

/// Whether Sentry is on.
pub fn enabled() -> bool {
    sentry::Hub::main().client().is_some_and(|c| c.is_enabled())
}

/// What the boundary knows about a failed request.
#[derive(Debug)]
pub struct Failure<'a> {
    /// The error, with its cause chain.
    pub error: &'a (dyn std::error::Error + 'static),
    /// The status the client got.
    pub status: u16,
    /// The `detail` the client got.
    pub detail: &'a str,
    /// The contract's request id.
    pub request_id: &'a str,
    /// The function.
    pub function: &'static str,
    /// The route, as `METHOD /path`.
    pub route: &'a str,
    /// The panic, when the failure was one.
    pub panic: Option<&'a PanicReport>,
    /// The invocation's trace, when Lambda traced it: the event's trace context and its
    /// `xray_trace_id` tag lead to it in X-Ray.
    pub trace: Option<super::xray::TraceIds>,
}

/// Sends `failure` to Sentry when it should be sent: every 5xx and panic, a 4xx only when
/// `SENTRY_CAPTURE_4XX=true`. Returns whether an event was queued. Never waits for the network.
pub fn capture(failure: &Failure<'_>) -> bool {
    let Some(settings) = SETTINGS.get() else {
        return false;
    };
    if failure.status < 500 && !settings.capture_4xx {
        return false;
    }
    if !enabled() {
        return false;
    }
    let mut event = sentry::event_from_error(failure.error);
    event.level = if failure.status >= 500 {
        Level::Error
    } else {
        Level::Warning
    };
    event.transaction = Some(failure.route.to_owned());
    if let Some(panic) = failure.panic
        && let Some(exception) = event.exception.values.last_mut()
    {
        exception.ty = "panic".to_owned();
        exception.value = Some(match &panic.location {
            Some(location) => format!("{} at {location}", panic.message),
            None => panic.message.clone(),
        });
        exception.mechanism = Some(Mechanism {
            ty: "panic".to_owned(),
            handled: Some(false),
            ..Default::default()
        });
        exception.stacktrace = panic.stacktrace.clone();
    }
    let mut response = std::collections::BTreeMap::new();
    response.insert("status".to_owned(), failure.status.into());
    response.insert("detail".to_owned(), failure.detail.into());
    event
        .contexts
        .insert(RESPONSE_CONTEXT.to_owned(), Context::Other(response));
    event
        .tags
        .insert("request_id".to_owned(), failure.request_id.to_owned());
    event
        .tags
        .insert("function".to_owned(), failure.function.to_owned());
    if let Some(trace) = &failure.trace {
        event
            .tags
            .insert("xray_trace_id".to_owned(), trace.xray.clone());
        if let (Ok(trace_id), Ok(span_id)) = (trace.trace_id.parse(), trace.span_id.parse()) {
            event.contexts.insert(
                "trace".to_owned(),
                Context::Trace(Box::new(sentry::protocol::TraceContext {
                    trace_id,
                    span_id,
                    op: Some("http.server".to_owned()),
                    ..Default::default()
                })),
            );
        }
    }
    let hub = sentry::Hub::new_from_top(sentry::Hub::main());
    hub.capture_event(event);
    true
}

/// Adds the seed's fields from the response context and strips request and user data.
pub fn before_send(mut event: Event<'static>) -> Option<Event<'static>> {
    if let Some(Context::Other(response)) = event.contexts.remove(RESPONSE_CONTEXT) {
        if let Some(detail) = response.get("detail") {
            event
                .extra
                .insert("http_exception_detail".to_owned(), detail.clone());
        }
        if let Some(status) = response.get("status") {
            event.extra.insert("status_code".to_owned(), status.clone());
            event
                .tags
                .insert("http_status".to_owned(), status.to_string());
        }
    }
    event.request = None;
    event.user = None;
    event.breadcrumbs.values.clear();
    Some(event)
}

/// Waits, at most `timeout`, for queued events to be sent. Runs on a blocking thread: the SDK's
/// flush blocks.
pub async fn flush(timeout: Duration) {
    let Some(client) = sentry::Hub::main().client() else {
        return;
    };
    let _ = tokio::task::spawn_blocking(move || client.flush(Some(timeout))).await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn before_send_adds_the_seed_fields_and_strips_user_data() {
        let mut event = Event::default();
        let mut response = std::collections::BTreeMap::new();
        response.insert("status".to_owned(), 503.into());
        response.insert(
            "detail".to_owned(),
            "Service temporarily unavailable, please retry".into(),
        );
        event
            .contexts
            .insert(RESPONSE_CONTEXT.to_owned(), Context::Other(response));
        event.user = Some(sentry::User {
            email: Some("ada@example.com".into()),
            ..Default::default()
        });
        let event = before_send(event).unwrap();
        assert_eq!(
            event.extra["http_exception_detail"],
            "Service temporarily unavailable, please retry"
        );
        assert_eq!(event.extra["status_code"], 503);
        assert_eq!(event.tags["http_status"], "503");
        assert!(event.user.is_none());
        assert!(!event.contexts.contains_key(RESPONSE_CONTEXT));
    }
}
