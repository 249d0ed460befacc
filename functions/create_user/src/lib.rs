//! `POST /users`: sign up. 201 with the user and a `Location`; 409 when the email is taken; 413,
//! 415 and 422 for bodies that are too large, not JSON or invalid.

use std::sync::Arc;

use shared::{
    ApiError, ApiRequest, App, HandlerResult, Route, StatusCode,
    domain::{Email, NewUser, Password, User, UserName},
    json::JsonObject,
    response,
    store::CreateUserError,
};

/// The route this function serves.
pub const ROUTE: Route = Route::new("POST", "/users");

/// Parses the body, refuses a taken email, hashes the password and writes the user.
pub async fn handle(app: Arc<App>, req: ApiRequest) -> HandlerResult {
    let new_user = parse(req.json_object()?)?;

    // Cheap early answer for the common duplicate (one read: the email item alone); the transaction
    // below is what makes it race-safe.
    if app
        .store
        .email_owner(&new_user.email, req.deadline())
        .await?
        .is_some()
    {
        return Err(ApiError::UserExists);
    }

    let NewUser {
        email,
        name,
        password,
    } = new_user;
    let user = User::new(email, name, app.passwords.hash(password).await?);
    match app.store.create_user(&user, req.deadline()).await {
        Ok(()) => {}
        Err(CreateUserError::EmailTaken) => return Err(ApiError::UserExists),
        Err(CreateUserError::Store(err)) => return Err(err.into()),
    }
    tracing::info!(user_id = %user.id, email = ?user.email, "user created");

    let mut response = response::json(StatusCode::CREATED, &user.view());
    // Built from the base path clients call, not the request's path: behind a custom domain the
    // stage is not in the URL.
    let location = format!("{}/users/{}", app.config.base_path, user.id);
    if let Ok(value) = location.parse() {
        response.headers_mut().insert("location", value);
    }
    Ok(response)
}

/// The sign-up body as a valid [`NewUser`], or a 422 naming every problem. Public so the fuzzer
/// checks this very function.
pub fn parse(mut body: JsonObject) -> Result<NewUser, ApiError> {
    let email = body.required("email", Email::parse);
    let name = body.required("name", UserName::parse);
    let password = body.required("password", Password::parse_new);
    let (email, name, password) = body.finish((email, name, password))?;
    Ok(NewUser {
        email,
        name,
        password,
    })
}
