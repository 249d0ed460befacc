//! Logs, EMF metrics and Sentry events as they really leave a function: each test runs a function
//! binary against a local Lambda Runtime API and reads its real stdout, and a local stand-in for
//! Sentry receives the SDK's real envelopes.

use std::{collections::HashMap, sync::OnceLock, time::Duration};

use api_tests::{
    Harness, closed_endpoint, event, median,
    runtime_api::{FunctionProcess, Invoked, function_binary},
    samples,
    sentry_sink::SentrySink,
    with_request_id,
};
use serde_json::Value;

fn emf_schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = api_tests::root().join("tests/schemas/emf.schema.json");
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("the EMF schema"))
                .expect("JSON");
        jsonschema::validator_for(&schema).expect("the schema compiles")
    })
}

/// Validates an EMF document against the specification's schema and its cross-member rules:
/// every dimension of every set and every metric of the directive is a member of the document.
fn assert_valid_emf(doc: &Value) {
    let errors: Vec<String> = emf_schema()
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not a valid EMF document: {errors:?}\n{doc:#}"
    );
    for directive in doc["_aws"]["CloudWatchMetrics"]
        .as_array()
        .expect("directives")
    {
        for set in directive["Dimensions"].as_array().expect("dimension sets") {
            for dimension in set.as_array().expect("a set") {
                let name = dimension.as_str().expect("a name");
                assert!(
                    doc[name].is_string(),
                    "dimension {name} has no string value: {doc:#}"
                );
            }
        }
        for metric in directive["Metrics"].as_array().expect("metrics") {
            let name = metric["Name"].as_str().expect("a name");
            let value = &doc[name];
            assert!(
                value.is_number()
                    || value
                        .as_array()
                        .is_some_and(|v| v.iter().all(Value::is_number)),
                "metric {name} has no numeric value: {doc:#}"
            );
        }
    }
}

/// Every stdout line parses as JSON; returns (log lines, EMF documents).
fn split_stdout(lines: &[String]) -> (Vec<Value>, Vec<Value>) {
    let mut logs = Vec::new();
    let mut documents = Vec::new();
    for line in lines {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("a stdout line is not JSON ({err}): {line}"));
        if value.get("_aws").is_some() {
            documents.push(value);
        } else {
            logs.push(value);
        }
    }
    (logs, documents)
}

fn gateway_id(sample: &Value) -> String {
    sample["requestContext"]["requestId"]
        .as_str()
        .expect("a request id")
        .to_owned()
}

/// The trace id the local Runtime API's default (sampled) trace header names.
const TRACE_ID: &str = "1-6564a2b0-5f0c1d2e3a4b5c6d7e8f9a0b";

/// Asserts that every log line of an invocation carries that invocation's contract request id (and
/// nothing that is the same on every line of the process), and that each invocation's access line
/// is its EMF document: exactly one, with the request's facts.
fn assert_request_context(logs: &[Value], documents: &[Value], invocations: &[(&Invoked, String)]) {
    let by_lambda_id: HashMap<&str, &str> = invocations
        .iter()
        .map(|(invoked, request_id)| (invoked.lambda_request_id.as_str(), request_id.as_str()))
        .collect();
    for line in logs {
        for field in ["timestamp", "level", "target", "message"] {
            assert!(line.get(field).is_some(), "a line without {field}: {line}");
        }
        assert_ne!(
            line["message"], "access",
            "the access line is the EMF document: {line}"
        );
        if let Some(lambda_id) = line["lambda_request_id"].as_str() {
            let expected = by_lambda_id
                .get(lambda_id)
                .unwrap_or_else(|| panic!("a line of an unknown invocation: {line}"));
            assert_eq!(line["request_id"], *expected, "{line}");
            assert_eq!(
                line["xray_trace_id"], TRACE_ID,
                "the trace id, not the header: {line}"
            );
            for repeated in ["function", "route", "method", "cold_start"] {
                assert!(line.get(repeated).is_none(), "{repeated} on a line: {line}");
            }
        }
    }
    for (invoked, request_id) in invocations {
        let line = document_of(documents, request_id);
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["message"], "access", "{line}");
        assert_eq!(line["status"], invoked.status(), "{line}");
        assert_eq!(line["xray_trace_id"], TRACE_ID, "{line}");
        assert!(line["Latency"].is_number(), "{line}");
        let status = invoked.status();
        assert_eq!(
            line["code"].is_string(),
            status >= 400,
            "an error's code, and only an error's: {line}"
        );
        if status >= 400 {
            let body: Value =
                serde_json::from_str(invoked.body["body"].as_str().expect("a body")).expect("JSON");
            assert_eq!(line["code"], body["code"], "{line}");
        }
    }
}

