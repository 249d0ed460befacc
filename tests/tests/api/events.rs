//! Every sample event in events/ gives the outcome its name promises, in the contract shape, and
//! changes the table only when it should.

use api_tests::{Harness, Reply, all_events, event, functions, with_authorization, with_user_id};
use serde_json::Value;

use crate::ada_signed_in;

/// What a sample event must produce: status, error code (None on success), and how many items the
/// table gains.
fn expected(function: &str, case: &str) -> (u16, Option<&'static str>, usize) {
    match (function, case) {
        ("health", "ok") => (200, None, 0),
        ("create_user", "ok") => (201, None, 2),
        ("create_user", "duplicate_email") => (409, Some("user_exists"), 0),
        ("create_user", "too_large") => (413, Some("payload_too_large"), 0),
        ("create_user" | "login", "wrong_content_type" | "missing_content_type") => {
            (415, Some("unsupported_media_type"), 0)
        }
        (
            "create_user",
            "invalid_fields" | "missing_fields" | "wrong_types" | "unknown_field"
            | "malformed_json" | "not_an_object" | "password_too_long",
        )
        | ("login", "invalid_fields") => (422, Some("validation_error"), 0),
        // The session, the email's attempt counter and the pair's trust mark (the pair's counter
        // is reserved, then deleted by the success).
        ("login", "ok") => (200, None, 3),
        // A failed login is counted on the pair's, the email's and the address's counters.
        ("login", "wrong_password" | "unknown_email") => (401, Some("invalid_credentials"), 3),
        ("get_user", "ok") => (200, None, 0),
        ("get_user", "no_token" | "invalid_token") => (401, Some("not_authenticated"), 0),
        ("get_user", "other_user" | "malformed_id") => (404, Some("not_found"), 0),
        // A method the route does not serve (API Gateway answers it first; this is the function's
        // own answer when one arrives anyway), from a page on an allowed origin.
        (_, "method_not_allowed") => (405, Some("method_not_allowed"), 0),
        _ => panic!("events/{function}/{case}.json has no expected outcome in this test: add one"),
    }
}

/// Prepares the table a sample needs (Ada signed up for login and duplicates, signed in for
/// get_user) and adapts the get_user samples to the real session.
async fn prepare(h: &Harness, function: &str, case: &str, mut sample: Value) -> Value {
    match (function, case) {
        ("login", _) | ("create_user", "duplicate_email") => {
            let created = h
                .invoke(functions::create_user(), event("create_user", "ok"))
                .await;
            assert_eq!(created.status, 201, "{created:#?}");
        }
        ("get_user", _) => {
            let (user_id, token) = ada_signed_in(h).await;
            if case != "invalid_token" && sample["headers"]["Authorization"].is_string() {
                // The sample's token stands for a real session: use the one just made.
                sample = with_authorization(sample, &format!("Bearer {token}"));
            }
            if case == "ok" {
                sample = with_user_id(sample, &user_id);
            }
        }
        _ => {}
    }
    sample
}

async fn run(h: &Harness, function: &str, sample: Value) -> Reply {
    match function {
        "health" => h.invoke(functions::health(), sample).await,
        "create_user" => h.invoke(functions::create_user(), sample).await,
        "login" => h.invoke(functions::login(), sample).await,
        "get_user" => h.invoke(functions::get_user(), sample).await,
        other => panic!("events/{other}/ has no function"),
    }
}

#[tokio::test]
async fn every_sample_event_gives_its_documented_outcome() {
    let events = all_events();
    assert!(
        events.len() >= 20,
        "expected the full set of sample events, found {events:?}"
    );
    // One table, emptied before each event (each starts from nothing, as the expectations say).
    let h = Harness::new().await;
    for (function, case) in events {
        h.clear().await;
        let sample = prepare(&h, &function, &case, event(&function, &case)).await;
        let before = h.items().await.len();
        let reply = run(&h, &function, sample).await;
        let (status, code, new_items) = expected(&function, &case);
        match code {
            Some(code) => {
                reply.assert_error(status, code);
            }
            None => {
                assert_eq!(
                    reply.status, status,
                    "events/{function}/{case}.json: {reply:#?}"
                );
                reply.assert_common_headers();
            }
        }
        assert_eq!(
            h.items().await.len(),
            before + new_items,
            "events/{function}/{case}.json: the table gained the wrong number of items"
        );
    }
}
