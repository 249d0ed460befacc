//! The harness's two ways to run a function agree: `Harness::call` runs a function's real binary by
//! name (what a new endpoint's tests use), `Harness::invoke` its service in-process.

use std::sync::Arc;

use api_tests::{Harness, closed_endpoint, event, functions, visible};

#[tokio::test]
async fn call_runs_a_function_by_name_through_its_binary_in_one_reused_process() {
    let h = Harness::new().await;
    let created = h.call("create_user", event("create_user", "ok")).await;
    assert_eq!(created.status, 201, "{created:#?}");
    created.assert_common_headers();
    // The invocation's own EMF document, from the process's stdout.
    assert_eq!(created.emf["Function"], "create_user");
    assert_eq!(created.emf["message"], "access", "the access line");
    assert_eq!(
        created.emf["request_id"],
        created.headers["x-request-id"].as_str()
    );
    assert!(created.metric("Latency").is_some());
    assert_eq!(created.metric("ColdStart"), Some(1.0));
    assert_eq!(
        h.items_with_prefix("USER#").await.len(),
        1,
        "it used this table"
    );

    let again = h
        .call("create_user", event("create_user", "duplicate_email"))
        .await;
    again.assert_error(409, "user_exists");
    assert_eq!(
        again.metric("ColdStart"),
        None,
        "the same process, warm: ColdStart is only on a cold start"
    );
    assert!(Arc::ptr_eq(
        &h.process("create_user", &[]).await,
        &h.process("create_user", &[]).await
    ));

    // The in-process service gives the same answer.
    let in_process = h
        .invoke(
            functions::create_user(),
            event("create_user", "duplicate_email"),
        )
        .await;
    assert_eq!(visible(&in_process), visible(&again));
}

#[tokio::test]
async fn call_with_env_runs_a_process_of_its_own() {
    let h = Harness::shared().await;
    let closed = closed_endpoint();
    let unreachable = [("AWS_ENDPOINT_URL_DYNAMODB", closed.as_str())];
    h.call_with_env("health", &unreachable, event("health", "ok"))
        .await
        .assert_error(503, "unhealthy");
    let healthy = h.call("health", event("health", "ok")).await;
    assert_eq!(healthy.status, 200, "{healthy:#?}");
    assert!(!Arc::ptr_eq(
        &h.process("health", &unreachable).await,
        &h.process("health", &[]).await
    ));
}
