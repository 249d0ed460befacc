//! `POST /auth/login`: exchange an email and password for a bearer session token. An unknown email
//! and a wrong password get the same 401, with the same headers, after the same DynamoDB calls and
//! the same Argon2id work.
//!
//! Before the hash, the attempt is reserved on its counters ([`shared::domain::login_limit`]): a
//! strict limit per (email, client address), a looser one per email that addresses the owner
//! signed in from are exempt from, and a refusal of addresses that failed too often across
//! emails (password spraying). A refusal is a 429 with `Retry-After`, the same for known and
//! unknown emails. The client address is API Gateway's `sourceIp`; no header is read for it.

use std::sync::Arc;

use serde::Serialize;
use shared::{
    ApiError, ApiRequest, App, HandlerResult, Route, StatusCode,
    domain::{
        ClientAddress, Email, Limit, LoginCounters, LoginLimit, Password, SESSION_TTL, Session,
        SessionToken, UserId,
    },
    json::JsonObject,
    metric, response,
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

/// Reserves the attempt on the login limits, verifies the credentials and starts a session.
pub async fn handle(app: Arc<App>, req: ApiRequest) -> HandlerResult {
    let Credentials { email, password } = parse(req.json_object()?)?;

    let now = chrono::Utc::now();
    let address = ClientAddress::from_source_ip(req.source_ip());
    let counters = LoginCounters::new(&email, &address, now);
    let window = counters.window;
    let refuse = |limit: Limit| {
        let retry_after = window.retry_after(now);
        tracing::info!(
            email = ?email,
            limit = limit.as_str(),
            retry_after_s = retry_after.as_secs(),
            "login throttled"
        );
        ApiError::TooManyAttempts { retry_after }
    };
    let store = &app.store;
    let deadline = req.deadline();
    let address_failures = store
        .login_failures(&counters.address, window, deadline)
        .await?;
    if address_failures >= LoginLimit::PER_ADDRESS_FAILURES {
        return Err(refuse(Limit::Address));
    }
    let pair_limit = Some(LoginLimit::PER_PAIR);
    if !store
        .reserve_login_attempt(&counters.pair, window, pair_limit, deadline)
        .await?
    {
        return Err(refuse(Limit::Pair));
    }
    let email_limit = Some(LoginLimit::PER_EMAIL);
    if !store
        .reserve_login_attempt(&counters.email, window, email_limit, deadline)
        .await?
        // At the ceiling, a pair that signed in before may still try (uncounted: the count only
        // matters up to the ceiling). Read only here, so every other path makes the same calls.
        && !store.login_trusted(&counters.pair, now, deadline).await?
    {
        return Err(refuse(Limit::Email));
    }

    // The same reads whether the email is known or not: an unknown email reads a user id nobody
    // has, so the number of DynamoDB calls (and their time) does not tell the two apart.
    let owner = store.email_owner(&email, deadline).await?;
    let user = store
        .user_by_id(&owner.unwrap_or_else(UserId::generate), deadline)
        .await?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    // Always one verification: against the dummy hash when the email is unknown.
    let verified = app.passwords.verify(password, stored_hash).await?;
    let user = match user {
        Some(user) if verified => user,
        _ => {
            metric::LOGIN_FAILURES.count(1);
            // Counted for unknown emails too, the same way, so the answers stay the same.
            let failures = store
                .count_login_failure(&counters.address, window, deadline)
                .await?;
            tracing::info!(
                email = ?email,
                known_email = user.is_some(),
                address_failures = failures,
                "login refused"
            );
            if failures == LoginLimit::PER_ADDRESS_FAILURES {
                // Once per address and window; no email: they may be many people's.
                tracing::warn!(
                    source_ip = address.as_str(),
                    failures,
                    window_s = LoginLimit::WINDOW.as_secs(),
                    "password spraying suspected: this address is refused logins until the window ends"
                );
            }
            return Err(ApiError::InvalidCredentials);
        }
    };
    metric::LOGIN_FAILURES.count(0);

    let token = SessionToken::generate()?;
    let session = Session::start(&token, user.id.clone(), chrono::Utc::now());
    tokio::try_join!(
        store.put_session(&session, deadline),
        store.login_succeeded(&counters.pair, window, now, deadline),
    )?;
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