/// The one EMF document of an invocation.
fn document_of<'a>(documents: &'a [Value], request_id: &str) -> &'a Value {
    let found: Vec<&Value> = documents
        .iter()
        .filter(|d| d["request_id"] == request_id)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one EMF document for {request_id}: {documents:#?}"
    );
    found[0]
}

#[tokio::test]
async fn json_logs_and_one_emf_document_per_invocation_on_every_outcome() {
    let h = Harness::new().await;
    let process = FunctionProcess::start(
        function_binary("create_user"),
        "create_user",
        &[
            ("TABLE_NAME", &h.table),
            ("METRICS_NAMESPACE", "UsersApiTest"),
        ],
    )
    .await;
    let cases = [
        ("ok", 201),
        ("duplicate_email", 409),
        ("invalid_fields", 422),
        ("too_large", 413),
        ("wrong_content_type", 415),
    ];
    let mut invocations = Vec::new();
    for (case, status) in cases {
        let sample = event("create_user", case);
        let invoked = process.api.invoke(sample.clone()).await;
        assert!(invoked.ok, "{invoked:#?}");
        assert_eq!(invoked.status(), status, "{case}: {invoked:#?}");
        invocations.push((invoked, gateway_id(&sample)));
    }
    let lines = process.wait_for_emf_documents(cases.len()).await;
    let (logs, documents) = split_stdout(&lines);
    assert_eq!(
        documents.len(),
        cases.len(),
        "one EMF document per invocation"
    );
    let pairs: Vec<(&Invoked, String)> = invocations.iter().map(|(i, r)| (i, r.clone())).collect();
    assert_request_context(&logs, &documents, &pairs);

    for (n, ((_, request_id), (case, status))) in invocations.iter().zip(cases).enumerate() {
        let doc = document_of(&documents, request_id);
        assert_valid_emf(doc);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "UsersApiTest"
        );
        assert_eq!(doc["Service"], "users-api");
        assert_eq!(doc["Function"], "create_user");
        assert!(doc.get("Route").is_none(), "no Route dimension: {doc:#}");
        assert_eq!(doc["status"], status, "{case}");
        assert!(
            doc["Latency"].is_number(),
            "one Latency value: the request count"
        );
        assert!(
            doc.get("Requests").is_none(),
            "Latency's sample count is it: {doc:#}"
        );
        // What counts some requests only is written when it counts one.
        if (400..500).contains(&status) {
            assert_eq!(doc["Errors4xx"], 1.0, "{case}");
        } else {
            assert!(doc.get("Errors4xx").is_none(), "{case}: {doc:#}");
        }
        assert!(doc.get("Errors5xx").is_none(), "{case}: {doc:#}");
        if n == 0 {
            assert_eq!(doc["ColdStart"], 1.0, "{case}");
        } else {
            assert!(
                doc.get("ColdStart").is_none(),
                "only the first request says it is a cold start: {doc:#}"
            );
        }
        assert!(doc["Latency"].is_number(), "{case}");
    }
    assert!(
        process.stderr().is_empty(),
        "nothing on stderr: {:?}",
        process.stderr()
    );
    process.stop().await;
}

