//! `POST /users`.

use api_tests::{
    Harness, event, functions,
    runtime_api::{FunctionProcess, function_binary},
    same_email_sign_ups, string, wire_headers,
};

#[tokio::test]
async fn creates_the_user_and_its_email_item_in_one_go() {
    let h = Harness::new().await;
    let reply = h
        .invoke(functions::create_user(), event("create_user", "ok"))
        .await;
    assert_eq!(reply.status, 201, "{reply:#?}");
    reply.assert_common_headers();
    let id = reply.body["id"].as_str().expect("an id").to_owned();
    assert_eq!(reply.body["email"], "ada@example.com");
    assert_eq!(reply.body["name"], "Ada Lovelace");
    assert!(
        reply.body["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let keys: Vec<&String> = reply.body.as_object().expect("an object").keys().collect();
    assert_eq!(keys.len(), 4, "only id, email, name, created_at: {keys:?}");
    assert_eq!(
        reply.header("location"),
        Some(format!("/users/{id}").as_str()),
        "Location is the new user's URL under the base path (none here), never the request's stage"
    );

    let users = h.items_with_prefix("USER#").await;
    assert_eq!(users.len(), 1);
    assert_eq!(string(&users[0], "pk"), Some(format!("USER#{id}").as_str()));
    assert_eq!(string(&users[0], "sk"), Some("PROFILE"));
    assert_eq!(string(&users[0], "email"), Some("ada@example.com"));
    assert!(
        string(&users[0], "password_hash")
            .is_some_and(|h| h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$")),
        "the password is stored only as an Argon2id hash"
    );
    assert!(
        !reply.text.contains("argon2"),
        "the hash never leaves the store"
    );
    let emails = h.items_with_prefix("EMAIL#").await;
    assert_eq!(emails.len(), 1);
    assert_eq!(string(&emails[0], "pk"), Some("EMAIL#ada@example.com"));
    assert_eq!(string(&emails[0], "user_id"), Some(id.as_str()));
}

#[tokio::test]
async fn an_email_differing_only_in_case_and_spaces_is_taken() {
    let h = Harness::new().await;
    let first = h
        .invoke(functions::create_user(), event("create_user", "ok"))
        .await;
    assert_eq!(first.status, 201);
    let second = h
        .invoke(
            functions::create_user(),
            event("create_user", "duplicate_email"),
        )
        .await;
    second.assert_error(409, "user_exists");
    assert_eq!(second.body["detail"], "User already exists");
    assert_eq!(h.items().await.len(), 2, "the duplicate wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_creates_with_one_email_make_exactly_one_user() {
    let h = Harness::new().await;
    let (created, conflicts) = same_email_sign_ups(h.app.clone(), 50).await;
    assert_eq!((created, conflicts), (1, 49));
    assert_eq!(
        h.items_with_prefix("USER#").await.len(),
        1,
        "exactly one user"
    );
    let emails = h.items_with_prefix("EMAIL#").await;
    assert_eq!(emails.len(), 1, "exactly one email item");
    let users = h.items_with_prefix("USER#").await;
    assert_eq!(
        string(&emails[0], "user_id")
            .map(|id| format!("USER#{id}"))
            .as_deref(),
        string(&users[0], "pk"),
        "the email item points at the one user"
    );
}

/// The `Location` a deployed function hands out, with the environment template.yaml gives it for
/// `parameters`.
async fn deployed_location(h: &Harness, parameters: &[(&str, &str)]) -> String {
    let env: Vec<(String, String)> = ["AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "BASE_PATH"]
        .into_iter()
        .map(|name| {
            (
                name.to_owned(),
                crate::template::global_env(name, parameters),
            )
        })
        .chain([("TABLE_NAME".to_owned(), h.table.clone())])
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let process = FunctionProcess::start(function_binary("create_user"), "create_user", &env).await;
    h.clear().await;
    // The sample event is a REST API event on stage `dev`: its path carries the stage.
    let invoked = process.api.invoke(event("create_user", "ok")).await;
    assert_eq!(invoked.status(), 201, "{invoked:#?}");
    let headers = wire_headers(&invoked.body);
    let body: serde_json::Value =
        serde_json::from_str(invoked.body["body"].as_str().expect("a body")).expect("JSON");
    let id = body["id"].as_str().expect("an id");
    let location = headers.get("location").expect("a Location").clone();
    assert!(location.ends_with(&format!("/users/{id}")), "{location}");
    process.stop().await;
    location
}

#[tokio::test]
async fn location_is_right_on_the_execute_api_url_and_behind_a_custom_domain() {
    let h = Harness::new().await;
    let id_free = |location: &str| location.rsplit_once('/').map(|(p, _)| p.to_owned());
    // API Gateway's own URL (ApiUrl ends in /<Stage>).
    let default = deployed_location(&h, &[("Stage", "prod")]).await;
    assert_eq!(id_free(&default).as_deref(), Some("/prod/users"));
    // A custom domain mapped at its root, then at /v1: no stage in the URL.
    let root = deployed_location(&h, &[("Stage", "prod"), ("BasePath", "/")]).await;
    assert_eq!(id_free(&root).as_deref(), Some("/users"));
    let v1 = deployed_location(&h, &[("Stage", "prod"), ("BasePath", "/v1")]).await;
    assert_eq!(id_free(&v1).as_deref(), Some("/v1/users"));
}
