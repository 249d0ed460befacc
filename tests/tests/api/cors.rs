//! CORS on every outcome of a function, in-process: an allowed, a disallowed and no `Origin` on a
//! success, a 4xx, a 5xx, a panic and a misconfigured start; no CORS header at all with an empty
//! list; a preflight that reaches a function answered without running its handler.
//!
//! Every reply the suite sees is also held to the CORS rules by `Reply::from_wire`
//! (`api_tests::assert_cors`); the tests here make sure each outcome is seen with each origin.

use std::sync::Arc;

use api_tests::{
    DEFAULT_INVOCATION_TIME, Function, Harness, Reply, TEST_ALLOWED_ORIGINS, event, functions,
    serve, wire_headers, with_body, with_header,
};
use serde_json::Value;
use shared::{ApiRequest, App, HandlerResult, Route};
use tower::ServiceExt as _;

const ALLOWED: &str = "https://app.example.com";

/// Origins that must never be echoed: another site, a look-alike, another scheme or port of an
/// allowed one, and the opaque origin of a sandboxed page or a file.
const DISALLOWED: &[&str] = &[
    "https://evil.example.net",
    "https://app.example.com.evil.example.net",
    "http://app.example.com",
    "https://app.example.com:8443",
    "null",
];

/// The same event with each kind of Origin: (label, event).
fn with_each_origin(sample: &Value) -> Vec<(String, Value)> {
    let mut cases = vec![
        ("no Origin".to_owned(), sample.clone()),
        (
            format!("allowed {ALLOWED}"),
            with_header(sample.clone(), "Origin", ALLOWED),
        ),
        (
            "allowed by port wildcard".to_owned(),
            with_header(sample.clone(), "origin", "http://localhost:5173"),
        ),
    ];
    for origin in DISALLOWED {
        cases.push((
            format!("disallowed {origin}"),
            with_header(sample.clone(), "Origin", origin),
        ));
    }
    cases
}