#[tokio::test]
async fn a_5xx_sends_one_sentry_event_with_what_the_user_saw() {
    let sink = SentrySink::start().await;
    let dsn = sink.dsn();
    let endpoint = closed_endpoint();
    let health = FunctionProcess::start(
        function_binary("health"),
        "health",
        &[
            ("TABLE_NAME", "unused"),
            ("SENTRY_DSN", &dsn),
            ("AWS_ENDPOINT_URL_DYNAMODB", &endpoint),
        ],
    )
    .await;
    let sample = event("health", "ok");
    let invoked = health.api.invoke(sample.clone()).await;
    assert_eq!(invoked.status(), 503, "{invoked:#?}");
    let body: Value =
        serde_json::from_str(invoked.body["body"].as_str().expect("a body")).expect("JSON");
    let events = sink.wait_for_events(1).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let sent = &events[0];
    assert_eq!(sent["extra"]["http_exception_detail"], body["detail"]);
    assert_eq!(sent["extra"]["status_code"], 503);
    assert_eq!(sent["tags"]["http_status"], "503");
    assert_eq!(sent["tags"]["request_id"], gateway_id(&sample).as_str());
    assert_eq!(sent["tags"]["function"], "health");
    assert_eq!(sent["environment"], "test");
    assert!(
        sent["release"]
            .as_str()
            .is_some_and(|r| r.starts_with("users-api@"))
    );
    let exceptions = sent["exception"]["values"].as_array().expect("exceptions");
    // The whole cause chain, as errors, root cause first: the SDK's causes, the store's failure,
    // then the 503 (a chain cut to text would end at the store's message).
    let values: Vec<&str> = exceptions
        .iter()
        .filter_map(|e| e["value"].as_str())
        .collect();
    let [causes @ .., store, outer] = values.as_slice() else {
        panic!("the whole cause chain: {values:#?}");
    };
    assert_eq!(*outer, body["detail"], "{values:#?}");
    assert!(
        store.starts_with("DynamoDB GetItem health probe failed (connection)"),
        "{values:#?}"
    );
    assert!(
        causes
            .first()
            .is_some_and(|c| c.contains("Connection refused")),
        "the SDK's causes, down to the refused connection: {values:#?}"
    );
    assert!(
        !sink.envelopes().join("").contains("publickey@"),
        "the DSN is not echoed"
    );
    health.stop().await;
}

#[tokio::test]
async fn a_4xx_sends_nothing_unless_asked() {
    let h = Harness::new().await;
    let sink = SentrySink::start().await;
    let dsn = sink.dsn();
    let quiet = FunctionProcess::start(
        function_binary("create_user"),
        "create_user",
        &[("TABLE_NAME", &h.table), ("SENTRY_DSN", &dsn)],
    )
    .await;
    assert_eq!(
        quiet
            .api
            .invoke(event("create_user", "invalid_fields"))
            .await
            .status(),
        422
    );
    assert_eq!(
        quiet
            .api
            .invoke(event("create_user", "wrong_content_type"))
            .await
            .status(),
        415
    );
    quiet.wait_for_emf_documents(2).await;
    assert!(
        sink.wait_for_events(0).await.is_empty(),
        "no event for a 4xx by default"
    );
    quiet.stop().await;

    let loud = FunctionProcess::start(
        function_binary("create_user"),
        "create_user",
        &[
            ("TABLE_NAME", &h.table),
            ("SENTRY_DSN", &dsn),
            ("SENTRY_CAPTURE_4XX", "true"),
        ],
    )
    .await;
    assert_eq!(
        loud.api
            .invoke(event("create_user", "invalid_fields"))
            .await
            .status(),
        422
    );
    let events = sink.wait_for_events(1).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["extra"]["status_code"], 422);
    assert_eq!(events[0]["level"], "warning");
    loud.stop().await;
}

