//! X-Ray traces (`shared::telemetry::xray`): real function binaries, invoked through the local
//! Runtime API with a trace header of our choosing, send their segment documents to a UDP
//! listener on loopback standing in for the daemon (`AWS_XRAY_DAEMON_ADDRESS`).

use std::{collections::BTreeSet, time::Duration};

use api_tests::{
    Fault, FaultProxy, Harness, Plan, closed_endpoint, event, median,
    runtime_api::{FunctionProcess, function_binary},
    sentry_sink::SentrySink,
    with_body,
    xray_daemon::{XrayDaemon, subsegments},
};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(30);

/// The first part of an X-Ray trace id: the trace's start, epoch seconds in hex (X-Ray refuses
/// traces older than 30 days).
fn epoch_hex() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch");
    format!("{:08x}", now.as_secs())
}

/// A sampled trace header, with its trace id as X-Ray writes it.
fn sampled(n: u8) -> (String, String) {
    let root = format!("1-{}-0123456789abcdef012345{n:02x}", epoch_hex());
    (
        format!("Root={root};Parent=1a2b3c4d5e6f70{n:02x};Sampled=1"),
        root,
    )
}

fn sign_up(email: &str) -> Value {
    with_body(
        event("create_user", "ok"),
        json!({"email": email, "name": "Ada", "password": "correct horse battery"}).to_string(),
    )
}

async fn invoke(process: &FunctionProcess, event: Value, trace: &str) -> u16 {
    let queued = process.api.enqueue_traced(event, DEADLINE, trace);
    let invoked = process
        .api
        .answer(queued, WAIT)
        .await
        .expect("the function answers");
    invoked.status()
}

/// An annotation that holds a number (sent as a number or as its text).
fn annotation_number(value: &Value) -> u64 {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("a number: {value}"))
}

/// The subsegments named `DynamoDB` in `documents`, with their annotations.
fn dynamodb(documents: &[Value]) -> Vec<Value> {
    subsegments(documents)
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| s["name"] == "DynamoDB")
        .collect()
}

