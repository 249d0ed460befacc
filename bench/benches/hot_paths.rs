//! Micro-benchmarks of the code every request runs through: the error body, the EMF document, a
//! log line, request parsing and validation. `make bench` runs them with short measurement times;
//! `cargo bench -p lambda-bench --bench hot_paths` runs them alone.
//!
//! Which of these the client waits for: the error body, parsing, and the request span with its
//! access line are written before the response is returned; the EMF document is built and printed
//! after the runtime has posted the response (shared::telemetry::TelemetryLayer).

#![allow(missing_docs)]

use std::{
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::Map;
use shared::{
    ApiError, FieldError,
    domain::NewUser,
    json::JsonObject,
    telemetry::{Outcome, Scope, emf, logs::JsonLines},
};
use tracing_subscriber::layer::SubscriberExt as _;

const REQUEST_ID: &str = "c6af9ac6-7b61-11e6-9a41-93e8deadb004";
const VALID: &[u8] =
    br#"{"email": " Ada@Example.com ", "name": "Ada Lovelace", "password": "correct horse battery"}"#;
const INVALID: &[u8] = br#"{"email": "not-an-email", "name": "", "password": "short"}"#;

fn validation_error() -> ApiError {
    ApiError::Validation(vec![
        FieldError::member("email", "must be a valid email address"),
        FieldError::member("name", "must not be empty"),
        FieldError::member("password", "must be at least 8 characters"),
    ])
}

fn error_body(c: &mut Criterion) {
    c.bench_function("error body: 422 with 3 field errors, into_response", |b| {
        b.iter_batched(
            validation_error,
            |err| err.into_response(black_box(REQUEST_ID)),
            BatchSize::SmallInput,
        );
    });
    c.bench_function("error body: 409, into_response", |b| {
        b.iter_batched(
            || ApiError::UserExists,
            |err| err.into_response(black_box(REQUEST_ID)),
            BatchSize::SmallInput,
        );
    });
}

/// What `POST /users` runs on a body: the JSON parse and the handler's own parse.
fn parse_new_user(body: &[u8]) -> Result<NewUser, ApiError> {
    create_user::parse(JsonObject::parse(body)?)
}

fn parsing(c: &mut Criterion) {
    c.bench_function("parse + validate sign-up body: valid", |b| {
        b.iter(|| parse_new_user(black_box(VALID)));
    });
    c.bench_function("parse + validate sign-up body: 3 invalid fields", |b| {
        b.iter(|| parse_new_user(black_box(INVALID)));
    });
}

fn emf_document(c: &mut Criterion) {
    let scope = Scope::new("create_user", REQUEST_ID, Some("Root=1-abc".into()));
    scope.set_outcome(Outcome {
        request_id: REQUEST_ID.into(),
        status: 422,
        latency_ms: 0.123,
        code: Some("validation_error"),
    });
    c.bench_function("EMF: Scope::document (per-request metrics)", |b| {
        b.iter(|| black_box(&scope).document());
    });
    c.bench_function(
        "EMF: Scope::document to a line (the access line, as printed)",
        |b| {
            b.iter(|| {
                let mut line = black_box(&scope).document().to_string();
                line.push('\n');
                line
            });
        },
    );
    let mut set = emf::MetricSet::default();
    set.add("Requests", 1.0);
    set.push("DynamoDbLatency", 3.5);
    set.push("DynamoDbLatency", 4.5);
    let config = emf::EmfConfig {
        namespace: "UsersApi".into(),
        service: "users-api".into(),
    };
    c.bench_function("EMF: MetricSet::document (2 metrics)", |b| {
        b.iter(|| {
            black_box(&set).document(
                &config,
                &[("Service", "users-api"), ("Function", "create_user")],
                Map::new(),
                1,
            )
        });
    });
}

/// What a 4xx logs while the client waits: the request span only (its access line is the EMF
/// document, written after the response).
fn log_line(c: &mut Criterion) {
    let bytes = Arc::new(AtomicUsize::new(0));
    let sink = Arc::clone(&bytes);
    let subscriber = tracing_subscriber::registry().with(JsonLines::to(move |line| {
        sink.fetch_add(line.len(), Ordering::Relaxed);
    }));
    tracing::subscriber::with_default(subscriber, || {
        c.bench_function(
            "log line: request span (all a 4xx logs before its response)",
            |b| {
                b.iter(|| {
                    let span = tracing::info_span!(
                        "request",
                        request_id = REQUEST_ID,
                        lambda_request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
                        xray_trace_id = "1-6564a2b0-5f0c1d2e3a4b5c6d7e8f9a0b",
                    );
                    let _entered = black_box(&span).enter();
                });
            },
        );
    });
    assert_eq!(
        bytes.load(Ordering::Relaxed),
        0,
        "a span alone writes nothing"
    );
}

criterion_group! {
    name = hot_paths;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30);
    targets = error_body, parsing, emf_document, log_line
}
criterion_main!(hot_paths);