#[tokio::test]
async fn a_panic_is_a_500_one_log_line_one_sentry_event_and_one_emf_document() {
    let sink = SentrySink::start().await;
    let dsn = sink.dsn();
    let process = FunctionProcess::start(
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_panicking")),
        "panicking",
        &[("TABLE_NAME", "unused"), ("SENTRY_DSN", &dsn)],
    )
    .await;
    let sample = event("health", "ok");
    let first = process.api.invoke(sample.clone()).await;
    assert_eq!(first.status(), 500, "{first:#?}");
    let body: Value =
        serde_json::from_str(first.body["body"].as_str().expect("a body")).expect("JSON");
    api_tests::assert_valid_error_body(&body);
    assert_eq!(body["code"], "internal_error");
    assert!(
        !first.body.to_string().contains("test-only panic"),
        "the message stays inside"
    );
    // The process keeps serving.
    let second_sample = with_request_id(event("health", "ok"), "second-request");
    assert_eq!(process.api.invoke(second_sample).await.status(), 500);

    let events = sink.wait_for_events(2).await;
    assert_eq!(events.len(), 2, "one event per panic");
    let exception = events[0]["exception"]["values"]
        .as_array()
        .and_then(|v| v.last())
        .expect("an exception");
    assert_eq!(exception["mechanism"]["type"], "panic");
    assert!(
        exception["value"]
            .as_str()
            .is_some_and(|v| v.contains("test-only panic"))
    );

    let lines = process.wait_for_emf_documents(2).await;
    let (logs, documents) = split_stdout(&lines);
    assert_eq!(documents.len(), 2);
    let doc = document_of(&documents, &gateway_id(&sample));
    assert_valid_emf(doc);
    assert_eq!(doc["Errors5xx"], 1.0);
    let panics: Vec<&Value> = logs
        .iter()
        .filter(|l| l["message"] == "handler panicked")
        .collect();
    assert_eq!(
        panics.len(),
        2,
        "logged once per panic, at the boundary: {logs:#?}"
    );
    assert!(
        panics[0]["panic.location"]
            .as_str()
            .is_some_and(|l| l.contains("panicking.rs"))
    );
    assert!(
        panics[0]["panic.backtrace"]
            .as_str()
            .is_some_and(|b| !b.is_empty())
    );
    assert!(
        process.stderr().is_empty(),
        "the default panic hook stayed quiet: {:?}",
        process.stderr()
    );
    process.stop().await;
}

#[tokio::test]
async fn concurrent_invocations_in_one_process_keep_their_own_metrics_and_log_context() {
    let h = Harness::new().await;
    let process = FunctionProcess::start(
        function_binary("create_user"),
        "create_user",
        &[
            ("TABLE_NAME", &h.table),
            ("AWS_LAMBDA_MAX_CONCURRENCY", "2"),
        ],
    )
    .await;
    let slow = event("create_user", "ok");
    let fast = event("create_user", "invalid_fields");
    let (created, refused) = tokio::join!(
        process.api.invoke(slow.clone()),
        process.api.invoke(fast.clone())
    );
    assert_eq!((created.status(), refused.status()), (201, 422));
    assert!(
        created.handed_out < refused.answered && refused.handed_out < created.answered,
        "the two invocations overlapped in time, so this tests concurrency"
    );
    let lines = process.wait_for_emf_documents(2).await;
    let (logs, documents) = split_stdout(&lines);
    assert_request_context(
        &logs,
        &documents,
        &[(&created, gateway_id(&slow)), (&refused, gateway_id(&fast))],
    );
    let created_doc = document_of(&documents, &gateway_id(&slow));
    let refused_doc = document_of(&documents, &gateway_id(&fast));
    assert_eq!(
        (created_doc["status"].clone(), refused_doc["status"].clone()),
        (201.into(), 422.into())
    );
    assert!(created_doc.get("Errors4xx").is_none(), "{created_doc:#}");
    assert_eq!(refused_doc["Errors4xx"], 1.0);
    assert!(created_doc["Latency"].is_number() && refused_doc["Latency"].is_number());
    // The create read and wrote the table; the refused body never reached it. Neither document
    // holds the other's DynamoDB calls.
    assert_eq!(
        created_doc["DynamoDbLatency"].as_array().map(Vec::len),
        Some(2),
        "the duplicate check and the transaction: {created_doc:#}"
    );
    assert!(
        refused_doc.get("DynamoDbLatency").is_none(),
        "{refused_doc:#}"
    );
    let cold: f64 = documents
        .iter()
        .filter_map(|d| d["ColdStart"].as_f64())
        .sum();
    assert_eq!(cold, 1.0, "one cold start per process");
    process.stop().await;
}

