//! `POST /auth/login`: exchange an email and password for a bearer session token. An unknown email
//! and a wrong password get the same 401, with the same headers, after the same DynamoDB calls and
//! the same Argon2id work.
//!
//! Before the hash, the attempt is reserved on its counters ([`shared::domain::login_limit`]): a
//! strict limit per (email, client address), a looser one per email that addresses the owner
//! signed in from are exempt from, and a refusal of addresses that failed too often across
//! emails (password spraying). A refusal is a 429 with `Retry-After`, the same for known and
//! unknown emails. The client address is API Gateway's `sourceIp`; no header is read for it.

use std::sync::Arc;

use serde::Serialize;
use shared::{
    ApiError, ApiRequest, App, HandlerResult, Route, StatusCode,
    domain::{Email, Password, SESSION_TTL, Session, SessionToken, UserId},
    json::JsonObject,
    login_guard::LoginAttempt,
    response,
};

/// The route this function serves.
pub const ROUTE: Route = Route::new("POST", "/auth/login");

#[derive(Debug, Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
}

/// A login body that passed every check.
#[derive(Debug)]
pub struct Credentials {
    /// The normalised email.
    pub email: Email,
    /// The password offered.
    pub password: Password,
}

/// The login body as [`Credentials`], or a 422 naming every problem. Public so the fuzzer checks
/// this very function.
pub fn parse(mut body: JsonObject) -> Result<Credentials, ApiError> {
    let email = body.required("email", Email::parse);
    let password = body.required("password", Password::parse_login);
    let (email, password) = body.finish((email, password))?;
    Ok(Credentials { email, password })
}

/// Reserves the attempt on the login limits, verifies the credentials and starts a session.
pub async fn handle(app: Arc<App>, req: ApiRequest) -> HandlerResult {
    let Credentials { email, password } = parse(req.json_object()?)?;

    let store = &app.store;
    let deadline = req.deadline();
    let attempt = LoginAttempt::reserve(store, &email, req.source_ip(), deadline).await?;

    // The same reads whether the email is known or not: an unknown email reads a user id nobody
    // has, so the number of DynamoDB calls (and their time) does not tell the two apart.
    let owner = store.email_owner(&email, deadline).await?;
    let user = store
        .user_by_id(&owner.unwrap_or_else(UserId::generate), deadline)
        .await?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    // Always one verification: against the dummy hash when the email is unknown.
    let verified = app.passwords.verify(password, stored_hash).await?;
    let user = match user {
        Some(user) if verified => user,
        _ => {
            // Counted for unknown emails too, the same way, so the answers stay the same.
            attempt.failed(store, deadline).await?;
            shared::telemetry::annotate("known_email", user.is_some());
            return Err(ApiError::InvalidCredentials);
        }
    };

    let token = SessionToken::generate()?;
    let session = Session::start(&token, &user, chrono::Utc::now());
    tokio::try_join!(
        store.put_session(&session, deadline),
        attempt.succeeded(store, deadline),
    )?;
    shared::telemetry::annotate("user_id", user.id.to_string());
    Ok(response::json(
        StatusCode::OK,
        &TokenResponse {
            access_token: token.expose(),
            token_type: "Bearer",
            expires_in: SESSION_TTL.as_secs(),
        },
    ))
}
