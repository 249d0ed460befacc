//! `GET /users/{id}`: only the caller's own record, only with a valid session.

use api_tests::{Harness, event, functions, with_authorization, with_user_id};
use shared::domain::{Session, SessionToken, UserId};

use crate::ada_signed_in;

#[tokio::test]
async fn the_caller_gets_their_own_record() {
    let h = Harness::new().await;
    let (id, token) = ada_signed_in(&h).await;
    let sample = with_user_id(
        with_authorization(event("get_user", "ok"), &format!("bearer {token}")),
        &id,
    );
    let reply = h.invoke(functions::get_user(), sample).await;
    assert_eq!(reply.status, 200, "{reply:#?}");
    reply.assert_common_headers();
    assert_eq!(reply.body["id"], id.as_str());
    assert_eq!(reply.body["email"], "ada@example.com");
    assert!(reply.body.get("password_hash").is_none());
}

#[tokio::test]
async fn another_users_id_is_not_found_and_never_read() {
    let h = Harness::new().await;
    let (_, ada_token) = ada_signed_in(&h).await;
    let grace = h
        .invoke(
            functions::create_user(),
            api_tests::with_body(
                event("create_user", "ok"),
                r#"{"email":"grace@example.com","name":"Grace Hopper","password":"cobol forever 1959"}"#,
            ),
        )
        .await;
    assert_eq!(grace.status, 201);
    let grace_id = grace.body["id"].as_str().expect("an id");
    let sample = with_user_id(
        with_authorization(
            event("get_user", "other_user"),
            &format!("Bearer {ada_token}"),
        ),
        grace_id,
    );
    let reply = h.invoke(functions::get_user(), sample).await;
    reply.assert_error(404, "not_found");
    assert!(!reply.text.contains("grace"), "{}", reply.text);
}

#[tokio::test]
async fn without_a_valid_token_the_answer_is_401_with_a_bearer_challenge() {
    let h = Harness::new().await;
    let (id, token) = ada_signed_in(&h).await;
    let expired = SessionToken::generate().expect("randomness");
    let long_ago = chrono::Utc::now() - chrono::Duration::hours(2);
    let ada = h
        .app
        .store
        .user_by_id(
            &UserId::parse(&id).expect("a user id"),
            shared::store::Deadline::NONE,
        )
        .await
        .expect("read")
        .expect("Ada");
    h.app
        .store
        .put_session(
            &Session::start(&expired, &ada, long_ago),
            shared::store::Deadline::NONE,
        )
        .await
        .expect("store the expired session");
    for authorization in [
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some(format!("Basic {token}")),
        Some("Bearer not-a-session-token".to_owned()),
        Some(format!(
            "Bearer {}",
            SessionToken::generate().expect("randomness").expose()
        )),
        Some(format!("Bearer {}", expired.expose())),
    ] {
        let mut sample = with_user_id(event("get_user", "no_token"), &id);
        if let Some(value) = &authorization {
            sample = with_authorization(sample, value);
        }
        let reply = h.invoke(functions::get_user(), sample).await;
        reply.assert_error(401, "not_authenticated");
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer"),
            "{authorization:?}"
        );
    }
}
