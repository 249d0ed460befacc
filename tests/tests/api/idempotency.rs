//! `Idempotency-Key` on `POST /users` (`shared::idempotency`): the four cases Powertools' own
//! end-to-end suite checks (sequential and parallel duplicates, a timed-out first attempt, an
//! expired record), and ours: another payload, a commit whose answer was lost, what the record
//! holds, the scope, and a malformed key. Every case runs against the local DynamoDB server.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use api_tests::{
    DEFAULT_INVOCATION_TIME, Fault, FaultProxy, Harness, Item, Plan, Reply, event, functions,
    invoke_with, invoke_with_deadline, string, with_body, with_header,
};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use shared::App;

const PASSWORD: &str = "correct horse battery";

fn ada() -> Value {
    json!({"email": "Ada@Example.com", "name": "Ada Lovelace", "password": PASSWORD})
}

/// A sign-up of `body` with `Idempotency-Key: key`.
fn keyed(key: &str, body: &Value) -> Value {
    with_header(
        with_body(event("create_user", "ok"), body.to_string()),
        "Idempotency-Key",
        key,
    )
}

/// As [`keyed`], sent with the API key whose id is `api_key_id`.
fn keyed_by(api_key_id: &str, key: &str, body: &Value) -> Value {
    let mut event = keyed(key, body);
    event["requestContext"]["identity"]["apiKeyId"] = json!(api_key_id);
    event
}

fn replayed(reply: &Reply) -> bool {
    reply.header("idempotent-replayed") == Some("true")
}

fn id(reply: &Reply) -> String {
    reply.body["id"].as_str().expect("a user id").to_owned()
}

async fn records(h: &Harness) -> Vec<Item> {
    h.items_with_prefix("IDEMPOTENCY#").await
}

fn number(item: &Item, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} is a number: {item:?}"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after the epoch")
        .as_millis() as u64
}

/// A fresh table, a proxy in front of the local server, and an app that talks through the proxy.
async fn behind_proxy() -> (Harness, FaultProxy, Arc<App>) {
    let h = Harness::new().await;
    let proxy = FaultProxy::start().await;
    let app = h.app_with_endpoint(&proxy.endpoint()).await;
    (h, proxy, app)
}

#[tokio::test]
async fn a_sequential_duplicate_gets_the_same_201_marked_replayed_with_one_user_and_one_hash() {
    let h = Harness::new().await;
    let first = h
        .invoke(functions::create_user(), keyed("k-1", &ada()))
        .await;
    assert_eq!(first.status, 201, "{first:#?}");
    assert!(!replayed(&first), "the first answer is not a replay");
    let second = h
        .invoke(functions::create_user(), keyed("k-1", &ada()))
        .await;
    assert_eq!(second.status, 201, "{second:#?}");
    assert!(replayed(&second), "{second:#?}");
    assert_eq!(second.body, first.body, "the same body, the same user id");
    assert_eq!(second.header("location"), first.header("location"));
    assert_eq!(h.items_with_prefix("USER#").await.len(), 1);
    assert_eq!(
        h.app.passwords.hashes_made(),
        1,
        "the replay hashed nothing"
    );

    // Without the key, the same retry is the 409 a client cannot tell from someone else's account.
    let unkeyed = h
        .invoke(
            functions::create_user(),
            with_body(event("create_user", "ok"), ada().to_string()),
        )
        .await;
    unkeyed.assert_error(409, "user_exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_parallel_duplicates_make_one_user_with_one_hash() {
    let h = Harness::new().await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let app = Arc::clone(&h.app);
        tasks.spawn(async move {
            invoke_with(app, functions::create_user(), keyed("k-par", &ada())).await
        });
    }
    let replies = tasks.join_all().await;
    let firsts: Vec<_> = replies
        .iter()
        .filter(|r| r.status == 201 && !replayed(r))
        .collect();
    assert_eq!(firsts.len(), 1, "one first answer: {replies:#?}");
    let user_id = id(firsts[0]);
    for reply in &replies {
        match reply.status {
            201 => assert_eq!(id(reply), user_id, "every 201 names the one user"),
            409 => {
                reply.assert_error(409, "request_in_progress");
                let retry_after: u64 = reply
                    .header("retry-after")
                    .and_then(|v| v.parse().ok())
                    .expect("a Retry-After in seconds");
                // At most the first request's time left (its lock's end), rounded up.
                let most = DEFAULT_INVOCATION_TIME.as_secs() + 1;
                assert!((1..=most).contains(&retry_after), "{reply:#?}");
            }
            other => panic!("unexpected {other}: {reply:#?}"),
        }
    }
    assert_eq!(h.items_with_prefix("USER#").await.len(), 1);
    assert_eq!(h.items_with_prefix("EMAIL#").await.len(), 1);
    assert_eq!(
        h.app.passwords.hashes_made(),
        1,
        "one hash for ten requests"
    );
    assert_eq!(records(&h).await.len(), 1);
}

