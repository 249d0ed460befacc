//! `POST /users`: sign up. 201 with the user and a `Location`; 409 when the email is taken; 413,
//! 415 and 422 for bodies that are too large, not JSON or invalid. With an `Idempotency-Key`, a
//! retry gets the first 201 again, marked `Idempotent-Replayed: true` ([`shared::idempotency`]).

use std::{sync::Arc, time::SystemTime};

use shared::{
    ApiError, ApiRequest, App, HandlerResult, Response, Route, StatusCode,
    domain::{Email, NewUser, Password, User, UserId, UserName},
    idempotency::{self, Begun, IdempotencyKey, Lock, Scope},
    json::JsonObject,
    response,
    store::CreateUserError,
};

/// The route this function serves.
pub const ROUTE: Route = Route::new("POST", "/users");

/// Checks the key and the body, then signs up once per key.
pub async fn handle(app: Arc<App>, req: ApiRequest) -> HandlerResult {
    let key = req.idempotency_key();
    let new_user = req.json_object().and_then(parse);
    let (key, new_user) = match (key, new_user) {
        (Ok(key), Ok(new_user)) => (key, new_user),
        // Both problems at once when both are wrong.
        (Err(header), Err(ApiError::Validation(mut errors))) => {
            errors.insert(0, header);
            return Err(ApiError::Validation(errors));
        }
        (Err(header), _) => return Err(ApiError::Validation(vec![header])),
        (Ok(_), Err(err)) => return Err(err),
    };
    let Some(key) = key else {
        return sign_up(&app, &req, new_user, None).await;
    };

    let fingerprint_key = app.config.fingerprint_key.as_ref().ok_or_else(|| {
        ApiError::internal(format!(
            "{} is not set: Idempotency-Key requests cannot be served",
            idempotency::FINGERPRINT_KEY_ENV
        ))
    })?;
    let record = key_record(&key, &req);
    let lock_until = idempotency::lock_until(req.invocation().deadline, SystemTime::now());
    let begun = app
        .store
        .begin_idempotent(
            &record,
            &new_user.fingerprint(fingerprint_key),
            lock_until,
            req.deadline(),
        )
        .await?;
    match begun {
        Begun::Fresh(lock) => {
            let result = sign_up(&app, &req, new_user, Some(&lock)).await;
            if let Err(err) = &result {
                release(&app, &req, &lock, err).await;
            }
            result
        }
        Begun::Completed { status, reference } => replay(&app, &req, status, &reference).await,
        Begun::InProgress { retry_after } => Err(ApiError::RequestInProgress { retry_after }),
        Begun::Reused => Err(ApiError::IdempotencyKeyReused),
    }
}

/// The record key of `key` for this caller: scoped by the API key's id.
fn key_record(key: &IdempotencyKey, req: &ApiRequest) -> idempotency::RecordKey {
    key.record_key(ROUTE, &Scope::of_api_key(req.api_key_id()))
}

/// Refuses a taken email, hashes the password and writes the user (with `lock`'s completed
/// record, in the same transaction).
async fn sign_up(
    app: &App,
    req: &ApiRequest,
    new_user: NewUser,
    lock: Option<&Lock>,
) -> HandlerResult {
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
    match app.store.create_user(&user, lock, req.deadline()).await {
        Ok(()) => {}
        Err(CreateUserError::EmailTaken) => return Err(ApiError::UserExists),
        Err(CreateUserError::LockLost) => {
            // The lock ended (this invocation ran past its deadline) and a retry with the key
            // holds it now: that retry answers the client.
            return Err(ApiError::RequestInProgress {
                retry_after: std::time::Duration::from_secs(1),
            });
        }
        Err(CreateUserError::Store(err)) => return Err(err.into()),
    }
    shared::telemetry::annotate("user_id", user.id.to_string());
    Ok(created(app, &user))
}

/// The 201 for `user`, with its `Location`.
fn created(app: &App, user: &User) -> Response<shared::Body> {
    let mut response = response::json(StatusCode::CREATED, &user.view());
    // Built from the base path clients call, not the request's path: behind a custom domain the
    // stage is not in the URL.
    let location = format!("{}/users/{}", app.config.base_path, user.id);
    if let Ok(value) = location.parse() {
        response.headers_mut().insert("location", value);
    }
    response
}

/// The first request's 201 again, rebuilt from the user it made (the record holds its id, never
/// its body).
async fn replay(app: &App, req: &ApiRequest, status: u16, reference: &str) -> HandlerResult {
    let user = match UserId::parse(reference) {
        Some(id) if status == StatusCode::CREATED.as_u16() => {
            app.store.user_by_id(&id, req.deadline()).await?
        }
        _ => {
            return Err(ApiError::internal(format!(
                "an idempotency record of POST /users holds status {status} and an unreadable reference"
            )));
        }
    };
    let Some(user) = user else {
        // The account the key made was deleted since: its answer cannot be given again, and making
        // it anew is not what the key promised either.
        return Err(ApiError::IdempotencyKeyReused);
    };
    tracing::debug!(user_id = %user.id, "sign-up replayed for its Idempotency-Key");
    let mut response = created(app, &user);
    idempotency::mark_replayed(&mut response);
    Ok(response)
}

/// Gives the lock up after `err`, so that a retry with the key is served anew. A release that
/// fails leaves the lock to end at the deadline; the client's answer is `err` either way.
async fn release(app: &App, req: &ApiRequest, lock: &Lock, err: &ApiError) {
    if let Err(release) = app.store.release_idempotent(lock, req.deadline()).await {
        tracing::warn!(
            error = &release as &dyn std::error::Error,
            answer = err.code(),
            "the Idempotency-Key lock could not be released; it ends at the invocation's deadline"
        );
    }
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
