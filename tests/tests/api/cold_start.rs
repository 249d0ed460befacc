//! A cold start (issue 16): the DynamoDB client is made, and its first connection opened, on a
//! background thread at the lowest CPU priority, so a request that never reads DynamoDB never waits for it; the process says
//! where its start-up went in one `init` line. Real binaries, the local Runtime API, and the fault
//! proxy in front of the local DynamoDB, which counts the pre-open apart from DynamoDB calls.

use std::time::Duration;

use api_tests::{
    Harness, event,
    fault_proxy::FaultProxy,
    runtime_api::{FunctionProcess, function_binary},
};
use tokio::net::TcpListener;

/// Waits until `check` holds, at most 10 s.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..1000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

#[tokio::test]
async fn the_connection_is_opened_during_init_before_any_request_and_reused_by_the_first() {
    let h = Harness::new().await;
    let proxy = FaultProxy::start().await;
    let endpoint = proxy.endpoint();
    let process = h
        .process(
            "health",
            &[("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str())],
        )
        .await;
    // No event yet: the function is waiting for one, and has opened its connection already.
    eventually("a pre-open", || proxy.preopens() == 1).await;
    assert_eq!(
        proxy.total_calls(),
        0,
        "no DynamoDB call: {:?}",
        proxy.requests()
    );
    let init = process.init_line().await;
    assert_eq!(init["dynamodb_connected"], true, "{init:#}");
    let phases = init["phases_ms"].as_object().expect("phases");
    for phase in [
        "config",
        "telemetry",
        "app",
        "runtime",
        "dynamodb_client",
        "dynamodb_connect",
    ] {
        assert!(phases[phase].is_number(), "{phase}: {init:#}");
    }
    assert_eq!(init["function"], "health", "{init:#}");
    assert_eq!(init["route"], "GET /health");

    // The first request's read goes over that connection: one connection in all.
    let reply = h
        .call_with_env(
            "health",
            &[("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str())],
            event("health", "ok"),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:#?}");
    assert_eq!(
        proxy.calls("GetItem"),
        1,
        "{:?}",
        proxy.calls_by_operation()
    );
    assert_eq!(
        proxy.connections(),
        1,
        "the pre-opened connection served the read"
    );
}

#[tokio::test]
async fn without_the_preopen_nothing_reaches_dynamodb_before_the_first_call() {
    let h = Harness::new().await;
    let proxy = FaultProxy::start().await;
    let endpoint = proxy.endpoint();
    let env = [
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()),
        ("DYNAMODB_PREOPEN", "false"),
    ];
    let process = h.process("health", &env).await;
    let init = process.init_line().await;
    assert!(init["phases_ms"]["dynamodb_client"].is_number(), "{init:#}");
    assert!(
        init["phases_ms"].get("dynamodb_connect").is_none()
            && init.get("dynamodb_connected").is_none(),
        "{init:#}"
    );
    assert_eq!((proxy.preopens(), proxy.connections()), (0, 0));
    let reply = h.call_with_env("health", &env, event("health", "ok")).await;
    assert_eq!(reply.status, 200, "{reply:#?}");
    assert_eq!((proxy.preopens(), proxy.calls("GetItem")), (0, 1));
}

/// An endpoint that accepts connections and never answers, held until the returned task is
/// aborted: a pre-open to it waits out its bound (1 s, the connect timeout).
async fn silent_endpoint() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    (endpoint, held)
}

/// What [`first_422_and_init`] saw.
struct FirstAnswer {
    /// The init line was written before the first answer.
    init_first: bool,
    /// The init line.
    init: serde_json::Value,
    /// The process's threads (name, scheduling policy) just after the first answer.
    threads: Vec<(String, u32)>,
}

/// create_user against `endpoint`, with `extra` settings, answering its first event (a 422 that
/// needs no DynamoDB).
async fn first_422_and_init(endpoint: &str, extra: &[(&str, &str)]) -> FirstAnswer {
    let mut env = vec![
        ("TABLE_NAME", "unused"),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
        ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "3000"),
    ];
    env.extend_from_slice(extra);
    let process = FunctionProcess::start(function_binary("create_user"), "create_user", &env).await;
    let invoked = process
        .api
        .invoke(event("create_user", "invalid_fields"))
        .await;
    assert_eq!(invoked.status(), 422, "{invoked:#?}");
    let threads = process.threads();
    let init_first = process
        .stdout()
        .iter()
        .any(|l| l.contains("\"message\":\"init\""));
    let init = process.init_line().await;
    process.stop().await;
    FirstAnswer {
        init_first,
        init,
        threads,
    }
}

/// Linux's `SCHED_IDLE` scheduling policy.
const SCHED_IDLE: u32 = 5;

#[tokio::test]
async fn a_hanging_preopen_delays_no_answer_that_needs_no_dynamodb() {
    let (endpoint, held) = silent_endpoint().await;
    let FirstAnswer {
        init_first,
        init,
        threads,
    } = first_422_and_init(&endpoint, &[]).await;
    // Answered while the pre-open was still waiting: its init line, written when it gives up,
    // was not there yet.
    assert!(!init_first, "the 422 waited for the pre-open: {init:#}");
    // The pre-open runs on a thread of its own that gets only CPU time no other thread wants;
    // the runtime's threads keep the normal policy.
    assert!(
        threads.contains(&("dynamodb-open".to_owned(), SCHED_IDLE)),
        "{threads:?}"
    );
    assert!(
        threads.iter().any(|(name, _)| name.starts_with("tokio-"))
            && threads
                .iter()
                .all(|(name, policy)| name == "dynamodb-open" || *policy == 0),
        "{threads:?}"
    );
    assert_eq!(init["dynamodb_connected"], false, "{init:#}");
    let waited = init["phases_ms"]["dynamodb_connect"]
        .as_f64()
        .expect("a time");
    assert!(waited >= 900.0, "it waited out its bound: {init:#}");
    held.abort();
}

#[tokio::test]
async fn with_provisioned_concurrency_the_connection_is_opened_before_the_first_event() {
    // No request waits on a provisioned-concurrency init, so it opens the connection before it
    // asks for the first event: here, it waits out the pre-open's bound first.
    let (endpoint, held) = silent_endpoint().await;
    let FirstAnswer {
        init_first, init, ..
    } = first_422_and_init(
        &endpoint,
        &[("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency")],
    )
    .await;
    assert!(
        init_first,
        "the init line came after the first answer: {init:#}"
    );
    assert_eq!(init["dynamodb_connected"], false, "{init:#}");
    held.abort();
}
