//! Recovery from DynamoDB faults, through the real handlers, with a fault-injecting proxy between
//! the functions and the local server (`scripts/test.sh -p api-tests resilience`).
//!
//! Each test asserts the status, the contract body, and how many DynamoDB calls the proxy saw: the
//! retry policy is one layer of at most three attempts, and only for transient errors.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use api_tests::{
    Fault, FaultProxy, Harness, Plan, Reply, event, functions, invoke_with, invoke_with_deadline,
    same_email_sign_ups, string,
};
use shared::App;

/// A fresh table, a proxy in front of the local server, and an app that talks through the proxy.
async fn setup() -> (Harness, FaultProxy, Arc<App>) {
    let h = Harness::new().await;
    let proxy = FaultProxy::start().await;
    let app = h.app_with_endpoint(&proxy.endpoint()).await;
    (h, proxy, app)
}

/// Signs Ada up directly (not through the proxy).
async fn seed_ada(h: &Harness) -> String {
    let created = h
        .invoke(functions::create_user(), event("create_user", "ok"))
        .await;
    assert_eq!(created.status, 201, "{created:#?}");
    created.body["id"].as_str().expect("an id").to_owned()
}

fn assert_unavailable(reply: &Reply) {
    reply.assert_error(503, "service_unavailable");
    assert_eq!(
        reply.body["detail"],
        "Service temporarily unavailable, please retry"
    );
    assert!(
        reply
            .header("retry-after")
            .is_some_and(|s| s.parse::<u32>().is_ok_and(|n| n >= 1)),
        "a 503 says when to retry: {reply:#?}"
    );
    assert!(
        !reply.text.contains("DynamoDB") && !reply.text.contains("127.0.0.1"),
        "internals stay out of the body"
    );
}

#[tokio::test]
async fn one_throttle_then_success_answers_200() {
    let (h, proxy, app) = setup().await;
    seed_ada(&h).await;
    proxy.set_plan(Plan::first(1, Fault::Throttle));
    let reply = invoke_with(app, functions::login(), event("login", "ok")).await;
    assert_eq!(reply.status, 200, "{reply:#?}");
    assert_eq!(reply.body["token_type"], "Bearer");
    // The address's failure counter read twice (throttled, then answered), the email and the
    // user once each; the pair's and the email's attempts reserved; the session and the pair's
    // trust mark put, the pair's counter deleted.
    assert_eq!(
        proxy.calls("GetItem"),
        4,
        "{:?}",
        proxy.calls_by_operation()
    );
    assert_eq!(proxy.calls("UpdateItem"), 2);
    assert_eq!(proxy.calls("PutItem"), 2);
    assert_eq!(proxy.calls("DeleteItem"), 1);
    assert_eq!(h.items_with_prefix("SESSION#").await.len(), 1);
    assert_eq!(
        reply.metric("DynamoDbRetries"),
        Some(1.0),
        "{:#}",
        reply.emf
    );
    assert_eq!(reply.metric("DynamoDbThrottles"), Some(1.0));
    assert_eq!(reply.metric("DynamoDbRetriesExhausted"), None);
    assert_eq!(
        reply.emf["DynamoDbLatency"].as_array().map(Vec::len),
        Some(9),
        "one latency value per attempt"
    );
}

#[tokio::test]
async fn one_server_error_on_the_create_transaction_then_success_answers_201() {
    let (h, proxy, app) = setup().await;
    proxy.set_plan(Plan::first(1, Fault::ServerError).only("TransactWriteItems"));
    let reply = invoke_with(app, functions::create_user(), event("create_user", "ok")).await;
    assert_eq!(reply.status, 201, "{reply:#?}");
    assert_eq!(proxy.calls("TransactWriteItems"), 2);
    assert_eq!(proxy.calls("GetItem"), 1, "only the early duplicate check");
    assert_eq!(
        reply.metric("DynamoDbRetries"),
        Some(1.0),
        "{:#}",
        reply.emf
    );
    assert_eq!(h.items_with_prefix("USER#").await.len(), 1);
}

