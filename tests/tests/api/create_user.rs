//! `POST /users`.

use api_tests::{Harness, event, functions, same_email_sign_ups, string};

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
        Some(format!("/dev/users/{id}").as_str()),
        "Location is the new user's URL under the stage the client called"
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
