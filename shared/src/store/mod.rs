//! The DynamoDB store: one table, keys `pk` and `sk`.
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | user | `USER#<id>` | `PROFILE` | id, email, name, password_hash, created_at, session_generation |
//! | email uniqueness | `EMAIL#<normalised email>` | `EMAIL` | user_id |
//! | session | `SESSION#<sha256 of token>` | `SESSION` | user_id, session_generation, expires_at (TTL, epoch seconds) |
//! | login counter | `LOGIN#<kind>#<sha256>` (kind `pair`, `email` or `address`) | `WINDOW#<n>` | attempts or failures, expires_at (TTL: the window's end) |
//! | login trust | `LOGIN#pair#<sha256>` | `TRUSTED` | expires_at (TTL: 30 days after the last success) |
//! | idempotency record | `IDEMPOTENCY#<sha256 of route, scope, key>` | `IDEMPOTENCY` | state, fingerprint (keyed), attempt, valid_until, expires_at (TTL), result_status, reference (`store/idempotency.rs`) |
//!
//! The user and its email item are written in one transaction, each with `attribute_not_exists(pk)`,
//! so two sign-ups with one email cannot both succeed whatever their timing. Login and the
//! duplicate check read the email item with a strongly consistent GetItem, never an index.
//!
//! A session admits its user only while their `session_generation`s are equal; `store/account.rs` says
//! why revoking is a generation and not a list of sessions, and how a delete stays whole.
//!
//! Every storage failure becomes a [`StoreError`] next to the call that failed, with what we were
//! doing, its [`ErrorKind`] and whether it is worth retrying ([`error`]). Every call goes through
//! the one retry policy in [`retry`], bounded by the invocation's [`Deadline`], which each method
//! takes explicitly; [`Store::call`] is the one place a request is sent.

mod account;
mod connection;
pub mod error;
mod idempotency;
pub mod retry;

use std::{collections::HashMap, future::Future};

use aws_sdk_dynamodb::{
    Client, Error as DynamoError,
    config::http::HttpResponse,
    error::SdkError,
    operation::{transact_write_items::TransactWriteItemsError, update_item::UpdateItemError},
    types::{AttributeValue, Put, ReturnValue, TransactWriteItem},
};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

pub use crate::deadline::Deadline;
pub use connection::{ConnectOptions, Opened, https_client};
pub use error::{ErrorKind, Fault, GaveUp, StoreError};
pub use retry::{Retrier, RetryPolicy};

use self::connection::Connection;
use crate::{
    domain::{CounterKey, Email, PasswordHash, Session, TokenHash, User, UserId, UserName, Window},
    idempotency::Lock,
};

type Item = HashMap<String, AttributeValue>;

/// Key and attribute names, in one place.
mod attr {
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const ENTITY: &str = "entity";
    pub const ID: &str = "id";
    pub const EMAIL: &str = "email";
    pub const NAME: &str = "name";
    pub const PASSWORD_HASH: &str = "password_hash";
    pub const CREATED_AT: &str = "created_at";
    pub const USER_ID: &str = "user_id";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const FAILURES: &str = "failures";
    pub const ATTEMPTS: &str = "attempts";
    pub const SESSION_GENERATION: &str = "session_generation";
    pub const STATE: &str = "state";
    pub const FINGERPRINT: &str = "fingerprint";
    pub const ATTEMPT: &str = "attempt";
    pub const VALID_UNTIL: &str = "valid_until";
    pub const RESULT_STATUS: &str = "result_status";
    pub const REFERENCE: &str = "reference";
}

/// The partition and sort keys of each item kind.
pub mod keys {
    use crate::{
        domain::{CounterKey, Email, TokenHash, UserId, Window},
        idempotency::RecordKey,
    };