#[tokio::test]
async fn a_connection_reset_then_success_answers_200() {
    let (h, proxy, app) = setup().await;
    seed_ada(&h).await;
    proxy.set_plan(Plan::first(1, Fault::Reset));
    let reply = invoke_with(app, functions::login(), event("login", "ok")).await;
    assert_eq!(reply.status, 200, "{reply:#?}");
    // The address's counter (reset, then answered), the email, the user.
    assert_eq!(proxy.calls("GetItem"), 4);
}

#[tokio::test]
async fn a_persistent_500_answers_503_after_exactly_three_calls() {
    let (h, proxy, app) = setup().await;
    seed_ada(&h).await;
    proxy.set_plan(Plan::always(Fault::ServerError));
    let reply = invoke_with(app, functions::login(), event("login", "ok")).await;
    assert_unavailable(&reply);
    assert_eq!(
        proxy.total_calls(),
        3,
        "one layer of retries, three attempts: {:?}",
        proxy.calls_by_operation()
    );
    assert_eq!(proxy.calls("GetItem"), 3);
    assert_eq!(
        reply.metric("DynamoDbRetries"),
        Some(2.0),
        "{:#}",
        reply.emf
    );
    assert_eq!(reply.metric("DynamoDbRetriesExhausted"), Some(1.0));
    assert_eq!(reply.metric("Errors5xx"), Some(1.0));
}

#[tokio::test]
async fn persistent_throttling_answers_503_with_retry_after() {
    let (h, proxy, app) = setup().await;
    proxy.set_plan(Plan::always(Fault::Throttle));
    let reply = invoke_with(app, functions::create_user(), event("create_user", "ok")).await;
    assert_unavailable(&reply);
    assert_eq!(
        proxy.calls("GetItem"),
        3,
        "the duplicate check, three times"
    );
    assert_eq!(proxy.calls("TransactWriteItems"), 0, "nothing written");
    assert!(h.items().await.is_empty());
    assert_eq!(
        reply.metric("DynamoDbThrottles"),
        Some(3.0),
        "{:#}",
        reply.emf
    );
    assert_eq!(reply.metric("DynamoDbRetries"), Some(2.0));
    assert_eq!(reply.metric("DynamoDbRetriesExhausted"), Some(1.0));
}

#[tokio::test]
async fn timing_a_hang_answers_503_before_the_invocation_deadline() {
    let (h, proxy, app) = setup().await;
    seed_ada(&h).await;
    proxy.set_plan(Plan::always(Fault::Hang));
    let deadline = Duration::from_millis(1200);
    let started = Instant::now();
    let reply = invoke_with_deadline(app, functions::login(), event("login", "ok"), deadline).await;
    let elapsed = started.elapsed();
    assert_unavailable(&reply);
    assert!(
        elapsed < deadline,
        "answered in {elapsed:?}, before the deadline of {deadline:?}"
    );
    // 1.2 s minus the 250 ms margin leaves under the 1 s attempt timeout: one attempt, cut short,
    // and no time for another.
    assert_eq!(proxy.calls("GetItem"), 1);
}

#[tokio::test]
async fn a_duplicate_email_is_one_call_and_never_retried() {
    let (h, proxy, app) = setup().await;
    seed_ada(&h).await;
    let reply = invoke_with(
        app,
        functions::create_user(),
        event("create_user", "duplicate_email"),
    )
    .await;
    reply.assert_error(409, "user_exists");
    assert_eq!(proxy.calls("GetItem"), 1);
    assert_eq!(proxy.total_calls(), 1);
}