#[tokio::test]
async fn timing_an_unreachable_sentry_does_not_slow_responses() {
    let endpoint = closed_endpoint();
    let sentry_closed = closed_endpoint().replace("http://", "http://publickey@") + "/42";
    let without = FunctionProcess::start(
        function_binary("health"),
        "health",
        &[
            ("TABLE_NAME", "unused"),
            ("AWS_ENDPOINT_URL_DYNAMODB", &endpoint),
        ],
    )
    .await;
    let with = FunctionProcess::start(
        function_binary("health"),
        "health",
        &[
            ("TABLE_NAME", "unused"),
            ("AWS_ENDPOINT_URL_DYNAMODB", &endpoint),
            ("SENTRY_DSN", &sentry_closed),
        ],
    )
    .await;
    let (mut plain, mut reported) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let a = without.api.invoke(event("health", "ok")).await;
        let b = with.api.invoke(event("health", "ok")).await;
        assert_eq!((a.status(), b.status()), (503, 503));
        plain.push(a.response_time());
        reported.push(b.response_time());
    }
    let (plain, reported) = (median(plain), median(reported));
    println!(
        "median response time: without Sentry {plain:?}, with an unreachable Sentry {reported:?}"
    );
    assert!(
        reported <= plain * 2 + Duration::from_millis(25),
        "an unreachable Sentry slowed responses: {reported:?} against {plain:?}"
    );
    without.stop().await;
    with.stop().await;
}

#[tokio::test]
async fn at_log_level_warn_every_emf_document_survives_lambdas_filter() {
    let h = Harness::new().await;
    // Exactly what the template gives the functions for LogLevel=WARN.
    let settings = crate::template::log_settings_for("WARN");
    let lambda_level = settings
        .iter()
        .find(|(name, _)| name == "AWS_LAMBDA_LOG_LEVEL")
        .map(|(_, v)| v.clone())
        .expect("Lambda's level");
    let closed = closed_endpoint();
    let mut env: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.push(("TABLE_NAME", &h.table));
    let healthy = FunctionProcess::start(function_binary("create_user"), "create_user", &env).await;
    let mut broken_env = env.clone();
    broken_env.extend([
        ("AWS_ENDPOINT_URL_DYNAMODB", closed.as_str()),
        ("DYNAMODB_MAX_ATTEMPTS", "1"),
    ]);
    let broken =
        FunctionProcess::start(function_binary("create_user"), "create_user", &broken_env).await;
    for (case, status) in [
        ("ok", 201),
        ("invalid_fields", 422),
        ("duplicate_email", 409),
    ] {
        let invoked = healthy.api.invoke(event("create_user", case)).await;
        assert_eq!(invoked.status(), status, "{case}: {invoked:#?}");
    }
    let failed = broken.api.invoke(event("create_user", "ok")).await;
    assert_eq!(failed.status(), 503, "{failed:#?}");

    let mut stdout = healthy.wait_for_emf_documents(3).await;
    stdout.extend(broken.wait_for_emf_documents(1).await);
    let kept = api_tests::lambda_keeps(&stdout, &lambda_level);
    let (logs, documents) = split_stdout(&kept);
    assert_eq!(
        documents.len(),
        4,
        "every invocation's metrics reach CloudWatch: {kept:#?}"
    );
    for doc in &documents {
        assert_valid_emf(doc);
        assert!(doc["Latency"].is_number(), "{doc:#}");
    }
    assert!(
        documents.iter().any(|d| d["Errors5xx"] == 1.0),
        "the 503 is counted"
    );
    // WARN is applied by the functions themselves: no INFO line was written at all, and the
    // 5xx's error line was written and kept.
    let (all_logs, _) = split_stdout(&stdout);
    assert!(
        all_logs
            .iter()
            .all(|l| l["level"] == "WARN" || l["level"] == "ERROR"),
        "only WARN and ERROR lines at LogLevel=WARN: {all_logs:#?}"
    );
    assert!(
        logs.iter().any(|l| l["level"] == "ERROR"),
        "the 5xx is logged: {logs:#?}"
    );
    // Why the template does this: had Lambda itself filtered at WARN, no document would be left.
    let (_, dropped) = split_stdout(&api_tests::lambda_keeps(&stdout, "WARN"));
    assert!(dropped.is_empty(), "Lambda's rule counts EMF as INFO");
}

