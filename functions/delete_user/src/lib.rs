//! `DELETE /users/{id}`: deletes the caller's account: the user, its email item and the presented
//! session in one transaction ([`shared::store`] says why that order cannot leave half an account),
//! so the email can sign up again and every session of the account gets 401 from then on (a second
//! delete included). 204. 401 without a valid session, 404 for any id but the caller's own.

use std::sync::Arc;

use shared::{ApiError, ApiRequest, App, HandlerResult, Route, auth, response};

/// The route this function serves.
pub const ROUTE: Route = Route::new("DELETE", "/users/{id}");

/// Authenticates, checks the id is the caller's, then deletes the account.
pub async fn handle(app: Arc<App>, req: ApiRequest) -> HandlerResult {
    let caller = auth::authenticate(&app, &req).await?;
    caller.own(&req)?;
    if !app
        .store
        .delete_user(&caller.user, &caller.session.token_hash, req.deadline())
        .await?
    {
        // Changed since we read it (its sessions revoked): this session is void now.
        return Err(ApiError::Unauthenticated);
    }
    shared::telemetry::annotate("user_id", caller.user.id.to_string());
    Ok(response::no_content())
}