    /// The user item's key.
    pub fn user(id: &UserId) -> (String, &'static str) {
        (format!("USER#{}", id.as_str()), "PROFILE")
    }
    /// The email uniqueness item's key.
    pub fn email(email: &Email) -> (String, &'static str) {
        (format!("EMAIL#{}", email.as_str()), "EMAIL")
    }
    /// The session item's key.
    pub fn session(hash: &TokenHash) -> (String, &'static str) {
        (format!("SESSION#{}", hash.as_str()), "SESSION")
    }
    /// A login counter's key in one window.
    pub fn login_counter(key: &CounterKey, window: Window) -> (String, String) {
        (
            format!("LOGIN#{}", key.as_str()),
            format!("WINDOW#{}", window.number()),
        )
    }
    /// The key of a pair's trust mark.
    pub fn login_trust(pair: &CounterKey) -> (String, &'static str) {
        (format!("LOGIN#{}", pair.as_str()), "TRUSTED")
    }
    /// An idempotency record's key.
    pub fn idempotency(record: &RecordKey) -> (String, &'static str) {
        (format!("IDEMPOTENCY#{}", record.0), "IDEMPOTENCY")
    }
    /// A key no item has, read by the health check.
    pub fn health_probe() -> (String, &'static str) {
        ("HEALTH#probe".to_owned(), "HEALTH")
    }
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// The email item exists: someone has this email.
    #[error("email already registered")]
    EmailTaken,
    /// The idempotency lock the create was made under is no longer this request's (it ended and
    /// a retry with the same key took it over): nothing was written.
    #[error("the idempotency lock was taken over")]
    LockLost,
    /// Anything else.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The table, the client to reach it (ready, or still being made: [`connection`]) and the retry
/// policy with its budget. Cheap to clone; clones share the retry budget.
#[derive(Debug, Clone)]
pub struct Store {
    client: Connection,
    table: String,
    retry: Retrier,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key((pk, sk): (String, impl Into<String>)) -> Item {
    HashMap::from([(attr::PK.to_owned(), s(pk)), (attr::SK.to_owned(), s(sk))])
}

fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Store {
    /// A store of `table` reached through `client`, with the default retry policy. The client's own
    /// retries must be off (see [`retry`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self::with_connection(Connection::Ready(client), table.into())
    }

    /// A store of `table` whose client is made on a background thread started now, with its first
    /// connection opened there unless `options` say not to ([`connection`]); a call made before it
    /// is done waits for it, within its deadline. `opened` is told what making it took.
    pub fn connect(
        options: ConnectOptions,
        table: impl Into<String>,
        opened: impl FnOnce(Opened) + Send + 'static,
    ) -> Self {
        Self::with_connection(Connection::open(options, opened), table.into())
    }

    /// Waits, at most `bound`, until the client is made and its connection opened ([`connection`]);
    /// never fails.
    pub async fn settle(&self, bound: std::time::Duration) {
        self.client.settle(bound).await;
    }

    fn with_connection(client: Connection, table: String) -> Self {
        Self {
            retry: Retrier::default().for_table(&table),
            client,
            table,
        }
    }

    /// This store with `policy` and a fresh, full retry budget.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Retrier::new(policy).for_table(&self.table);
        self
    }

