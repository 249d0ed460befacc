//! A handler that panics still answers in the contract shape, and the process keeps serving.

use api_tests::{Function, Harness, event};
use shared::{ApiRequest, App, HandlerResult, Route};
use std::sync::Arc;

async fn panicking(_app: Arc<App>, req: ApiRequest) -> HandlerResult {
    if req.path().ends_with("/health") {
        panic!("a test-only handler panicked on purpose (secret: hunter2)");
    }
    Ok(shared::response::json(
        shared::StatusCode::OK,
        &serde_json::json!({"ok": true}),
    ))
}

#[tokio::test]
async fn a_panic_becomes_a_500_in_the_contract_shape() {
    // The panicking handler never reaches the store.
    let h = Harness::shared().await;
    let function = Function {
        name: "panicking",
        route: Route::new("GET", "/health"),
        handler: panicking,
    };
    let reply = h.invoke(function, event("health", "ok")).await;
    reply.assert_error(500, "internal_error");
    assert_eq!(reply.body["detail"], "Internal server error");
    assert!(
        !reply.text.contains("hunter2"),
        "the panic message stays in the logs"
    );
    assert!(!reply.text.contains("panicked"));
}

#[tokio::test]
async fn the_same_service_keeps_serving_after_a_panic() {
    use tower::ServiceExt as _;
    // The panicking handler never reaches the store.
    let h = Harness::shared().await;
    let service = shared::runtime::ApiService::new(
        "panicking",
        Route::new("GET", "/health"),
        Ok(h.app.clone()),
        panicking,
    );
    for (sample, status) in [
        (event("health", "ok"), 500),
        (event("get_user", "no_token"), 200),
        (event("health", "ok"), 500),
        (event("get_user", "no_token"), 200),
    ] {
        let request: lambda_http::request::LambdaRequest =
            serde_json::from_value(sample).expect("an event");
        let event = lambda_runtime::LambdaEvent::new(request, lambda_runtime::Context::default());
        let response = lambda_http::Adapter::from(service.clone())
            .oneshot(event)
            .await
            .unwrap_or_else(|never| match never {});
        let wire = serde_json::to_value(&response).expect("serialises");
        assert_eq!(wire["statusCode"], status);
    }
}
