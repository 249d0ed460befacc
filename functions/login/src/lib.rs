//! `POST /auth/login`: exchange an email and password for a bearer session token. An unknown email
//! and a wrong password get the same 401, with the same headers, after the same DynamoDB reads and
//! the same Argon2id work.
//!
//! Each email has a failure counter ([`shared::domain::LoginLimit`]): once it is at the limit,
//! every login for that email is a 429 with `Retry-After` until its window ends, before any hash,
//! whether the account exists or not. Only the email keys it: nothing else in the request (an
//! `X-Forwarded-For`, say) is read. A successful login deletes the counter.

use std::sync::Arc;

use serde::Serialize;
use shared::{
    ApiError, ApiRequest, App, HandlerResult, Route, StatusCode,
    domain::{Email, FailureKey, LoginLimit, Password, SESSION_TTL, Session, SessionToken, UserId},
    json::JsonObject,
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

/// Checks the email's failure counter, verifies the credentials and starts a session.
pub async fn handle(app: Arc<App>, req: ApiRequest) -> HandlerResult {
    let Credentials { email, password } = parse(req.json_object()?)?;

    let now = chrono::Utc::now();
    let counter = FailureKey::for_email(&email);
    let failures = app.store.login_failures(&counter, req.deadline()).await?;
    if let Some(retry_after) = failures.and_then(|f| f.retry_after(now)) {
        tracing::info!(email = ?email, retry_after_s = retry_after.as_secs(), "login throttled");
        return Err(ApiError::TooManyAttempts { retry_after });
    }

    // The same reads whether the email is known or not: an unknown email reads a user id nobody
    // has, so the number of DynamoDB calls (and their time) does not tell the two apart.
    let owner = app.store.email_owner(&email, req.deadline()).await?;
    let user = app
        .store
        .user_by_id(&owner.unwrap_or_else(UserId::generate), req.deadline())
        .await?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    // Always one verification: against the dummy hash when the email is unknown.
    let verified = app.passwords.verify(password, stored_hash).await?;
    let user = match user {
        Some(user) if verified => user,
        _ => {
            // Counted for unknown emails too, the same way, so the answers stay the same.
            let counted = app
                .store
                .record_login_failure(&counter, now, LoginLimit::WINDOW, req.deadline())
                .await?;
            tracing::info!(
                email = ?email,
                known_email = user.is_some(),
                failures = counted,
                "login refused"
            );
            return Err(ApiError::InvalidCredentials);
        }
    };

    if failures.is_some() {
        app.store
            .clear_login_failures(&counter, req.deadline())
            .await?;
    }
    let token = SessionToken::generate()?;
    app.store
        .put_session(
            &Session::start(&token, user.id.clone(), chrono::Utc::now()),
            req.deadline(),
        )
        .await?;
    tracing::info!(user_id = %user.id, "session started");
    Ok(response::json(
        StatusCode::OK,
        &TokenResponse {
            access_token: token.expose(),
            token_type: "Bearer",
            expires_in: SESSION_TTL.as_secs(),
        },
    ))
}