#[tokio::test]
async fn a_failed_email_condition_in_the_transaction_is_one_call_and_409() {
    let (h, proxy, app) = setup().await;
    seed_ada(&h).await;
    // The early duplicate check is told there is no such email, so the transaction runs and its
    // condition fails (ConditionalCheckFailed): a 409 after exactly one transaction.
    proxy.set_plan(Plan::always(Fault::Reply(200, "{}".to_owned())).only("GetItem"));
    let reply = invoke_with(
        app,
        functions::create_user(),
        event("create_user", "duplicate_email"),
    )
    .await;
    reply.assert_error(409, "user_exists");
    assert_eq!(proxy.calls("TransactWriteItems"), 1);
    assert_eq!(proxy.calls("GetItem"), 1);
    assert_eq!(
        h.items().await.len(),
        2,
        "still one user and one email item"
    );
}

#[tokio::test]
async fn a_validation_error_from_dynamodb_is_one_call_and_500() {
    let (h, proxy, app) = setup().await;
    seed_ada(&h).await;
    proxy.set_plan(Plan::always(Fault::Validation).only("GetItem"));
    let reply = invoke_with(app, functions::login(), event("login", "ok")).await;
    reply.assert_error(500, "internal_error");
    assert_eq!(reply.header("retry-after"), None);
    assert_eq!(proxy.total_calls(), 1, "{:?}", proxy.calls_by_operation());
    assert_eq!(
        reply.metric("DynamoDbRetries"),
        None,
        "never retried: {:#}",
        reply.emf
    );
}

#[tokio::test]
async fn a_lost_create_response_still_answers_201_with_one_user() {
    let (h, proxy, app) = setup().await;
    proxy.set_plan(Plan::first(1, Fault::LoseResponse).only("TransactWriteItems"));
    let reply = invoke_with(app, functions::create_user(), event("create_user", "ok")).await;
    assert_eq!(reply.status, 201, "{reply:#?}");
    let id = reply.body["id"].as_str().expect("an id");
    assert_eq!(
        proxy.calls("TransactWriteItems"),
        2,
        "applied, lost, retried"
    );
    let users = h.items_with_prefix("USER#").await;
    assert_eq!(users.len(), 1, "exactly one user");
    assert_eq!(string(&users[0], "id"), Some(id));
    let emails = h.items_with_prefix("EMAIL#").await;
    assert_eq!(emails.len(), 1);
    assert_eq!(string(&emails[0], "user_id"), Some(id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_creates_under_30_percent_conflicts_make_one_user_and_no_5xx() {
    let (h, proxy, app) = setup().await;
    proxy.set_plan(Plan::percent(30, Fault::TransactionConflict).only("TransactWriteItems"));
    let (created, conflicts) = same_email_sign_ups(app, 50).await;
    assert_eq!((created, conflicts), (1, 49));
    assert_eq!(h.items_with_prefix("USER#").await.len(), 1);
    assert_eq!(h.items_with_prefix("EMAIL#").await.len(), 1);
}

#[tokio::test]
async fn health_is_503_within_its_timeout_when_dynamodb_hangs() {
    let (_h, proxy, app) = setup().await;
    proxy.set_plan(Plan::always(Fault::Hang));
    let started = Instant::now();
    let reply = invoke_with(app, functions::health(), event("health", "ok")).await;
    let elapsed = started.elapsed();
    reply.assert_error(503, "unhealthy");
    assert_eq!(reply.body["checks"]["dynamodb"]["status"], "error");
    assert!(
        elapsed < shared::health::CHECK_TIMEOUT + Duration::from_millis(500),
        "{elapsed:?}"
    );
    assert_eq!(proxy.calls("GetItem"), 1, "a health check never retries");
}

#[tokio::test]
async fn a_burst_of_health_checks_reads_the_table_once() {
    let (_h, proxy, app) = setup().await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let app = Arc::clone(&app);
        tasks.spawn(
            async move { invoke_with(app, functions::health(), event("health", "ok")).await },
        );
    }
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.expect("no task panicked");
        assert_eq!(reply.status, 200, "{reply:#?}");
        assert_eq!(reply.body["checks"]["dynamodb"]["status"], "ok");
    }
    assert_eq!(proxy.calls("GetItem"), 1, "one read for the whole burst");
}
