//! `POST /auth/logout`: ends the session whose bearer token the request presents. 204; that token
//! gets 401 everywhere afterwards. Without a valid session, 401 (a second logout with the same
//! token included). The user's other sessions are not touched.

use std::sync::Arc;

use shared::{ApiRequest, App, HandlerResult, Route, auth, response};

/// The route this function serves.
pub const ROUTE: Route = Route::new("POST", "/auth/logout");

/// Authenticates the bearer token, then deletes its session.
pub async fn handle(app: Arc<App>, req: ApiRequest) -> HandlerResult {
    let caller = auth::authenticate(&app, &req).await?;
    app.store
        .delete_session(&caller.session.token_hash, req.deadline())
        .await?;
    shared::telemetry::annotate("user_id", caller.user.id.to_string());
    Ok(response::no_content())
}
