//! `GET /health`.

use api_tests::{Harness, closed_endpoint, event, functions, invoke_with};

#[tokio::test]
async fn healthy_when_the_table_answers() {
    let h = Harness::shared().await;
    let reply = h.invoke(functions::health(), event("health", "ok")).await;
    assert_eq!(reply.status, 200, "{reply:#?}");
    reply.assert_common_headers();
    assert_eq!(reply.body["status"], "ok");
    assert_eq!(reply.body["checks"]["dynamodb"]["status"], "ok");
    assert!(reply.body["checks"]["dynamodb"]["latency_ms"].is_u64());
    assert_eq!(reply.body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn unhealthy_in_the_contract_shape_when_dynamodb_is_unreachable() {
    let h = Harness::shared().await;
    let app = h.app_with_endpoint(&closed_endpoint()).await;
    let reply = invoke_with(app, functions::health(), event("health", "ok")).await;
    reply.assert_error(503, "unhealthy");
    assert_eq!(reply.body["checks"]["dynamodb"]["status"], "error");
    assert!(
        reply
            .header("retry-after")
            .is_some_and(|s| s.parse::<u32>().is_ok())
    );
    assert!(
        !reply.text.contains("127.0.0.1"),
        "internals stay out of the body"
    );
}