/// The log budget (issue 16): one stdout line per request on success and on a 4xx (the access
/// line, which is the EMF document) of at most 600 bytes, on the first request too; a 5xx adds its
/// one error line with the cause chain. Every path of the account's life, through the real
/// binaries; the process's one `init` line is the sandbox's, not a request's.
#[tokio::test]
async fn each_request_writes_one_line_of_at_most_600_bytes_and_a_5xx_one_more() {
    const BUDGET: usize = 600;
    let h = Harness::new().await;
    let created = h.call("create_user", event("create_user", "ok")).await;
    assert_eq!(created.status, 201, "{created:#?}");
    let id = created.body["id"].as_str().expect("an id").to_owned();
    let login = h.call("login", event("login", "ok")).await;
    assert_eq!(login.status, 200, "{login:#?}");
    let token = login.body["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let get_user = samples::fill(
        &event("get_user", "ok"),
        &[
            (samples::USER_ID, id.as_str()),
            (samples::TOKEN, token.as_str()),
        ],
    );
    let paths = [
        ("create_user", event("create_user", "invalid_fields"), 422),
        ("create_user", event("create_user", "duplicate_email"), 409),
        ("login", event("login", "wrong_password"), 401),
        ("get_user", get_user, 200),
        ("get_user", event("get_user", "no_token"), 401),
        ("health", event("health", "ok"), 200),
    ];
    for (function, sample, status) in paths {
        let reply = h.call(function, sample).await;
        assert_eq!(reply.status, status, "{function}: {reply:#?}");
    }
    for function in ["create_user", "login", "get_user", "health"] {
        let process = h.process(function, &[]).await;
        process.init_line().await;
        let lines: Vec<String> = process
            .stdout()
            .into_iter()
            .filter(|l| !l.contains("\"message\":\"init\""))
            .collect();
        let (logs, documents) = split_stdout(&lines);
        assert!(logs.is_empty(), "{function}: only access lines: {logs:#?}");
        assert!(!documents.is_empty(), "{function}: {lines:#?}");
        for line in &lines {
            println!("{function}: {} bytes", line.len() + 1);
            assert!(
                line.len() < BUDGET,
                "{function}: {} bytes with its newline: {line}",
                line.len() + 1
            );
        }
    }

    let closed = closed_endpoint();
    let broken = h
        .process(
            "get_user",
            &[
                ("AWS_ENDPOINT_URL_DYNAMODB", closed.as_str()),
                ("DYNAMODB_MAX_ATTEMPTS", "1"),
            ],
        )
        .await;
    let failing = samples::fill(
        &event("get_user", "ok"),
        &[
            (samples::USER_ID, id.as_str()),
            (samples::TOKEN, token.as_str()),
        ],
    );
    assert_eq!(broken.api.invoke(failing).await.status(), 503);
    let lines: Vec<String> = broken
        .wait_for_emf_documents(1)
        .await
        .into_iter()
        .filter(|l| !l.contains("\"message\":\"init\""))
        .collect();
    let (logs, documents) = split_stdout(&lines);
    assert_eq!((logs.len(), documents.len()), (1, 1), "{lines:#?}");
    assert_eq!(logs[0]["level"], "ERROR");
    assert!(logs[0]["error.chain"].is_array(), "{:#}", logs[0]);
    println!(
        "a 5xx: access line {} bytes, error line {} bytes",
        serde_json::to_string(&documents[0]).map_or(0, |l| l.len() + 1),
        serde_json::to_string(&logs[0]).map_or(0, |l| l.len() + 1)
    );
}
