//! `POST /auth/login`: exchange an email and password for a bearer session token. An unknown email
//! and a wrong password get the same 401, with the same headers, after the same Argon2id work.

use std::sync::Arc;

use serde::Serialize;
use shared::{
    ApiError, ApiRequest, App, HandlerResult, Route, StatusCode,
    domain::{Email, Password, SESSION_TTL, Session, SessionToken},
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

/// Verifies the credentials and starts a session.
pub async fn handle(app: Arc<App>, req: ApiRequest) -> HandlerResult {
    let mut body = req.json_object()?;
    let email = body.required("email", Email::parse);
    let password = body.required("password", Password::parse_login);
    let (email, password) = body.finish((email, password))?;

    let user = app.store.user_by_email(&email, req.deadline()).await?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    // Always one verification: against the dummy hash when the email is unknown.
    let verified = app.passwords.verify(password, stored_hash).await?;
    let user = match user {
        Some(user) if verified => user,
        _ => {
            tracing::info!(email = ?email, known_email = user.is_some(), "login refused");
            return Err(ApiError::InvalidCredentials);
        }
    };

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