#[tokio::test]
async fn a_first_attempt_that_dies_mid_way_blocks_the_key_only_until_its_deadline() {
    let (h, proxy, app) = behind_proxy().await;
    // The first attempt's transaction never comes back, and the sandbox is then stopped (the task
    // is dropped, as Lambda ends a timed-out invocation): it releases nothing.
    proxy.set_plan(Plan::always(Fault::Hang).only("TransactWriteItems"));
    let time_left = Duration::from_secs(3);
    let started = Instant::now();
    let first = tokio::spawn(invoke_with_deadline(
        Arc::clone(&app),
        functions::create_user(),
        keyed("k-dies", &ada()),
        time_left,
    ));
    while proxy.calls("TransactWriteItems") == 0 {
        assert!(started.elapsed() < time_left, "the transaction was sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.abort();
    assert!(first.await.is_err_and(|e| e.is_cancelled()));
    proxy.set_plan(Plan::pass());

    // Before the deadline: the key is held, and the client is told for how long.
    let early = invoke_with(
        Arc::clone(&app),
        functions::create_user(),
        keyed("k-dies", &ada()),
    )
    .await;
    early.assert_error(409, "request_in_progress");
    let retry_after: u64 = early
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=3).contains(&retry_after), "{early:#?}");
    assert!(h.items_with_prefix("USER#").await.is_empty());

    // After it: the retry is served, once.
    tokio::time::sleep((started + time_left + Duration::from_millis(200)) - Instant::now()).await;
    let retry = invoke_with(app, functions::create_user(), keyed("k-dies", &ada())).await;
    assert_eq!(retry.status, 201, "{retry:#?}");
    assert!(!replayed(&retry));
    let users = h.items_with_prefix("USER#").await;
    assert_eq!(users.len(), 1);
    assert_eq!(string(&users[0], "id"), Some(id(&retry).as_str()));
}

#[tokio::test]
async fn after_the_record_expires_the_key_is_free_again() {
    let h = Harness::new().await;
    let first = h
        .invoke(functions::create_user(), keyed("k-exp", &ada()))
        .await;
    assert_eq!(first.status, 201, "{first:#?}");
    let [record] = records(&h).await.try_into().expect("one record");
    // Replayed for 24 hours: valid_until and the TTL attribute say so.
    let day_ms = 24 * 60 * 60 * 1000;
    let valid_until = number(&record, "valid_until");
    assert!(
        valid_until.abs_diff(now_ms() + day_ms) < 60_000,
        "{record:?}"
    );
    assert_eq!(number(&record, "expires_at"), valid_until.div_ceil(1000));

    // A day passes: the record is past its validity (DynamoDB's TTL deletes it up to days later,
    // so the code must not need the deletion).
    let past = (now_ms() - 1).to_string();
    h.client
        .update_item()
        .table_name(&h.table)
        .key("pk", record["pk"].clone())
        .key("sk", record["sk"].clone())
        .update_expression("SET valid_until = :past")
        .expression_attribute_values(":past", AttributeValue::N(past))
        .send()
        .await
        .expect("age the record");

    let grace = json!({"email": "grace@example.com", "name": "Grace Hopper", "password": PASSWORD});
    let again = h
        .invoke(functions::create_user(), keyed("k-exp", &grace))
        .await;
    assert_eq!(again.status, 201, "another payload is served: {again:#?}");
    assert!(!replayed(&again));
    assert_ne!(id(&again), id(&first));
    assert_eq!(h.items_with_prefix("USER#").await.len(), 2);
}

