//! Who is calling: the bearer session of every route that needs one, and the rule that a caller
//! acts on their own account only.
//!
//! A session admits its user while it has not expired and its generation is the user's (a password
//! change moves the user's generation on, which voids every other session; see [`crate::store`]).
//! So authenticating is two strongly consistent reads, the session and its user, on every request;
//! anything short of both is the same 401 (`WWW-Authenticate: Bearer`), so a revoked, expired,
//! unknown or malformed token, or a deleted account, cannot be told apart.

use chrono::Utc;

use crate::{
    ApiError, ApiRequest, App,
    domain::{Session, SessionToken, User, UserId},
};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The session the bearer token names.
    pub session: Session,
    /// Its user, as stored now.
    pub user: User,
}

/// The caller of `req`, from its `Authorization: Bearer` token, or a 401.
pub async fn authenticate(app: &App, req: &ApiRequest) -> Result<Caller, ApiError> {
    // A header that cannot hold one of our tokens is refused without a read.
    let token = req
        .bearer_token()
        .and_then(SessionToken::parse)
        .ok_or(ApiError::Unauthenticated)?;
    let now = Utc::now();
    let session = app
        .store
        .session(&token.hash(), req.deadline())
        .await?
        .filter(|s| s.is_valid_at(now))
        .ok_or(ApiError::Unauthenticated)?;
    let user = app
        .store
        .user_by_id(&session.user_id, req.deadline())
        .await?
        .filter(|user| session.admits(user, now))
        .ok_or(ApiError::Unauthenticated)?;
    Ok(Caller { session, user })
}

impl Caller {
    /// The 404 for a path `{id}` that is not the caller's own (another user's, none, or one that
    /// does not parse): the same answer, so other users' ids cannot be probed.
    pub fn own(&self, req: &ApiRequest) -> Result<(), ApiError> {
        let requested = req.path_param("id").and_then(|id| UserId::parse(&id));
        match requested {
            Some(id) if id == self.user.id => Ok(()),
            _ => Err(ApiError::NotFound("User")),
        }
    }
}
