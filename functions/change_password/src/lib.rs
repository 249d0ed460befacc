//! `PUT /users/{id}/password`: changes the caller's password. The body is
//! `{"current_password", "new_password"}`; the new one follows the sign-up rules (422 otherwise).
//! 204, and every other session of the user is revoked (the caller's stays valid).
//!
//! The current password is checked like a login: behind the same login limits
//! ([`shared::login_guard`]; a refusal is 429), with one Argon2id verification, and a wrong one is
//! 401 `invalid_credentials` counted against the limits. 401 without a valid session, 404 for any
//! id but the caller's own.

use std::sync::Arc;

use shared::{
    ApiError, ApiRequest, App, HandlerResult, Route, auth, domain::Password, json::JsonObject,
    login_guard::LoginAttempt, response,
};

/// The route this function serves.
pub const ROUTE: Route = Route::new("PUT", "/users/{id}/password");

/// A password change body that passed every check.
#[derive(Debug)]
pub struct PasswordChange {
    /// The password the caller says is theirs now.
    pub current: Password,
    /// The password they want.
    pub new: Password,
}

/// The body as a [`PasswordChange`], or a 422 naming every problem (the fuzzer covers `JsonObject`
/// and both password rules).
pub fn parse(mut body: JsonObject) -> Result<PasswordChange, ApiError> {
    let current = body.required("current_password", Password::parse_login);
    let new = body.required("new_password", Password::parse_new);
    let (current, new) = body.finish((current, new))?;
    Ok(PasswordChange { current, new })
}

/// Authenticates, checks the id and the current password, then stores the new hash and revokes
/// the other sessions.
pub async fn handle(app: Arc<App>, req: ApiRequest) -> HandlerResult {
    let caller = auth::authenticate(&app, &req).await?;
    caller.own(&req)?;
    let PasswordChange { current, new } = parse(req.json_object()?)?;
    let (store, deadline) = (&app.store, req.deadline());

    let attempt =
        LoginAttempt::reserve(store, &caller.user.email, req.source_ip(), deadline).await?;
    let verified = app
        .passwords
        .verify(current, Some(caller.user.password_hash.clone()))
        .await?;
    if !verified {
        attempt.failed(store, deadline).await?;
        shared::telemetry::annotate("user_id", caller.user.id.to_string());
        return Err(ApiError::InvalidCredentials);
    }
    let new_hash = app.passwords.hash(new).await?;
    if !store
        .change_password(
            &caller.user,
            &new_hash,
            &caller.session.token_hash,
            deadline,
        )
        .await?
    {
        // Changed or deleted since we read it: this session is void now.
        return Err(ApiError::Unauthenticated);
    }
    attempt.succeeded(store, deadline).await?;
    shared::telemetry::annotate("user_id", caller.user.id.to_string());
    Ok(response::no_content())
}