#[tokio::test]
async fn the_same_key_with_another_payload_is_a_422_and_stores_nothing() {
    let h = Harness::new().await;
    let first = h
        .invoke(functions::create_user(), keyed("k-re", &ada()))
        .await;
    assert_eq!(first.status, 201, "{first:#?}");
    let before = h.items().await;

    let other_password =
        json!({"email": "Ada@Example.com", "name": "Ada Lovelace", "password": "another password"});
    let grace = json!({"email": "grace@example.com", "name": "Grace Hopper", "password": PASSWORD});
    for body in [other_password, grace] {
        let reply = h
            .invoke(functions::create_user(), keyed("k-re", &body))
            .await;
        reply.assert_error(422, "idempotency_key_reused");
        assert_eq!(
            reply.body["errors"],
            json!([{"field": "Idempotency-Key", "in": "header", "message": "was already used with a different request; send a new key"}]),
        );
        assert!(!replayed(&reply));
    }
    let mut after = h.items().await;
    let key = |i: &Item| format!("{:?}{:?}", i.get("pk"), i.get("sk"));
    let mut before = before;
    before.sort_by_key(key);
    after.sort_by_key(key);
    assert_eq!(after, before, "nothing stored, nothing changed");
    assert_eq!(h.app.passwords.hashes_made(), 1);
}

#[tokio::test]
async fn a_commit_whose_answer_was_lost_is_replayed_to_the_clients_retry_with_the_same_id() {
    let (h, proxy, app) = behind_proxy().await;
    // Every answer to the transaction is lost: the first attempt commits, our retries cannot tell,
    // and the invocation ends in a 503.
    proxy.set_plan(Plan::always(Fault::LoseResponse).only("TransactWriteItems"));
    let lost = invoke_with(
        Arc::clone(&app),
        functions::create_user(),
        keyed("k-lost", &ada()),
    )
    .await;
    lost.assert_error(503, "service_unavailable");
    assert!(proxy.calls("TransactWriteItems") >= 2, "retried");
    let users = h.items_with_prefix("USER#").await;
    assert_eq!(users.len(), 1, "the first attempt committed");
    let committed = string(&users[0], "id").expect("an id").to_owned();

    proxy.set_plan(Plan::pass());
    let retry = invoke_with(
        Arc::clone(&app),
        functions::create_user(),
        keyed("k-lost", &ada()),
    )
    .await;
    assert_eq!(retry.status, 201, "{retry:#?}");
    assert!(replayed(&retry));
    assert_eq!(id(&retry), committed, "the id the lost answer carried");
    assert_eq!(h.items_with_prefix("USER#").await.len(), 1);
    assert_eq!(app.passwords.hashes_made(), 1);
}

#[tokio::test]
async fn errors_are_not_recorded_and_a_retry_after_one_succeeds() {
    let (h, proxy, app) = behind_proxy().await;
    proxy.set_plan(Plan::always(Fault::ServerError).only("TransactWriteItems"));
    let failed = invoke_with(
        Arc::clone(&app),
        functions::create_user(),
        keyed("k-err", &ada()),
    )
    .await;
    failed.assert_error(503, "service_unavailable");
    assert!(records(&h).await.is_empty(), "the lock was released");

    // A 422 is not recorded either: the body is checked before the key is looked at.
    let invalid = invoke_with(
        Arc::clone(&app),
        functions::create_user(),
        keyed("k-err", &json!({"email": "nope"})),
    )
    .await;
    invalid.assert_error(422, "validation_error");

    proxy.set_plan(Plan::pass());
    let retry = invoke_with(app, functions::create_user(), keyed("k-err", &ada())).await;
    assert_eq!(retry.status, 201, "{retry:#?}");
    assert!(!replayed(&retry));
}

