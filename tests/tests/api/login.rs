//! `POST /auth/login`.

use api_tests::{Harness, event, functions, string, visible};

#[tokio::test]
async fn the_right_password_starts_a_session_stored_only_as_a_hash() {
    let h = Harness::new().await;
    let created = h
        .invoke(functions::create_user(), event("create_user", "ok"))
        .await;
    assert_eq!(created.status, 201);
    let reply = h.invoke(functions::login(), event("login", "ok")).await;
    assert_eq!(reply.status, 200, "{reply:#?}");
    reply.assert_common_headers();
    assert_eq!(
        reply.header("cache-control"),
        Some("no-store"),
        "tokens are never cached"
    );
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_in"], 3600);
    let token = reply.body["access_token"].as_str().expect("a token");
    assert_eq!(
        token.len(),
        43,
        "32 random bytes, base64url without padding"
    );

    let sessions = h.items_with_prefix("SESSION#").await;
    assert_eq!(sessions.len(), 1);
    let pk = string(&sessions[0], "pk").expect("a pk");
    assert_eq!(
        pk.len(),
        "SESSION#".len() + 64,
        "keyed by the token's SHA-256"
    );
    assert_eq!(string(&sessions[0], "user_id"), created.body["id"].as_str());
    for item in h.items().await {
        assert!(
            !format!("{item:?}").contains(token),
            "the raw token is never stored"
        );
    }
    let expires_at: i64 = sessions[0]["expires_at"]
        .as_n()
        .expect("a TTL number")
        .parse()
        .expect("epoch seconds");
    let in_an_hour = chrono_now() + 3600;
    assert!(
        (in_an_hour - 60..=in_an_hour + 1).contains(&expires_at),
        "{expires_at}"
    );
}

fn chrono_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("fits")
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_look_the_same() {
    let h = Harness::new().await;
    assert_eq!(
        h.invoke(functions::create_user(), event("create_user", "ok"))
            .await
            .status,
        201
    );
    let wrong_password = h
        .invoke(functions::login(), event("login", "wrong_password"))
        .await;
    let unknown_email = h
        .invoke(functions::login(), event("login", "unknown_email"))
        .await;
    wrong_password.assert_error(401, "invalid_credentials");
    unknown_email.assert_error(401, "invalid_credentials");
    assert_eq!(wrong_password.body["detail"], "Invalid email or password");
    assert_eq!(visible(&wrong_password), visible(&unknown_email));
    assert!(
        h.items_with_prefix("SESSION#").await.is_empty(),
        "no session was started"
    );
}