    /// Writes the user and its email item in one transaction, with a `ClientRequestToken` made once
    /// per call of this method (one request), the same on every attempt, so DynamoDB treats a retried
    /// transaction as the same one. The user's id was made by the caller, before the first attempt.
    ///
    /// A retry can find its own earlier attempt applied (the answer was lost on the way back); a
    /// server that ignores the token (moto) then cancels it on the email condition. So when the email
    /// condition fails on a retry, or contention outlasts the retries, the email item is read
    /// (strongly consistent): if it names this user, the create succeeded; if another, the email is
    /// taken.
    ///
    /// With `idempotency`, the same transaction turns that lock into its completed record
    /// ([`crate::idempotency`]), on the condition that the lock is still this request's:
    /// [`CreateUserError::LockLost`] when it is not, and nothing is written.
    pub async fn create_user(
        &self,
        user: &User,
        idempotency: Option<&Lock>,
        deadline: Deadline,
    ) -> Result<(), CreateUserError> {
        const OP: &str = "TransactWriteItems create user";
        let idempotency_token = uuid::Uuid::new_v4().to_string();
        let mut user_item = key(keys::user(&user.id));
        user_item.extend([
            (attr::ENTITY.to_owned(), s("user")),
            (attr::ID.to_owned(), s(user.id.as_str())),
            (attr::EMAIL.to_owned(), s(user.email.as_str())),
            (attr::NAME.to_owned(), s(user.name.as_str())),
            (
                attr::PASSWORD_HASH.to_owned(),
                s(user.password_hash.as_str()),
            ),
            (attr::CREATED_AT.to_owned(), s(timestamp(&user.created_at))),
            (
                attr::SESSION_GENERATION.to_owned(),
                n(user.session_generation),
            ),
        ]);
        let mut email_item = key(keys::email(&user.email));
        email_item.extend([
            (attr::ENTITY.to_owned(), s("email")),
            (attr::USER_ID.to_owned(), s(user.id.as_str())),
        ]);
        let put = |item: Item| -> Result<TransactWriteItem, StoreError> {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| StoreError::permanent(OP, ErrorKind::Construction, e))?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        let mut items = vec![put(user_item)?, put(email_item)?];
        if let Some(lock) = idempotency {
            items.push(self.completion(lock, 201, user.id.as_str())?);
        }
        let result = self
            .call_or(
                &self.retry,
                OP,
                deadline,
                |client| {
                    client
                        .transact_write_items()
                        .set_transact_items(Some(items.clone()))
                        .client_request_token(&idempotency_token)
                        .send()
                },
                |err| match (condition_failed(&err, 1), condition_failed(&err, 2)) {
                    (true, _) => {
                        StoreError::permanent(OP, ErrorKind::EmailTaken, "the email item exists")
                    }
                    (false, true) => StoreError::permanent(
                        OP,
                        ErrorKind::ConditionalCheckFailed,
                        "the idempotency lock is no longer ours",
                    ),
                    (false, false) => StoreError::from_sdk(OP, err),
                },
            )
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            // Taken before our first attempt: not ours.
            Err(err) if err.kind == ErrorKind::EmailTaken && err.attempts <= 1 => {
                return Err(CreateUserError::EmailTaken);
            }
            Err(err) if err.kind == ErrorKind::ConditionalCheckFailed => {
                return Err(CreateUserError::LockLost);
            }
            Err(err) => err,
        };
        let may_be_ours = err.kind == ErrorKind::EmailTaken || err.is_cancelled_by_contention();
        if !may_be_ours {
            return Err(err.into());
        }
        match self.email_owner(&user.email, deadline).await? {
            Some(owner) if owner == user.id => {
                tracing::info!(
                    user_id = %user.id,
                    attempts = err.attempts,
                    "an earlier attempt of this create was applied; its answer was lost"
                );
                Ok(())
            }
            Some(_) => Err(CreateUserError::EmailTaken),
            None if err.kind == ErrorKind::EmailTaken => Err(CreateUserError::EmailTaken),
            None => Err(err.into()),
        }
    }

    /// The id of the user who has this email, from the email item alone (strongly consistent).
    pub async fn email_owner(
        &self,
        email: &Email,
        deadline: Deadline,
    ) -> Result<Option<UserId>, StoreError> {
        const OP: &str = "GetItem email";
        let Some(item) = self.get(OP, keys::email(email), deadline).await? else {
            return Ok(None);
        };
        let item = Read::new(&item, OP, "email");
        item.parsed(attr::USER_ID, UserId::parse).map(Some)
    }

    /// The user with this id (strongly consistent).
    pub async fn user_by_id(
        &self,
        id: &UserId,
        deadline: Deadline,
    ) -> Result<Option<User>, StoreError> {
        const OP: &str = "GetItem user";
        let Some(item) = self.get(OP, keys::user(id), deadline).await? else {
            return Ok(None);
        };
        user_from(&item, OP).map(Some)
    }

    /// Stores a session; `expires_at` is also the table's TTL attribute.
    pub async fn put_session(
        &self,
        session: &Session,
        deadline: Deadline,
    ) -> Result<(), StoreError> {
        const OP: &str = "PutItem session";
        let mut item = key(keys::session(&session.token_hash));
        item.extend([
            (attr::ENTITY.to_owned(), s("session")),
            (attr::USER_ID.to_owned(), s(session.user_id.as_str())),
            (attr::SESSION_GENERATION.to_owned(), n(session.generation)),
            (
                attr::EXPIRES_AT.to_owned(),
                AttributeValue::N(session.expires_at.timestamp().to_string()),
            ),
        ]);
        // Writing the same session again is harmless: the put is idempotent as it stands.
        self.put(OP, item, deadline).await
    }

    /// The session stored under this token hash, expired or not (the caller checks expiry).
    pub async fn session(
        &self,
        hash: &TokenHash,
        deadline: Deadline,
    ) -> Result<Option<Session>, StoreError> {
        const OP: &str = "GetItem session";
        let Some(item) = self.get(OP, keys::session(hash), deadline).await? else {
            return Ok(None);
        };
        let item = Read::new(&item, OP, "session");
        Ok(Some(Session {
            token_hash: hash.clone(),
            user_id: item.parsed(attr::USER_ID, UserId::parse)?,
            generation: item.generation()?,
            expires_at: item.time(attr::EXPIRES_AT)?,
        }))
    }

    /// Whether `pair` signed in successfully within [`crate::domain::LoginLimit::TRUST`] of `now`
    /// (see [`crate::domain::login_limit`]). Strongly consistent.
    pub async fn login_trusted(
        &self,
        pair: &CounterKey,
        now: DateTime<Utc>,
        deadline: Deadline,
    ) -> Result<bool, StoreError> {
        const OP: &str = "GetItem login trust";
        let Some(item) = self.get(OP, keys::login_trust(pair), deadline).await? else {
            return Ok(false);
        };
        // TTL deletes up to days late: an expired mark is no mark.
        Ok(Read::new(&item, OP, "login trust").time(attr::EXPIRES_AT)? > now)
    }

    /// The failed logins counted for `address` in `window` (0 when there is no counter).
    /// Strongly consistent.
    pub async fn login_failures(
        &self,
        address: &CounterKey,
        window: Window,
        deadline: Deadline,
    ) -> Result<u32, StoreError> {
        const OP: &str = "GetItem login failures";
        match self
            .get(OP, keys::login_counter(address, window), deadline)
            .await?
        {
            Some(item) => Read::new(&item, OP, "login counter").count(attr::FAILURES),
            None => Ok(0),
        }
    }

    /// Reserves one login attempt on `counter` in `window`: one UpdateItem adds one to its
    /// attempts, on the condition that they are below `limit` (no condition when `limit` is
    /// `None`: counted, never refused). `false`: the limit is reached, nothing was counted.
    ///
    /// A retried update whose first answer was lost counts twice: the limit errs on the side of
    /// the account.
    pub async fn reserve_login_attempt(
        &self,
        counter: &CounterKey,
        window: Window,
        limit: Option<u32>,
        deadline: Deadline,
    ) -> Result<bool, StoreError> {
        const OP: &str = "UpdateItem login attempts";
        let update = "SET #entity = :entity, #expires = :ends ADD #attempts :one";
        let (names, mut values) = counter_expression(attr::ATTEMPTS, window);
        if let Some(limit) = limit {
            values.insert(":limit".to_owned(), AttributeValue::N(limit.to_string()));
        }
        let condition = limit.map(|_| "attribute_not_exists(#attempts) OR #attempts < :limit");
        let k = key(keys::login_counter(counter, window));
        let update = Update {
            expression: update,
            condition,
            names,
            values,
            returns: ReturnValue::None,
        };
        Ok(self.update_item(OP, k, update, deadline).await?.is_some())
    }

    /// Counts one failed login on `address` in `window` and returns the window's count. One
    /// UpdateItem, no condition.
    pub async fn count_login_failure(
        &self,
        address: &CounterKey,
        window: Window,
        deadline: Deadline,
    ) -> Result<u32, StoreError> {
        const OP: &str = "UpdateItem login failures";
        let (names, values) = counter_expression(attr::FAILURES, window);
        let update = Update {
            expression: "SET #entity = :entity, #expires = :ends ADD #failures :one",
            condition: None,
            names,
            values,
            returns: ReturnValue::UpdatedNew,
        };
        let k = key(keys::login_counter(address, window));
        let attributes = self
            .update_item(OP, k, update, deadline)
            .await?
            .unwrap_or_default();
        Read::new(&attributes, OP, "login counter").count(attr::FAILURES)
    }

    /// After a successful login of `pair` at `now`: deletes the pair's counter of `window` and
    /// marks the pair trusted for [`crate::domain::LoginLimit::TRUST`]. Both are idempotent.
    pub async fn login_succeeded(
        &self,
        pair: &CounterKey,
        window: Window,
        now: DateTime<Utc>,
        deadline: Deadline,
    ) -> Result<(), StoreError> {
        const CLEAR: &str = "DeleteItem login attempts";
        const TRUST: &str = "PutItem login trust";
        let counter = key(keys::login_counter(pair, window));
        let trusted_until = now
            + chrono::Duration::from_std(crate::domain::LoginLimit::TRUST)
                .unwrap_or(chrono::Duration::MAX);
        let mut trust = key(keys::login_trust(pair));
        trust.extend([
            (attr::ENTITY.to_owned(), s("login_trust")),
            (
                attr::EXPIRES_AT.to_owned(),
                AttributeValue::N(trusted_until.timestamp().to_string()),
            ),
        ]);
        let clear = self.delete(CLEAR, counter, deadline);
        let mark = self.put(TRUST, trust, deadline);
        futures::try_join!(clear, mark).map(|_| ())
    }

    /// A cheap data-plane read (an eventually consistent GetItem of a key that never exists, half a
    /// read unit), proving the table is reachable with our credentials. One attempt within
    /// `timeout`, no retry: a health check must answer fast and must not add load to a struggling
    /// table.
    pub async fn ping(&self, timeout: std::time::Duration) -> Result<(), StoreError> {
        const OP: &str = "GetItem health probe";
        let once = Retrier::new(RetryPolicy::single_attempt(timeout)).for_table(&self.table);
        let probe = key(keys::health_probe());
        self.call_or(
            &once,
            OP,
            Deadline::NONE,
            |client| {
                client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(probe.clone()))
                    .projection_expression("pk")
                    .send()
            },
            |err| StoreError::from_sdk(OP, err),
        )
        .await
        .map(|_| ())
    }

    /// Puts `item`, unconditionally: idempotent.
    async fn put(
        &self,
        op: &'static str,
        item: Item,
        deadline: Deadline,
    ) -> Result<(), StoreError> {
        self.call(op, deadline, |client| {
            client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .send()
        })
        .await
        .map(|_| ())
    }

    /// One UpdateItem of the item `k`: its attributes as `update.returns` asks, or `None` when
    /// its condition failed (an answer, never retried).
    async fn update_item(
        &self,
        op: &'static str,
        k: Item,
        update: Update<'_>,
        deadline: Deadline,
    ) -> Result<Option<Item>, StoreError> {
        let result = self
            .call_or(
                &self.retry,
                op,
                deadline,
                |client| {
                    client
                        .update_item()
                        .table_name(&self.table)
                        .set_key(Some(k.clone()))
                        .update_expression(update.expression)
                        .set_condition_expression(update.condition.map(str::to_owned))
                        .set_expression_attribute_names(Some(update.names.clone()))
                        .set_expression_attribute_values(Some(update.values.clone()))
                        .return_values(update.returns.clone())
                        .send()
                },
                |err| match update_condition_failed(&err) {
                    true => StoreError::permanent(
                        op,
                        ErrorKind::ConditionalCheckFailed,
                        "the update's condition does not hold",
                    ),
                    false => StoreError::from_sdk(op, err),
                },
            )
            .await;
        match result {
            Ok(output) => Ok(Some(output.attributes.unwrap_or_default())),
            Err(err) if err.kind == ErrorKind::ConditionalCheckFailed => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Deletes the item `k`, unconditionally: idempotent.
    async fn delete(
        &self,
        op: &'static str,
        k: Item,
        deadline: Deadline,
    ) -> Result<(), StoreError> {
        self.call(op, deadline, |client| {
            client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(k.clone()))
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn get(
        &self,
        op: &'static str,
        k: (String, impl Into<String>),
        deadline: Deadline,
    ) -> Result<Option<Item>, StoreError> {
        let k = key(k);
        self.call(op, deadline, |client| {
            client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(k.clone()))
                .consistent_read(true)
                .send()
        })
        .await
        .map(|output| output.item)
    }

    /// Sends the request `send` builds (anew for each attempt) under this store's retry policy,
    /// each failure classified by [`StoreError::from_sdk`].
    async fn call<T, E, Fut>(
        &self,
        op: &'static str,
        deadline: Deadline,
        send: impl Fn(&Client) -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        DynamoError: From<SdkError<E, HttpResponse>>,
    {
        self.call_or(&self.retry, op, deadline, send, |err| {
            StoreError::from_sdk(op, err)
        })
        .await
    }

    /// As [`Store::call`], under `retrier`, with `on_error` turning a failure into a
    /// [`StoreError`]: where one service answer means something to the caller (a failed
    /// condition), it says so with its own [`ErrorKind`], next to the call.
    async fn call_or<T, E, Fut>(
        &self,
        retrier: &Retrier,
        op: &'static str,
        deadline: Deadline,
        send: impl Fn(&Client) -> Fut,
        on_error: impl Fn(SdkError<E, HttpResponse>) -> StoreError,
    ) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    {
        let client = self
            .client
            .client(op, deadline.minus(retrier.policy().deadline_margin))
            .await?;
        retrier
            .run(op, deadline, || {
                // Boxed: an SDK call's future is tens of kilobytes (its orchestrator's states), and
                // held inline it makes every future that awaits a store call as large, the
                // handler's included. The runtime moves a handler's future once per request,
                // before it runs: with login's four calls inline that was a 79 kB copy even on a
                // 422 that reaches no call. One allocation per attempt instead.
                let sent = Box::pin(send(&client));
                let on_error = &on_error;
                async move { sent.await.map_err(on_error) }
            })
            .await
    }
}

/// Reads the attributes of one item of `kind`, got by `op`. An attribute that is missing or does
/// not parse is a malformed item: a bug or a hand edit, never worth a retry.
struct Read<'a> {
    item: &'a Item,
    op: &'static str,
    kind: &'static str,
}

impl<'a> Read<'a> {
    fn new(item: &'a Item, op: &'static str, kind: &'static str) -> Self {
        Self { item, op, kind }
    }

    fn malformed(&self, name: &str) -> StoreError {
        StoreError::permanent(
            self.op,
            ErrorKind::MalformedItem,
            format!("{} item has a malformed {name}", self.kind),
        )
    }

    /// A string attribute, turned into a domain value by `parse`.
    fn parsed<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::S(value)) => parse(value),
            _ => None,
        }
        .ok_or_else(|| self.malformed(name))
    }

    fn number(&self, name: &str) -> Option<i64> {
        match self.item.get(name) {
            Some(AttributeValue::N(n)) => n.parse().ok(),
            _ => None,
        }
    }

    /// A string attribute.
    fn string(&self, name: &str) -> Result<&'a str, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::S(value)) => Ok(value),
            _ => Err(self.malformed(name)),
        }
    }

    /// A count (a non-negative number that fits 32 bits).
    fn count(&self, name: &str) -> Result<u32, StoreError> {
        self.number(name)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| self.malformed(name))
    }

    /// The session generation (of a user or a session); 0 for items written before it existed.
    fn generation(&self) -> Result<u64, StoreError> {
        match self.item.get(attr::SESSION_GENERATION) {
            None => Ok(0),
            Some(_) => self
                .number(attr::SESSION_GENERATION)
                .and_then(|g| u64::try_from(g).ok())
                .ok_or_else(|| self.malformed(attr::SESSION_GENERATION)),
        }
    }

    /// A time stored as epoch seconds (the TTL attribute's form).
    fn time(&self, name: &str) -> Result<DateTime<Utc>, StoreError> {
        self.number(name)
            .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
            .ok_or_else(|| self.malformed(name))
    }
}

