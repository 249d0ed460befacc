//! `PATCH /users/{id}`: renames the caller. The body is `{"name": ...}` and nothing else (any other
//! field, or a name the sign-up rules refuse, is a 422); 200 with the user. 401 without a valid
//! session, 404 for any id but the caller's own.

use std::sync::Arc;

use shared::{
    ApiError, ApiRequest, App, HandlerResult, Route, StatusCode, auth, domain::UserName,
    json::JsonObject, response,
};

/// The route this function serves.
pub const ROUTE: Route = Route::new("PATCH", "/users/{id}");

/// The new name, or a 422 naming every problem (the fuzzer covers `JsonObject` and `UserName`).
pub fn parse(mut body: JsonObject) -> Result<UserName, ApiError> {
    let name = body.required("name", UserName::parse);
    let (name,) = body.finish((name,))?;
    Ok(name)
}

/// Authenticates, checks the id is the caller's, then stores the new name.
pub async fn handle(app: Arc<App>, req: ApiRequest) -> HandlerResult {
    let caller = auth::authenticate(&app, &req).await?;
    caller.own(&req)?;
    let name = parse(req.json_object()?)?;
    // The write is conditional on the user as authenticated: a deletion or a password change in
    // between (which voids this session) refuses it.
    let user = app
        .store
        .rename_user(&caller.user, &name, req.deadline())
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    Ok(response::json(StatusCode::OK, &user.view()))
}