/// Asserts what `Reply::from_wire` does not know: the status the case is about.
fn assert_status(label: &str, reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{label}: {reply:#?}");
    if label.contains(", allowed") {
        assert!(
            reply.header("access-control-allow-origin").is_some(),
            "{label}: {reply:#?}"
        );
    } else {
        assert_eq!(reply.header("access-control-allow-origin"), None, "{label}");
    }
}

async fn panicking(_app: Arc<App>, _req: ApiRequest) -> HandlerResult {
    panic!("a test-only handler panicked on purpose");
}

#[tokio::test]
async fn every_outcome_carries_cors_for_allowed_origins_only() {
    let h = Harness::shared().await;
    let closed = h.app_with_endpoint(&api_tests::closed_endpoint()).await;
    let sign_up = event("create_user", "ok");
    for (label, sample) in with_each_origin(&sign_up) {
        // A fresh email per case: each one is a real 201.
        let email = format!("cors-{}@example.com", uuid::Uuid::new_v4().simple());
        let body =
            serde_json::json!({"email": email, "name": "Ada", "password": "correct horse battery"});
        let sample = with_body(sample, body.to_string());
        let reply = h.invoke(functions::create_user(), sample.clone()).await;
        assert_status(&format!("201, {label}"), &reply, 201);

        let reply = h
            .invoke(functions::create_user(), with_body(sample.clone(), "{}"))
            .await;
        assert_status(&format!("422, {label}"), &reply, 422);

        let reply = api_tests::invoke_with(
            Arc::clone(&closed),
            functions::create_user(),
            sample.clone(),
        )
        .await;
        assert_status(&format!("503, {label}"), &reply, 503);

        let function = Function {
            name: "panicking",
            route: functions::create_user().route,
            handler: panicking,
        };
        let reply = h.invoke(function, sample.clone()).await;
        assert_status(&format!("panic, {label}"), &reply, 500);

        let misconfigured = serve(
            Err(Arc::new("TABLE_NAME is not set".into())),
            functions::create_user(),
            sample.clone(),
            DEFAULT_INVOCATION_TIME,
            TEST_ALLOWED_ORIGINS,
        )
        .await;
        assert_status(
            &format!("misconfigured start, {label}"),
            &misconfigured,
            500,
        );
    }
}

#[tokio::test]
async fn an_empty_list_means_no_cors_header_anywhere() {
    let h = Harness::shared().await;
    let sample = with_header(event("create_user", "invalid_fields"), "Origin", ALLOWED);
    for (what, reply) in [
        (
            "422",
            serve(
                Ok(h.app.clone()),
                functions::create_user(),
                sample.clone(),
                DEFAULT_INVOCATION_TIME,
                "",
            )
            .await,
        ),
        (
            "misconfigured start",
            serve(
                Err(Arc::new("TABLE_NAME is not set".into())),
                functions::create_user(),
                sample.clone(),
                DEFAULT_INVOCATION_TIME,
                "",
            )
            .await,
        ),
    ] {
        let cors: Vec<_> = reply
            .headers
            .keys()
            .filter(|name| name.starts_with("access-control-") || *name == "vary")
            .collect();
        assert!(cors.is_empty(), "{what}: {cors:?}");
    }
}

#[tokio::test]
async fn a_method_the_route_does_not_serve_is_a_405_with_allow() {
    let h = Harness::new().await;
    for (method, function) in [
        ("TRACE", functions::create_user()),
        ("PUT", functions::create_user()),
        ("GET", functions::create_user()),
    ] {
        let mut sample = with_header(event("create_user", "ok"), "Origin", ALLOWED);
        sample["httpMethod"] = Value::from(method);
        let reply = h.invoke(function, sample).await;
        reply.assert_error(405, "method_not_allowed");
        assert_eq!(reply.header("allow"), Some("POST,OPTIONS"), "{method}");
        assert_eq!(reply.header("access-control-allow-origin"), Some(ALLOWED));
    }
    assert!(
        h.items().await.is_empty(),
        "a refused method changes nothing"
    );
}

#[tokio::test]
async fn a_preflight_that_reaches_a_function_is_answered_without_the_handler() {
    let h = Harness::shared().await;
    let (origins, _) = shared::cors::AllowedOrigins::parse(TEST_ALLOWED_ORIGINS);
    for (origin, allowed) in [(ALLOWED, true), ("https://evil.example.net", false)] {
        let mut sample = with_header(event("create_user", "ok"), "Origin", origin);
        sample = with_header(sample, "Access-Control-Request-Method", "POST");
        sample = with_header(
            sample,
            "Access-Control-Request-Headers",
            "content-type,authorization",
        );
        sample["httpMethod"] = Value::from("OPTIONS");
        let request: lambda_http::request::LambdaRequest =
            serde_json::from_value(sample).expect("an event");
        let service = shared::runtime::service(
            "create_user",
            Route::new("POST", "/users"),
            Ok(h.app.clone()),
            panicking,
            &origins,
        );
        let response = lambda_http::Adapter::from(service)
            .oneshot(lambda_runtime::LambdaEvent::new(
                request,
                lambda_runtime::Context::default(),
            ))
            .await
            .unwrap_or_else(|never| match never {});
        let wire = serde_json::to_value(&response).expect("serialises");
        let headers = wire_headers(&wire);
        assert!(
            wire["statusCode"]
                .as_u64()
                .is_some_and(|s| (200..300).contains(&s)),
            "the handler (which panics) did not run: {wire:#?}"
        );
        if allowed {
            assert_eq!(headers["access-control-allow-origin"], origin);
            assert_eq!(headers["access-control-allow-methods"], "POST");
            let allowed_headers = &headers["access-control-allow-headers"];
            for name in shared::cors::ALLOWED_REQUEST_HEADERS {
                assert!(allowed_headers.contains(name), "{name}: {headers:#?}");
            }
            assert_eq!(
                headers["access-control-max-age"],
                shared::cors::MAX_AGE.as_secs().to_string()
            );
        } else {
            // What the browser decides on: without it, the page never sees the answer.
            assert!(
                !headers.contains_key("access-control-allow-origin"),
                "{origin}: {headers:#?}"
            );
        }
    }
}