#[tokio::test]
async fn the_record_holds_no_password_token_email_or_key_and_a_keyed_fingerprint() {
    let h = Harness::new().await;
    let key = "client-key-7f3a9c";
    let created = h.invoke(functions::create_user(), keyed(key, &ada())).await;
    assert_eq!(created.status, 201, "{created:#?}");
    let [record] = records(&h).await.try_into().expect("one record");
    let text = format!("{record:?}").to_lowercase();
    for secret in [PASSWORD, "ada@example.com", "ada lovelace", key] {
        assert!(
            !text.contains(secret),
            "{secret:?} is in the record: {text}"
        );
    }
    let fingerprint = string(&record, "fingerprint").expect("a fingerprint");
    let unkeyed = [
        hex::encode(Sha256::digest(PASSWORD)),
        hex::encode(Sha256::digest(ada().to_string())),
        hex::encode(Sha256::digest(format!(
            "ada@example.comAda Lovelace{PASSWORD}"
        ))),
    ];
    assert!(
        !unkeyed.iter().any(|h| h == fingerprint),
        "not a plain SHA-256"
    );
    assert_eq!(fingerprint.len(), 64, "an HMAC-SHA256 in hex");
    assert_eq!(string(&record, "state"), Some("COMPLETED"));
    assert_eq!(string(&record, "reference"), Some(id(&created).as_str()));
    let mut names: Vec<_> = record.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "attempt",
            "entity",
            "expires_at",
            "fingerprint",
            "pk",
            "reference",
            "result_status",
            "sk",
            "state",
            "valid_until"
        ]
    );
}

#[tokio::test]
async fn two_api_keys_choosing_the_same_key_never_see_each_others_result() {
    let h = Harness::new().await;
    let grace = json!({"email": "grace@example.com", "name": "Grace Hopper", "password": PASSWORD});
    let a = h
        .invoke(
            functions::create_user(),
            keyed_by("apikey-a", "shared", &ada()),
        )
        .await;
    let b = h
        .invoke(
            functions::create_user(),
            keyed_by("apikey-b", "shared", &grace),
        )
        .await;
    assert_eq!((a.status, b.status), (201, 201), "{a:#?}\n{b:#?}");
    assert!(!replayed(&b), "b's key is its own");
    assert_ne!(id(&a), id(&b));
    // The same payload and key from the other consumer is that consumer's own first request.
    let ada_from_b = h
        .invoke(
            functions::create_user(),
            keyed_by("apikey-b", "shared-2", &ada()),
        )
        .await;
    ada_from_b.assert_error(409, "user_exists");
    assert_eq!(records(&h).await.len(), 2);
}

#[tokio::test]
async fn a_malformed_key_is_a_422_naming_the_header_and_changes_nothing() {
    let h = Harness::new().await;
    for bad in ["", "has space", &"x".repeat(256), "é"] {
        let reply = h.invoke(functions::create_user(), keyed(bad, &ada())).await;
        reply.assert_error(422, "validation_error");
        assert_eq!(
            reply.body["errors"][0]["field"], "Idempotency-Key",
            "{bad:?}"
        );
        assert_eq!(reply.body["errors"][0]["in"], "header");
    }
    // With a bad body as well, both are named.
    let both = h
        .invoke(
            functions::create_user(),
            keyed("has space", &json!({"email": "ada@example.com"})),
        )
        .await;
    let fields = both.error_fields();
    assert!(fields.contains(&"Idempotency-Key".to_owned()), "{fields:?}");
    assert!(fields.contains(&"/name".to_owned()), "{fields:?}");
    assert!(h.items().await.is_empty());
}

#[tokio::test]
async fn the_real_binary_replays_and_without_its_fingerprint_key_refuses_keyed_requests_only() {
    let h = Harness::new().await;
    let first = h.call("create_user", keyed("k-bin", &ada())).await;
    assert_eq!(first.status, 201, "{first:#?}");
    let second = h.call("create_user", keyed("k-bin", &ada())).await;
    assert_eq!(second.status, 201, "{second:#?}");
    assert!(replayed(&second));
    assert_eq!(second.body, first.body);

    let unset = [("IDEMPOTENCY_FINGERPRINT_KEY", "")];
    let grace = json!({"email": "grace@example.com", "name": "Grace Hopper", "password": PASSWORD});
    let refused = h
        .call_with_env("create_user", &unset, keyed("k-bin-2", &grace))
        .await;
    refused.assert_error(500, "internal_error");
    let unkeyed = h
        .call_with_env(
            "create_user",
            &unset,
            with_body(event("create_user", "ok"), grace.to_string()),
        )
        .await;
    assert_eq!(unkeyed.status, 201, "{unkeyed:#?}");
}
