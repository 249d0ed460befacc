//! `GET /users/{id}`: the caller's own record. 401 (with `WWW-Authenticate: Bearer`) without a valid
//! session; 404 for any id but the caller's own, so ids of other users cannot be probed.

use std::sync::Arc;

use shared::{
    ApiError, ApiRequest, App, HandlerResult, Route, StatusCode,
    domain::{SessionToken, UserId},
    response,
};

/// The route this function serves.
pub const ROUTE: Route = Route::new("GET", "/users/{id}");

/// Authenticates the bearer token, then answers with the caller's own user.
pub async fn handle(app: Arc<App>, req: ApiRequest) -> HandlerResult {
    // A header that cannot hold one of our tokens is refused without a read.
    let token = req
        .bearer_token()
        .and_then(SessionToken::parse)
        .ok_or(ApiError::Unauthenticated)?;
    let session = app
        .store
        .session(&token.hash(), req.deadline())
        .await?
        .filter(|s| s.is_valid_at(chrono::Utc::now()))
        .ok_or(ApiError::Unauthenticated)?;

    let requested = req.path_param("id").and_then(|id| UserId::parse(&id));
    if requested.as_ref() != Some(&session.user_id) {
        return Err(ApiError::NotFound("User"));
    }
    let user = app
        .store
        .user_by_id(&session.user_id, req.deadline())
        .await?
        .ok_or(ApiError::NotFound("User"))?;
    Ok(response::json(StatusCode::OK, &user.view()))
}