/// What an UpdateItem writes ([`Store::update_item`]).
struct Update<'a> {
    expression: &'a str,
    condition: Option<&'a str>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    returns: ReturnValue,
}

/// A user item as a [`User`].
fn user_from(item: &Item, op: &'static str) -> Result<User, StoreError> {
    let item = Read::new(item, op, "user");
    Ok(User {
        id: item.parsed(attr::ID, UserId::parse)?,
        email: item.parsed(attr::EMAIL, |v| Email::parse(v).ok())?,
        name: item.parsed(attr::NAME, |v| UserName::parse(v).ok())?,
        password_hash: item.parsed(attr::PASSWORD_HASH, |v| {
            Some(PasswordHash::from_stored(v.to_owned()))
        })?,
        created_at: item.parsed(attr::CREATED_AT, |v| {
            DateTime::parse_from_rfc3339(v)
                .ok()
                .map(|at| at.with_timezone(&Utc))
        })?,
        session_generation: item.generation()?,
    })
}

/// The names and values every counter update uses: the entity, the TTL at the window's end and
/// the one to add to `counted`.
fn counter_expression(
    counted: &str,
    window: Window,
) -> (HashMap<String, String>, HashMap<String, AttributeValue>) {
    let counted_name = if counted == attr::ATTEMPTS {
        "#attempts"
    } else {
        "#failures"
    };
    let names = HashMap::from([
        (counted_name.to_owned(), counted.to_owned()),
        ("#expires".to_owned(), attr::EXPIRES_AT.to_owned()),
        ("#entity".to_owned(), attr::ENTITY.to_owned()),
    ]);
    let values = HashMap::from([
        (":entity".to_owned(), s("login_counter")),
        (":one".to_owned(), AttributeValue::N("1".to_owned())),
        (
            ":ends".to_owned(),
            AttributeValue::N(window.ends_at().timestamp().to_string()),
        ),
    ]);
    (names, values)
}

/// The transaction was cancelled because the condition of its item at `index` failed (in a
/// create: 1 is the email item, 2 the idempotency record).
fn condition_failed(err: &SdkError<TransactWriteItemsError, HttpResponse>, index: usize) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            e.cancellation_reasons().get(index).and_then(|r| r.code())
                == Some("ConditionalCheckFailed")
        }
        _ => false,
    }
}

/// An update's condition failed.
fn update_condition_failed(err: &SdkError<UpdateItemError, HttpResponse>) -> bool {
    matches!(
        err.as_service_error(),
        Some(UpdateItemError::ConditionalCheckFailedException(_))
    )
}
