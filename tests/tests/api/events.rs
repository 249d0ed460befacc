//! Every sample event in events/ gives the outcome declared beside it (events/<function>/
//! expected.toml), in the contract shape, served by the function the template deploys for its
//! route, and changes the table only as declared. Every function's events run through its binary
//! by name (`Harness::call`), so a new endpoint's events need no edit here.

use api_tests::{
    Harness, Reply,
    samples::{self, Case, Given},
    template,
};
use serde_json::Value;

/// The table as `case` wants it (`given`), and its event with the placeholders filled in.
pub async fn prepare(h: &Harness, case: &Case) -> Value {
    let mut values = Vec::new();
    let sign_up = match case.expected.given {
        Given::SignedUp | Given::SignedIn => Some("ok"),
        Given::SignedUpWithKey => Some("idempotency_key"),
        Given::Nothing => None,
    };
    if let Some(sign_up) = sign_up {
        let created = h
            .call("create_user", api_tests::event("create_user", sign_up))
            .await;
        assert_eq!(
            created.status,
            201,
            "{}: signing Ada up: {created:#?}",
            case.file()
        );
        let id = created.body["id"].as_str().expect("an id").to_owned();
        values.push((samples::USER_ID, id));
    }
    if case.expected.given == Given::SignedIn {
        let logged_in = h.call("login", api_tests::event("login", "ok")).await;
        assert_eq!(
            logged_in.status,
            200,
            "{}: logging Ada in: {logged_in:#?}",
            case.file()
        );
        let token = logged_in.body["access_token"]
            .as_str()
            .expect("a token")
            .to_owned();
        values.push((samples::TOKEN, token));
    }
    let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    samples::fill(&case.event, &values)
}

/// Asserts that `reply` is the outcome `case` declares, from the function its route is deployed as.
pub fn assert_outcome(case: &Case, reply: &Reply) {
    let file = case.file();
    match &case.expected.code {
        Some(code) => {
            assert_eq!(reply.status, case.expected.status, "{file}: {reply:#?}");
            reply.assert_error(case.expected.status, code);
        }
        None => {
            assert_eq!(reply.status, case.expected.status, "{file}: {reply:#?}");
            reply.assert_common_headers();
        }
    }
    // The binary that answered is the crate template.yaml deploys for the route (its EMF document
    // names the function it was built as; every_sample_event_gives_its_documented_outcome checks
    // each process's route once).
    assert_eq!(reply.emf["Function"], case.function.as_str(), "{file}");
}

#[tokio::test]
async fn every_sample_event_gives_its_documented_outcome() {
    let cases = samples::all_cases();
    assert!(
        cases.len() >= 20,
        "expected the full set of sample events, found {}",
        cases.len()
    );
    // One table, emptied before each event (each starts from what its `given` says).
    let h = Harness::new().await;
    for case in &cases {
        h.clear().await;
        let sample = prepare(&h, case).await;
        let before = h.items().await.len();
        let reply = h.call(&case.function, sample).await;
        assert_outcome(case, &reply);
        let after = h.items().await.len();
        assert_eq!(
            i64::try_from(after).expect("a count") - i64::try_from(before).expect("a count"),
            case.expected.new_items,
            "{}: the table went from {before} to {after} items",
            case.file()
        );
    }
    // Each process says once, in its init line, the route it was built with (the crate's
    // ROUTE): the template's route for that function.
    let functions: std::collections::BTreeSet<&str> =
        cases.iter().map(|c| c.function.as_str()).collect();
    for function in functions {
        let init = h.process(function, &[]).await.init_line().await;
        assert_eq!(
            init["route"],
            template::route_of(function).to_string(),
            "{function}: the crate's ROUTE is the template's route"
        );
        assert_eq!(init["function"], function);
    }
}
