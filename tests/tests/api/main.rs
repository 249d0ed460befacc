//! Black-box tests of every function against the local DynamoDB server (`make test`).

// A test harness: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cold_start;
mod contract;
mod cors;
mod create_user;
mod events;
mod get_user;
mod harness;
mod health;
mod hostile_input;
mod iam;
mod idempotency;
mod lifecycle;
mod login;
mod panics;
mod resilience;
mod security;
mod telemetry;
mod template;
mod traces;

use api_tests::{Harness, event, functions};

/// Signs Ada up and logs her in with the sample events; returns her id and access token.
pub async fn ada_signed_in(h: &Harness) -> (String, String) {
    let created = h
        .invoke(functions::create_user(), event("create_user", "ok"))
        .await;
    assert_eq!(created.status, 201, "{created:#?}");
    let logged_in = h.invoke(functions::login(), event("login", "ok")).await;
    assert_eq!(logged_in.status, 200, "{logged_in:#?}");
    (
        created.body["id"].as_str().expect("an id").to_owned(),
        logged_in.body["access_token"]
            .as_str()
            .expect("a token")
            .to_owned(),
    )
}
