//! `GET /users/{id}`: the caller's own record. 401 (with `WWW-Authenticate: Bearer`) without a valid
//! session; 404 for any id but the caller's own, so ids of other users cannot be probed.

use std::sync::Arc;

use shared::{ApiRequest, App, HandlerResult, Route, StatusCode, auth, response};

/// The route this function serves.
pub const ROUTE: Route = Route::new("GET", "/users/{id}");

/// Authenticates the bearer token, then answers with the caller's own user.
pub async fn handle(app: Arc<App>, req: ApiRequest) -> HandlerResult {
    let caller = auth::authenticate(&app, &req).await?;
    caller.own(&req)?;
    Ok(response::json(StatusCode::OK, &caller.user.view()))
}
