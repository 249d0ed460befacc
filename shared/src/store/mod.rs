//! The DynamoDB store: one table, keys `pk` and `sk`.
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | user | `USER#<id>` | `PROFILE` | id, email, name, password_hash, created_at |
//! | email uniqueness | `EMAIL#<normalised email>` | `EMAIL` | user_id |
//! | session | `SESSION#<sha256 of token>` | `SESSION` | user_id, expires_at (TTL, epoch seconds) |
//!
//! The user and its email item are written in one transaction, each with `attribute_not_exists(pk)`,
//! so two sign-ups with one email cannot both succeed whatever their timing. Login and the
//! duplicate check read the email item with a strongly consistent GetItem, never an index.
//!
//! Every storage failure becomes a [`StoreError`] next to the call that failed, with what we were
//! doing and whether it is worth retrying.

mod fault;

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client,
    error::SdkError,
    operation::transact_write_items::TransactWriteItemsError,
    types::{AttributeValue, Put, TransactWriteItem},
};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

pub use fault::{Fault, StoreError};

use crate::domain::{Email, PasswordHash, Session, TokenHash, User, UserId, UserName};

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
}

/// The partition and sort keys of each item kind.
pub mod keys {
    use crate::domain::{Email, TokenHash, UserId};

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
    /// Anything else.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The table and the client to reach it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn key((pk, sk): (String, &'static str)) -> Item {
    HashMap::from([(attr::PK.to_owned(), s(pk)), (attr::SK.to_owned(), s(sk))])
}

fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Store {
    /// A store of `table` reached through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client, for tests and tools that inspect the table.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Writes the user and its email item in one transaction, with a `ClientRequestToken` made once
    /// per call, so DynamoDB treats a retried transaction as the same one.
    pub async fn create_user(&self, user: &User) -> Result<(), CreateUserError> {
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
                .map_err(|e| StoreError::permanent(OP, "construction", e))?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(put(user_item)?)
            .transact_items(put(email_item)?)
            .client_request_token(&idempotency_token)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if email_condition_failed(&err) => Err(CreateUserError::EmailTaken),
            Err(err) => Err(StoreError::from_sdk(OP, err).into()),
        }
    }

    /// The user with this email, read through the email item (strongly consistent).
    pub async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        const OP: &str = "GetItem email";
        let Some(item) = self.get(OP, keys::email(email)).await? else {
            return Ok(None);
        };
        let user_id = UserId::parse(&string(&item, attr::USER_ID, OP)?).ok_or_else(|| {
            StoreError::permanent(OP, "malformed_item", "email item has a malformed user_id")
        })?;
        self.user_by_id(&user_id).await
    }

    /// The user with this id (strongly consistent).
    pub async fn user_by_id(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        const OP: &str = "GetItem user";
        let Some(item) = self.get(OP, keys::user(id)).await? else {
            return Ok(None);
        };
        let malformed = |what: &str| {
            StoreError::permanent(
                OP,
                "malformed_item",
                format!("user item has a malformed {what}"),
            )
        };
        let created_at = DateTime::parse_from_rfc3339(&string(&item, attr::CREATED_AT, OP)?)
            .map_err(|_| malformed(attr::CREATED_AT))?
            .with_timezone(&Utc);
        Ok(Some(User {
            id: UserId::parse(&string(&item, attr::ID, OP)?).ok_or_else(|| malformed(attr::ID))?,
            email: Email::parse(&string(&item, attr::EMAIL, OP)?)
                .map_err(|_| malformed(attr::EMAIL))?,
            name: UserName::parse(&string(&item, attr::NAME, OP)?)
                .map_err(|_| malformed(attr::NAME))?,
            password_hash: PasswordHash::from_stored(string(&item, attr::PASSWORD_HASH, OP)?),
            created_at,
        }))
    }

    /// Stores a session; `expires_at` is also the table's TTL attribute.
    pub async fn put_session(&self, session: &Session) -> Result<(), StoreError> {
        const OP: &str = "PutItem session";
        let mut item = key(keys::session(&session.token_hash));
        item.extend([
            (attr::ENTITY.to_owned(), s("session")),
            (attr::USER_ID.to_owned(), s(session.user_id.as_str())),
            (
                attr::EXPIRES_AT.to_owned(),
                AttributeValue::N(session.expires_at.timestamp().to_string()),
            ),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::from_sdk(OP, e))?;
        Ok(())
    }

    /// The session stored under this token hash, expired or not (the caller checks expiry).
    pub async fn session(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        const OP: &str = "GetItem session";
        let Some(item) = self.get(OP, keys::session(hash)).await? else {
            return Ok(None);
        };
        let malformed = |what: &str| {
            StoreError::permanent(
                OP,
                "malformed_item",
                format!("session item has a malformed {what}"),
            )
        };
        let user_id = UserId::parse(&string(&item, attr::USER_ID, OP)?)
            .ok_or_else(|| malformed(attr::USER_ID))?;
        let expires_at = match item.get(attr::EXPIRES_AT) {
            Some(AttributeValue::N(n)) => n
                .parse::<i64>()
                .ok()
                .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
                .ok_or_else(|| malformed(attr::EXPIRES_AT))?,
            _ => return Err(malformed(attr::EXPIRES_AT)),
        };
        Ok(Some(Session {
            token_hash: hash.clone(),
            user_id,
            expires_at,
        }))
    }

    /// A cheap data-plane read (an eventually consistent GetItem of a key that never exists, half a
    /// read unit), proving the table is reachable with our credentials.
    pub async fn ping(&self) -> Result<(), StoreError> {
        const OP: &str = "GetItem health probe";
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::health_probe())))
            .projection_expression("pk")
            .send()
            .await
            .map_err(|e| StoreError::from_sdk(OP, e))?;
        Ok(())
    }

    async fn get(
        &self,
        op: &'static str,
        k: (String, &'static str),
    ) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(k)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk(op, e))?;
        Ok(output.item)
    }
}

fn string(item: &Item, name: &str, op: &'static str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(StoreError::permanent(
            op,
            "malformed_item",
            format!("item has no string attribute {name}"),
        )),
    }
}

/// The transaction was cancelled because the email item's condition failed (the second item of the
/// create transaction).
fn email_condition_failed(
    err: &SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            e.cancellation_reasons().get(1).and_then(|r| r.code()) == Some("ConditionalCheckFailed")
        }
        _ => false,
    }
}
