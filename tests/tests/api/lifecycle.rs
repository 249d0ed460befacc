//! The account lifecycle (`scripts/test.sh -p api-tests lifecycle`): log out, rename, change the
//! password, delete; each through its real binary against the local DynamoDB, with sessions
//! started by login.

use api_tests::{
    Harness, Reply, event,
    fault_proxy::{Fault, FaultProxy, Plan},
    functions, string, with_authorization, with_body,
};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "correct horse battery staple";

/// The lifecycle functions, called by name through their binaries ([`Harness::call_with_env`]),
/// with `env` on top of the usual environment (a fault proxy's endpoint, say).
struct Lifecycle {
    h: Harness,
    env: Vec<(String, String)>,
}

impl Lifecycle {
    async fn start(h: &Harness, env: &[(&str, &str)]) -> Self {
        Self {
            h: h.clone(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    async fn call(&self, function: &str, sample: Value) -> Reply {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.h.call_with_env(function, &env, sample).await
    }

    /// `function`'s `ok` sample, for `id`, with `token`, and `body` when given.
    async fn call_as(&self, function: &str, id: &str, token: &str, body: Option<Value>) -> Reply {
        let mut sample = with_authorization(event(function, "ok"), &format!("Bearer {token}"));
        // The route's own path with `id` in it (`/users/{id}`, `/users/{id}/password`).
        let resource = sample["resource"].as_str().unwrap_or_default().to_owned();
        if resource.contains("{id}") {
            let path = resource.replace("{id}", id);
            let stage = sample["requestContext"]["stage"].as_str().unwrap_or("dev");
            sample["requestContext"]["path"] = Value::from(format!("/{stage}{path}"));
            sample["path"] = Value::from(path);
            sample["pathParameters"] = json!({ "id": id });
        }
        if let Some(body) = body {
            sample = with_body(sample, body.to_string());
        }
        self.call(function, sample).await
    }

    async fn get(&self, id: &str, token: &str) -> Reply {
        self.call_as("get_user", id, token, None).await
    }
}

/// Ada signed up and in; the lifecycle functions run with `env` on top of the usual environment.
/// The harness, the functions, her id and her token.
async fn ada_signed_in(env: &[(&str, &str)]) -> (Harness, Lifecycle, String, String) {
    let h = Harness::new().await;
    let api = Lifecycle::start(&h, env).await;
    let id = sign_up(&h, "ada@example.com").await;
    let token = log_in(&h, "ada@example.com", PASSWORD)
        .await
        .expect("a token");
    (h, api, id, token)
}

fn login_sample(email: &str, password: &str, ip: &str) -> Value {
    let mut sample = with_body(
        event("login", "ok"),
        json!({"email": email, "password": password}).to_string(),
    );
    sample["requestContext"]["identity"]["sourceIp"] = Value::from(ip);
    sample
}

/// Signs `email` up with [`PASSWORD`]; its id.
async fn sign_up(h: &Harness, email: &str) -> String {
    let created = h
        .invoke(
            functions::create_user(),
            with_body(
                event("create_user", "ok"),
                json!({"email": email, "name": "Someone", "password": PASSWORD}).to_string(),
            ),
        )
        .await;
    assert_eq!(created.status, 201, "{created:#?}");
    created.body["id"].as_str().expect("an id").to_owned()
}

/// A session token for `email` and `password`, or the login's status.
async fn log_in(h: &Harness, email: &str, password: &str) -> Result<String, u16> {
    let reply = h
        .invoke(
            functions::login(),
            login_sample(email, password, "192.0.2.50"),
        )
        .await;
    match reply.status {
        200 => Ok(reply.body["access_token"]
            .as_str()
            .expect("a token")
            .to_owned()),
        other => Err(other),
    }
}

#[tokio::test]
async fn logout_ends_that_session_and_no_other() {
    let (h, api, id, a) = ada_signed_in(&[]).await;
    let b = log_in(&h, "ada@example.com", PASSWORD).await.expect("b");

    let out = api.call_as("logout", &id, &a, None).await;
    assert_eq!(out.status, 204, "{out:#?}");
    assert_eq!(out.body, Value::Null, "no body");
    api.get(&id, &a)
        .await
        .assert_error(401, "not_authenticated");
    let again = api.call_as("logout", &id, &a, None).await;
    again.assert_error(401, "not_authenticated");
    assert_eq!(again.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        api.get(&id, &b).await.status,
        200,
        "the other session lives"
    );
    api.call("logout", event("logout", "no_token"))
        .await
        .assert_error(401, "not_authenticated");
    assert_eq!(h.items_with_prefix("SESSION#").await.len(), 1);
}

#[tokio::test]
async fn rename_changes_the_name_and_nothing_else() {
    let (h, api, id, token) = ada_signed_in(&[]).await;
    let before = h.items_with_prefix("USER#").await;

    let renamed = api
        .call_as(
            "update_user",
            &id,
            &token,
            Some(json!({"name": "  Ada King  "})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{renamed:#?}");
    assert_eq!(renamed.body["name"], "Ada King");
    assert_eq!(renamed.body["id"], id.as_str());
    assert_eq!(api.get(&id, &token).await.body["name"], "Ada King");
    let after = h.items_with_prefix("USER#").await;
    for field in ["email", "password_hash", "created_at", "id"] {
        assert_eq!(
            string(&before[0], field),
            string(&after[0], field),
            "{field}"
        );
    }

    for (body, field) in [
        (json!({"name": ""}), "/name"),
        (json!({}), "/name"),
        (json!({"name": "Eve", "email": "eve@example.com"}), "/email"),
        (
            json!({"name": "Eve", "password_hash": "x"}),
            "/password_hash",
        ),
    ] {
        let refused = api
            .call_as("update_user", &id, &token, Some(body.clone()))
            .await;
        refused.assert_error(422, "validation_error");
        let fields: Vec<&str> = refused.body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{body}: {fields:?}");
    }
    assert_eq!(
        api.get(&id, &token).await.body["name"],
        "Ada King",
        "nothing changed"
    );
    api.call("update_user", event("update_user", "no_token"))
        .await
        .assert_error(401, "not_authenticated");
}

#[tokio::test]
async fn a_password_change_revokes_every_other_session() {
    let (h, api, id, mine) = ada_signed_in(&[]).await;
    let stolen = log_in(&h, "ada@example.com", PASSWORD)
        .await
        .expect("stolen");
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});

    // Refused changes change nothing.
    let hash_before =
        string(&h.items_with_prefix("USER#").await[0], "password_hash").map(str::to_owned);
    api.call_as(
        "change_password",
        &id,
        &mine,
        Some(change("wrong horse battery", NEW_PASSWORD)),
    )
    .await
    .assert_error(401, "invalid_credentials");
    api.call_as(
        "change_password",
        &id,
        &mine,
        Some(change(PASSWORD, "short")),
    )
    .await
    .assert_error(422, "validation_error");
    let hash_now =
        string(&h.items_with_prefix("USER#").await[0], "password_hash").map(str::to_owned);
    assert_eq!(hash_before, hash_now);
    assert_eq!(api.get(&id, &stolen).await.status, 200);

    let changed = api
        .call_as(
            "change_password",
            &id,
            &mine,
            Some(change(PASSWORD, NEW_PASSWORD)),
        )
        .await;
    assert_eq!(changed.status, 204, "{changed:#?}");
    api.get(&id, &stolen)
        .await
        .assert_error(401, "not_authenticated");
    for function in ["update_user", "logout", "delete_user"] {
        let body = (function == "update_user").then(|| json!({"name": "Mallory"}));
        api.call_as(function, &id, &stolen, body)
            .await
            .assert_error(401, "not_authenticated");
    }
    assert_eq!(
        api.get(&id, &mine).await.status,
        200,
        "the caller's session stays"
    );
    assert_eq!(log_in(&h, "ada@example.com", PASSWORD).await, Err(401));
    let fresh = log_in(&h, "ada@example.com", NEW_PASSWORD)
        .await
        .expect("the new password");
    assert_eq!(api.get(&id, &fresh).await.status, 200);
    let hash_after =
        string(&h.items_with_prefix("USER#").await[0], "password_hash").map(str::to_owned);
    assert!(
        hash_after.is_some_and(|h| h.starts_with("$argon2id$") && Some(h.clone()) != hash_before)
    );
}

#[tokio::test]
async fn a_wrong_current_password_counts_against_the_login_limit() {
    let (h, api, id, token) = ada_signed_in(&[]).await;
    let wrong = json!({"current_password": "wrong horse battery", "new_password": NEW_PASSWORD});
    // The sample's address (203.0.113.10): its pair for Ada has five attempts.
    for _ in 0..5 {
        api.call_as("change_password", &id, &token, Some(wrong.clone()))
            .await
            .assert_error(401, "invalid_credentials");
    }
    let limited = api
        .call_as("change_password", &id, &token, Some(wrong))
        .await;
    limited.assert_error(429, "too_many_attempts");
    assert!(limited.header("retry-after").is_some(), "{limited:#?}");
    // The same counter as login's: a login for Ada from that address is refused too.
    let login = h
        .invoke(
            functions::login(),
            login_sample("ada@example.com", PASSWORD, "203.0.113.10"),
        )
        .await;
    login.assert_error(429, "too_many_attempts");
}

#[tokio::test]
async fn delete_removes_the_account_everywhere_and_frees_the_email() {
    let (h, api, id, mine) = ada_signed_in(&[]).await;
    let other = log_in(&h, "ada@example.com", PASSWORD)
        .await
        .expect("other");

    let deleted = api.call_as("delete_user", &id, &mine, None).await;
    assert_eq!(deleted.status, 204, "{deleted:#?}");
    assert!(h.items_with_prefix("USER#").await.is_empty());
    assert!(h.items_with_prefix("EMAIL#").await.is_empty());
    api.call_as("delete_user", &id, &mine, None)
        .await
        .assert_error(401, "not_authenticated");
    api.get(&id, &mine)
        .await
        .assert_error(401, "not_authenticated");
    api.get(&id, &other)
        .await
        .assert_error(401, "not_authenticated");
    assert_eq!(log_in(&h, "ada@example.com", PASSWORD).await, Err(401));
    // The email is free again, for a new account with a new id.
    let again = sign_up(&h, "ada@example.com").await;
    assert_ne!(again, id);
}

#[tokio::test]
async fn no_new_route_reaches_another_users_account() {
    let h = Harness::new().await;
    let api = Lifecycle::start(&h, &[]).await;
    let ada = sign_up(&h, "ada@example.com").await;
    sign_up(&h, "eve@example.com").await;
    let eve = log_in(&h, "eve@example.com", PASSWORD)
        .await
        .expect("Eve's token");
    let before = h.items_with_prefix("USER#").await;
    for (function, body) in [
        ("update_user", Some(json!({"name": "Pwned"}))),
        (
            "change_password",
            Some(json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
        ),
        ("delete_user", None),
    ] {
        for id in [ada.as_str(), "not-an-id", "USER#x", ""] {
            api.call_as(function, id, &eve, body.clone())
                .await
                .assert_error(404, "not_found");
        }
    }
    let mut after = h.items_with_prefix("USER#").await;
    let mut before = before;
    before.sort_by_key(|i| string(i, "pk").map(str::to_owned));
    after.sort_by_key(|i| string(i, "pk").map(str::to_owned));
    assert_eq!(before, after, "nothing changed");
    // The sample events say the same.
    for function in ["update_user", "change_password", "delete_user"] {
        let sample = with_authorization(event(function, "other_user"), &format!("Bearer {eve}"));
        api.call(function, sample)
            .await
            .assert_error(404, "not_found");
    }
}

#[tokio::test]
async fn a_login_racing_a_password_change_never_keeps_a_session() {
    let (h, api, id, mine) = ada_signed_in(&[]).await;
    let body = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    let (changed, raced) = tokio::join!(
        api.call_as("change_password", &id, &mine, Some(body)),
        log_in(&h, "ada@example.com", PASSWORD),
    );
    assert_eq!(changed.status, 204, "{changed:#?}");
    // Whichever came first, a session made with the old password admits nobody now.
    if let Ok(token) = raced {
        api.get(&id, &token)
            .await
            .assert_error(401, "not_authenticated");
    }
    assert_eq!(api.get(&id, &mine).await.status, 200);
}

#[tokio::test]
async fn a_sign_up_racing_a_delete_never_leaves_two_users_for_one_email() {
    let h = Harness::new().await;
    let api = Lifecycle::start(&h, &[]).await;
    for round in 0..5 {
        h.clear().await;
        let id = sign_up(&h, "ada@example.com").await;
        let token = log_in(&h, "ada@example.com", PASSWORD)
            .await
            .expect("a token");
        let sign_up_again = h.invoke(
            functions::create_user(),
            with_body(
                event("create_user", "ok"),
                json!({"email": "ada@example.com", "name": "Ada II", "password": PASSWORD})
                    .to_string(),
            ),
        );
        let (deleted, created) =
            tokio::join!(api.call_as("delete_user", &id, &token, None), sign_up_again);
        assert_eq!(deleted.status, 204, "round {round}: {deleted:#?}");
        assert!(
            [201, 409].contains(&created.status),
            "round {round}: {created:#?}"
        );
        let users = h.items_with_prefix("USER#").await;
        let emails = h.items_with_prefix("EMAIL#").await;
        assert!(users.len() <= 1, "round {round}: {users:#?}");
        assert_eq!(
            users.len(),
            emails.len(),
            "round {round}: no orphan either way"
        );
        if let (Some(user), Some(email)) = (users.first(), emails.first()) {
            assert_eq!(
                string(user, "id"),
                string(email, "user_id"),
                "round {round}"
            );
            assert_eq!(
                created.status, 201,
                "round {round}: a user exists, so the sign-up made it"
            );
        }
    }
}

/// Ada signed up and in directly; the lifecycle functions reach DynamoDB through a fault proxy.
async fn behind_the_fault_proxy() -> (Harness, FaultProxy, Lifecycle, String, String) {
    let proxy = FaultProxy::start().await;
    let endpoint = proxy.endpoint();
    let (h, api, id, token) =
        ada_signed_in(&[("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str())]).await;
    (h, proxy, api, id, token)
}

#[tokio::test]
async fn a_delete_whose_answer_was_lost_is_retried_to_204_with_nothing_left() {
    let (h, proxy, api, id, token) = behind_the_fault_proxy().await;
    proxy.set_plan(Plan::first(1, Fault::LoseResponse).only("TransactWriteItems"));
    let deleted = api.call_as("delete_user", &id, &token, None).await;
    assert_eq!(deleted.status, 204, "{deleted:#?}");
    assert_eq!(
        proxy.calls("TransactWriteItems"),
        2,
        "{:?}",
        proxy.calls_by_operation()
    );
    for prefix in ["USER#", "EMAIL#", "SESSION#"] {
        assert!(
            h.items_with_prefix(prefix).await.is_empty(),
            "{prefix} left behind"
        );
    }
}

#[tokio::test]
async fn a_persistent_outage_is_a_503_with_retry_after_after_three_calls_at_most() {
    let (h, proxy, api, id, token) = behind_the_fault_proxy().await;
    proxy.set_plan(Plan::always(Fault::ServerError));
    for (function, body) in [
        ("logout", None),
        ("update_user", Some(json!({"name": "Ada King"}))),
        (
            "change_password",
            Some(json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
        ),
        ("delete_user", None),
    ] {
        let before = proxy.total_calls();
        let answer = api.call_as(function, &id, &token, body).await;
        answer.assert_error(503, "service_unavailable");
        assert!(
            answer
                .header("retry-after")
                .is_some_and(|v| v.parse::<u32>().is_ok_and(|n| n >= 1)),
            "{function}: {answer:#?}"
        );
        // The first call (the session read) fails three times; nothing after it is tried.
        assert_eq!(
            proxy.total_calls() - before,
            3,
            "{function}: {:?}",
            proxy.calls_by_operation()
        );
    }
    assert_eq!(
        h.items_with_prefix("USER#").await.len(),
        1,
        "nothing changed"
    );
}

#[tokio::test]
async fn a_method_a_path_does_not_serve_names_every_method_the_path_does() {
    let h = Harness::new().await;
    let api = Lifecycle::start(&h, &[]).await;
    for (function, allow) in [
        ("update_user", "DELETE,GET,PATCH,OPTIONS"),
        ("delete_user", "DELETE,GET,PATCH,OPTIONS"),
        ("get_user", "DELETE,GET,PATCH,OPTIONS"),
        ("change_password", "PUT,OPTIONS"),
        ("logout", "POST,OPTIONS"),
    ] {
        let sample = if function == "get_user" {
            let mut sample = event("update_user", "method_not_allowed");
            sample["httpMethod"] = Value::from("POST");
            sample
        } else {
            event(function, "method_not_allowed")
        };
        let refused = api.call(function, sample).await;
        refused.assert_error(405, "method_not_allowed");
        assert_eq!(
            refused.header("allow"),
            Some(allow),
            "{function}: the path's methods, as openapi.yaml (and API Gateway's ANY mock) name them"
        );
    }
}