#[tokio::test]
async fn a_sampled_sign_up_sends_one_nested_trace_with_a_subsegment_per_dynamodb_attempt() {
    let h = Harness::new().await;
    let daemon = XrayDaemon::start().await;
    let proxy = FaultProxy::start().await;
    // The email check fails once with a 500, then succeeds.
    proxy.set_plan(Plan::first(1, Fault::ServerError).only("GetItem"));
    let endpoint = proxy.endpoint();
    let env = [
        ("AWS_XRAY_DAEMON_ADDRESS", daemon.address.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()),
    ];
    let process = h.process("create_user", &env).await;
    let (header, root) = sampled(1);
    assert_eq!(
        invoke(&process, sign_up("ada@example.com"), &header).await,
        201
    );

    let documents = daemon.wait_for(1, WAIT).await;
    assert_eq!(
        documents.len(),
        1,
        "one document, its subsegments nested: {documents:#?}"
    );
    let handler = &documents[0];
    assert_eq!(handler["type"], "subsegment", "{handler:#}");
    assert_eq!(handler["trace_id"], root.as_str());
    assert_eq!(
        handler["parent_id"], "1a2b3c4d5e6f7001",
        "under Lambda's function segment"
    );
    assert_eq!(handler["name"], "create_user");
    let all = subsegments(&documents);
    for (parent, subsegment) in &all[1..] {
        assert!(
            parent.is_some(),
            "every other subsegment nests: {subsegment:#}"
        );
    }
    let ids: BTreeSet<_> = all.iter().map(|(_, s)| s["id"].to_string()).collect();
    assert_eq!(ids.len(), all.len(), "ids are unique");
    let nested_under_handler = |name: &str| {
        all.iter()
            .any(|(parent, s)| s["name"] == name && parent.as_deref() == handler["id"].as_str())
    };
    assert!(nested_under_handler("Argon2id"), "{handler:#}");

    let calls = dynamodb(&documents);
    let attempts: Vec<_> = calls
        .iter()
        .map(|s| {
            (
                s["annotations"]["operation"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                annotation_number(&s["annotations"]["attempt"]),
                s["annotations"]["outcome"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let op = |o: &str, n: u64, outcome: &str| (o.to_owned(), n, outcome.to_owned());
    assert_eq!(
        attempts,
        [
            op("GetItem email", 1, "retried"),
            op("GetItem email", 2, "ok"),
            op("TransactWriteItems create user", 1, "ok"),
        ],
        "{calls:#?}"
    );
    let failed = &calls[0];
    assert_eq!(failed["annotations"]["table"], h.table.as_str());
    assert_eq!(
        failed["annotations"]["error_kind"], "InternalServerError",
        "{failed:#}"
    );
    assert!(
        failed["metadata"].to_string().contains("backoff_ms"),
        "{failed:#}"
    );
    assert!(
        failed["fault"] == true || failed["error"] == true,
        "the failed attempt is marked: {failed:#}"
    );
    assert_eq!(calls[1]["fault"], Value::Null, "{:#}", calls[1]);
    assert_eq!(calls[1]["namespace"], "aws");
    // In time order, inside the handler.
    let start = |s: &Value| s["start_time"].as_f64().expect("start_time");
    let end = |s: &Value| s["end_time"].as_f64().expect("end_time");
    assert!(start(&calls[0]) <= start(&calls[1]) && end(&calls[0]) <= start(&calls[1]));
    assert!(start(handler) <= start(&calls[0]) && end(&calls[2]) <= end(handler));
    // Nothing secret goes to X-Ray.
    let text = serde_json::to_string(&documents).expect("JSON");
    for secret in ["correct horse battery", "ada@example.com", "$argon2id"] {
        assert!(!text.contains(secret), "{secret} was sent to X-Ray: {text}");
    }
}

#[tokio::test]
async fn an_unsampled_invocation_sends_nothing() {
    let h = Harness::new().await;
    let daemon = XrayDaemon::start().await;
    let env = [("AWS_XRAY_DAEMON_ADDRESS", daemon.address.as_str())];
    let process = h.process("create_user", &env).await;
    let unsampled = format!(
        "Root=1-{}-00000000000000000000beef;Parent=1a2b3c4d5e6f7081;Sampled=0",
        epoch_hex()
    );
    assert_eq!(
        invoke(&process, sign_up("ada@example.com"), &unsampled).await,
        201
    );
    // A sampled one after it, in the same process, arrives: the daemon was listening all along.
    let (header, root) = sampled(2);
    assert_eq!(
        invoke(&process, sign_up("grace@example.com"), &header).await,
        201
    );
    let documents = daemon.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let documents = if documents.is_empty() {
        documents
    } else {
        daemon.documents().await
    };
    assert_eq!(documents.len(), 1, "{documents:#?}");
    assert_eq!(documents[0]["trace_id"], root.as_str());
}

#[tokio::test]
async fn two_concurrent_invocations_in_one_process_each_trace_only_their_own_work() {
    let h = Harness::new().await;
    let daemon = XrayDaemon::start().await;
    let proxy = FaultProxy::start().await;
    // Slow enough that both invocations are inside the handler at once.
    proxy.set_plan(Plan::always(Fault::Latency(Duration::from_millis(300))).only("GetItem"));
    let endpoint = proxy.endpoint();
    let env = [
        ("AWS_XRAY_DAEMON_ADDRESS", daemon.address.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()),
        ("AWS_LAMBDA_MAX_CONCURRENCY", "2"),
    ];
    let process = h.process("create_user", &env).await;
    let ((one, root_one), (two, root_two)) = (sampled(3), sampled(4));
    let first = process
        .api
        .enqueue_traced(sign_up("one@example.com"), DEADLINE, &one);
    let second = process
        .api
        .enqueue_traced(sign_up("two@example.com"), DEADLINE, &two);
    let (first, second) = tokio::join!(
        process.api.answer(first, WAIT),
        process.api.answer(second, WAIT)
    );
    let (first, second) = (first.expect("an answer"), second.expect("an answer"));
    assert_eq!((first.status(), second.status()), (201, 201));
    assert!(
        first.handed_out < second.answered && second.handed_out < first.answered,
        "the two ran at once"
    );

    let documents = daemon.wait_for(2, WAIT).await;
    assert_eq!(documents.len(), 2, "{documents:#?}");
    for root in [&root_one, &root_two] {
        let own: Vec<_> = documents
            .iter()
            .filter(|d| d["trace_id"] == root.as_str())
            .cloned()
            .collect();
        assert_eq!(own.len(), 1, "one handler per trace: {documents:#?}");
        let all = subsegments(&own);
        assert!(
            all.iter()
                .all(|(_, s)| s.get("trace_id").is_none_or(|t| t == root.as_str()))
        );
        // Its own calls only: one email check and one transaction.
        let calls: Vec<_> = dynamodb(&own)
            .iter()
            .map(|s| s["annotations"]["operation"].clone())
            .collect();
        assert_eq!(
            calls,
            [
                json!("GetItem email"),
                json!("TransactWriteItems create user")
            ],
            "{own:#?}"
        );
        assert_eq!(
            all.iter().filter(|(_, s)| s["name"] == "Argon2id").count(),
            1
        );
    }
}

/// Statuses and latency with the daemon unset, unreachable and listening: the same statuses, and
/// no latency added by an unreachable daemon (compared with tracing off, not held to a limit).
#[tokio::test]
async fn timing_an_unreachable_or_unset_daemon_changes_no_status_and_adds_no_latency() {
    let h = Harness::new().await;
    let daemon = XrayDaemon::start().await;
    // A UDP port with nobody on it.
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let unreachable = closed.local_addr().expect("address").to_string();
    drop(closed);
    let settings: [(&str, Vec<(&str, &str)>); 3] = [
        ("unset", vec![]),
        (
            "unreachable",
            vec![("AWS_XRAY_DAEMON_ADDRESS", unreachable.as_str())],
        ),
        (
            "listening",
            vec![("AWS_XRAY_DAEMON_ADDRESS", daemon.address.as_str())],
        ),
    ];
    let mut processes = Vec::new();
    for (name, env) in &settings {
        processes.push((*name, h.process("create_user", env).await));
    }
    // The 422 path: no DynamoDB, no hash, so what is measured is the function and the tracing.
    let invalid = event("create_user", "invalid_fields");
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); processes.len()];
    for round in 0..41_u8 {
        let (header, _) = sampled(round);
        for (i, (_, process)) in processes.iter().enumerate() {
            let queued = process
                .api
                .enqueue_traced(invalid.clone(), DEADLINE, &header);
            let invoked = process.api.answer(queued, WAIT).await.expect("an answer");
            assert_eq!(invoked.status(), 422, "{}", processes[i].0);
            if round > 0 {
                times[i].push(invoked.response_time());
            }
        }
    }
    let medians: Vec<Duration> = times.into_iter().map(median).collect();
    println!(
        "median response time: unset {:?}, unreachable {:?}, listening {:?}",
        medians[0], medians[1], medians[2]
    );
    // Sent after the response: the client's time is the same whether the daemon listens or not.
    let allowed = Duration::from_millis(2).max(medians[0] / 2);
    for (i, name) in [(1, "unreachable"), (2, "listening")] {
        assert!(
            medians[i] <= medians[0] + allowed,
            "{name}: median {:?} against {:?} with tracing off (allowed {allowed:?} more)",
            medians[i],
            medians[0]
        );
    }
    assert!(
        daemon.wait_for(40, WAIT).await.len() >= 40,
        "the listening daemon got them"
    );
}

#[tokio::test]
async fn the_sentry_event_the_access_line_and_the_emf_document_lead_to_the_trace() {
    let daemon = XrayDaemon::start().await;
    let sink = SentrySink::start().await;
    let dsn = sink.dsn();
    let endpoint = closed_endpoint();
    // /health with DynamoDB unreachable: a 503, which Sentry gets.
    let health = FunctionProcess::start(
        function_binary("health"),
        "health",
        &[
            ("TABLE_NAME", "unused"),
            ("SENTRY_DSN", &dsn),
            ("AWS_ENDPOINT_URL_DYNAMODB", &endpoint),
            ("AWS_XRAY_DAEMON_ADDRESS", &daemon.address),
        ],
    )
    .await;
    let (header, root) = sampled(9);
    let queued = health
        .api
        .enqueue_traced(event("health", "ok"), DEADLINE, &header);
    let invoked = health.api.answer(queued, WAIT).await.expect("an answer");
    assert_eq!(invoked.status(), 503);

    let documents = daemon.wait_for(1, WAIT).await;
    let [handler] = documents.as_slice() else {
        panic!("one document: {documents:#?}");
    };
    assert_eq!(handler["trace_id"], root.as_str());
    assert_eq!(handler["fault"], true, "a 5xx is a fault: {handler:#}");
    let events = sink.wait_for_events(1).await;
    let [sent] = events.as_slice() else {
        panic!("one event: {events:#?}");
    };
    // X-Ray's `1-<epoch>-<random>` as 32 hex digits (only the version prefix goes: the epoch's
    // own last digit may be a 1 before its dash).
    let hex = root
        .strip_prefix("1-")
        .expect("an X-Ray trace id")
        .replace('-', "");
    assert_eq!(
        sent["contexts"]["trace"]["trace_id"],
        hex.as_str(),
        "{sent:#}"
    );
    assert_eq!(
        sent["contexts"]["trace"]["span_id"], handler["id"],
        "the event names the handler's subsegment"
    );
    assert_eq!(sent["tags"]["xray_trace_id"], root.as_str());

    let lines = health.wait_for_emf_documents(1).await;
    let access = lines
        .iter()
        .find(|l| l.contains("\"access\""))
        .unwrap_or_else(|| panic!("an access line: {lines:#?}"));
    assert!(access.contains(&root), "{access}");
    let emf = lines
        .iter()
        .find(|l| l.contains("\"_aws\""))
        .expect("an EMF document");
    assert!(emf.contains(&root), "{emf}");
    health.stop().await;
}

#[tokio::test]
async fn a_login_shows_its_wait_on_the_login_limit_with_the_counters_calls_inside() {
    let h = Harness::new().await;
    let created = h.call("create_user", event("create_user", "ok")).await;
    assert_eq!(created.status, 201, "{created:#?}");
    let daemon = XrayDaemon::start().await;
    let process = h
        .process(
            "login",
            &[("AWS_XRAY_DAEMON_ADDRESS", daemon.address.as_str())],
        )
        .await;
    let (header, root) = sampled(7);
    assert_eq!(invoke(&process, event("login", "ok"), &header).await, 200);
    let documents = daemon.wait_for(1, WAIT).await;
    let [handler] = documents.as_slice() else {
        panic!("one document: {documents:#?}");
    };
    assert_eq!(handler["trace_id"], root.as_str());
    let all = subsegments(&documents);
    let limit = all
        .iter()
        .find(|(_, s)| s["name"] == "login limit")
        .map(|(parent, s)| {
            assert_eq!(
                parent.as_deref(),
                handler["id"].as_str(),
                "under the handler"
            );
            s
        })
        .unwrap_or_else(|| panic!("a login limit subsegment: {handler:#}"));
    let inside: Vec<_> = subsegments(std::slice::from_ref(limit))
        .into_iter()
        .skip(1)
        .map(|(_, s)| s["annotations"]["operation"].clone())
        .collect();
    assert!(
        !inside.is_empty()
            && inside
                .iter()
                .all(|op| op.as_str().is_some_and(|o| o.contains("login"))),
        "the counters' calls are inside the limit's subsegment: {inside:?}"
    );
    assert!(all.iter().any(|(_, s)| s["name"] == "Argon2id"));
}
