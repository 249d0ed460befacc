//! The account lifecycle's writes: log out, rename, change the password, delete.
//!
//! # Revoking sessions: a session generation, not a list of sessions
//! A password change must end every other session of the user. Each user item holds a
//! `session_generation` (0 at sign-up) and each session item the generation it started under; a
//! session admits its user only while the two are equal ([`crate::auth`]). Changing the password
//! moves the user's generation on and writes the new one into the caller's own session, in one
//! transaction, so every other session is void at once, wherever it is.
//!
//! Why not a per-user list of session items (a `USER#<id>` / `SESSION#<hash>` item per session, or
//! an index on `user_id`): revoking would be a Query and a delete per session, not atomic with the
//! password change, and unbounded; a login would write two items; and the table would need an
//! index or a second item kind. The generation costs nothing extra per request: every
//! authenticated request already reads the session and then its user (two strongly consistent
//! GetItems), and the comparison is in memory. Its cost is that a void session's item stays until
//! its TTL (an hour), where it admits nothing.
//!
//! A login racing a password change: the login read the user either before the change (it checked
//! the old password and its new session carries the old generation, void from the first request:
//! 401) or after it (it checked the new password). Either way no session made with the old
//! password outlives the change.
//!
//! # Deleting an account
//! One TransactWriteItems deletes the user item (on the condition that its generation is still the
//! caller's), its email item (on the condition that it names this user) and the caller's session,
//! with a `ClientRequestToken`, so it can never leave a user without its email item or the other
//! way round, and a retried delete whose answer was lost is the same transaction. The user's other
//! sessions admit nobody once the user is gone; the TTL removes them. A sign-up racing the delete
//! of the same email is serialised by DynamoDB on the email item: it either finds the item and gets
//! 409, or comes after the delete and makes the only user with that email.

use aws_sdk_dynamodb::{
    config::http::HttpResponse,
    error::SdkError,
    operation::transact_write_items::TransactWriteItemsError,
    types::{self, Delete, ReturnValue, TransactWriteItem},
};

use super::{ErrorKind, Item, Store, StoreError, Update, attr, key, keys, n, s, user_from};
use crate::{
    domain::{PasswordHash, TokenHash, User, UserName},
    store::Deadline,
};

/// The condition that the user item still exists with `generation` (items written before
/// generations existed have none, which counts as 0).
fn generation_condition(generation: u64) -> &'static str {
    if generation == 0 {
        "attribute_exists(pk) AND (attribute_not_exists(#gen) OR #gen = :gen)"
    } else {
        "attribute_exists(pk) AND #gen = :gen"
    }
}

/// A transaction was cancelled because one of its conditions failed.
fn a_condition_failed(err: &SdkError<TransactWriteItemsError, HttpResponse>) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
            .cancellation_reasons()
            .iter()
            .any(|r| r.code() == Some("ConditionalCheckFailed")),
        _ => false,
    }
}

fn built<T, E: std::error::Error + Send + Sync + 'static>(
    op: &'static str,
    result: Result<T, E>,
) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::permanent(op, ErrorKind::Construction, e))
}

impl Store {
    /// Deletes the session with this token hash (log out). Idempotent: deleting it again, or one
    /// that is not there, is not an error.
    pub async fn delete_session(
        &self,
        hash: &TokenHash,
        deadline: Deadline,
    ) -> Result<(), StoreError> {
        self.delete("DeleteItem session", key(keys::session(hash)), deadline)
            .await
    }

    /// Renames `user`, on the condition that it still exists with its session generation: the
    /// renamed user, or `None` when the condition failed (deleted, or its sessions revoked, since
    /// it was read).
    pub async fn rename_user(
        &self,
        user: &User,
        name: &UserName,
        deadline: Deadline,
    ) -> Result<Option<User>, StoreError> {
        const OP: &str = "UpdateItem user name";
        let k = key(keys::user(&user.id));
        let names = std::collections::HashMap::from([
            ("#name".to_owned(), attr::NAME.to_owned()),
            ("#gen".to_owned(), attr::SESSION_GENERATION.to_owned()),
        ]);
        let values = std::collections::HashMap::from([
            (":name".to_owned(), s(name.as_str())),
            (":gen".to_owned(), n(user.session_generation)),
        ]);
        let update = Update {
            expression: "SET #name = :name",
            condition: Some(generation_condition(user.session_generation)),
            names,
            values,
            returns: ReturnValue::AllNew,
        };
        match self.update_item(OP, k, update, deadline).await? {
            Some(attributes) => user_from(&attributes, OP).map(Some),
            None => Ok(None),
        }
    }

    /// Replaces `user`'s password hash and moves its session generation on, keeping the session
    /// `keep` (the caller's) valid: one transaction. `false` when `user` changed since it was read
    /// (another password change, a deletion) and nothing was written.
    pub async fn change_password(
        &self,
        user: &User,
        new_hash: &PasswordHash,
        keep: &TokenHash,
        deadline: Deadline,
    ) -> Result<bool, StoreError> {
        const OP: &str = "TransactWriteItems change password";
        let next = user.session_generation.saturating_add(1);
        let names = std::collections::HashMap::from([
            ("#gen".to_owned(), attr::SESSION_GENERATION.to_owned()),
            ("#hash".to_owned(), attr::PASSWORD_HASH.to_owned()),
        ]);
        let user_update = built(
            OP,
            types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(keys::user(&user.id))))
                .update_expression("SET #hash = :hash, #gen = :next")
                .condition_expression(generation_condition(user.session_generation))
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(std::collections::HashMap::from([
                    (":hash".to_owned(), s(new_hash.as_str())),
                    (":gen".to_owned(), n(user.session_generation)),
                    (":next".to_owned(), n(next)),
                ])))
                .build(),
        )?;
        let session_update = built(
            OP,
            types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(keys::session(keep))))
                .update_expression("SET #gen = :next")
                .condition_expression("attribute_exists(pk)")
                .set_expression_attribute_names(Some(std::collections::HashMap::from([(
                    "#gen".to_owned(),
                    attr::SESSION_GENERATION.to_owned(),
                )])))
                .set_expression_attribute_values(Some(std::collections::HashMap::from([(
                    ":next".to_owned(),
                    n(next),
                )])))
                .build(),
        )?;
        let items = [
            TransactWriteItem::builder().update(user_update).build(),
            TransactWriteItem::builder().update(session_update).build(),
        ];
        let applied = self.transact(OP, &items, deadline).await?;
        if applied == Applied::Yes {
            return Ok(true);
        }
        // On a retry, the failed condition may be our own earlier attempt's doing (its answer was
        // lost; a server that ignores the token cancels the retry): the new hash tells (each hash
        // has its own salt).
        Ok(applied.after_retry()
            && self
                .user_by_id(&user.id, deadline)
                .await?
                .is_some_and(|now| now.password_hash.as_str() == new_hash.as_str()))
    }

    /// Deletes `user` (on the condition that its session generation is unchanged), its email item
    /// (on the condition that it still names this user) and the session `session`: one
    /// transaction. `false` when `user` changed since it was read and nothing was deleted.
    pub async fn delete_user(
        &self,
        user: &User,
        session: &TokenHash,
        deadline: Deadline,
    ) -> Result<bool, StoreError> {
        const OP: &str = "TransactWriteItems delete user";
        let delete = |k: Item, condition: Option<&str>, names: &[(&str, &str)], values: Item| {
            built(
                OP,
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(k))
                    .set_condition_expression(condition.map(str::to_owned))
                    .set_expression_attribute_names((!names.is_empty()).then(|| {
                        names
                            .iter()
                            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                            .collect()
                    }))
                    .set_expression_attribute_values((!values.is_empty()).then_some(values))
                    .build(),
            )
            .map(|d| TransactWriteItem::builder().delete(d).build())
        };
        let items = [
            delete(
                key(keys::user(&user.id)),
                Some(generation_condition(user.session_generation)),
                &[("#gen", attr::SESSION_GENERATION)],
                Item::from([(":gen".to_owned(), n(user.session_generation))]),
            )?,
            delete(
                key(keys::email(&user.email)),
                Some("#owner = :id"),
                &[("#owner", attr::USER_ID)],
                Item::from([(":id".to_owned(), s(user.id.as_str()))]),
            )?,
            delete(key(keys::session(session)), None, &[], Item::new())?,
        ];
        let applied = self.transact(OP, &items, deadline).await?;
        if applied == Applied::Yes {
            return Ok(true);
        }
        // As for a password change: on a retry, our own lost attempt may have deleted it already.
        Ok(applied.after_retry() && self.user_by_id(&user.id, deadline).await?.is_none())
    }

    /// Sends one TransactWriteItems of `items` with a `ClientRequestToken` made once for this call,
    /// so every retry is the same transaction to DynamoDB.
    async fn transact(
        &self,
        op: &'static str,
        items: &[TransactWriteItem],
        deadline: Deadline,
    ) -> Result<Applied, StoreError> {
        let token = uuid::Uuid::new_v4().to_string();
        let result = self
            .call_or(
                &self.retry,
                op,
                deadline,
                |client| {
                    client
                        .transact_write_items()
                        .set_transact_items(Some(items.to_vec()))
                        .client_request_token(&token)
                        .send()
                },
                |err| match a_condition_failed(&err) {
                    true => StoreError::permanent(
                        op,
                        ErrorKind::ConditionalCheckFailed,
                        "a condition of the transaction failed",
                    ),
                    false => StoreError::from_sdk(op, err),
                },
            )
            .await;
        match result {
            Ok(_) => Ok(Applied::Yes),
            Err(err) if err.kind == ErrorKind::ConditionalCheckFailed => {
                Ok(Applied::ConditionFailed {
                    attempts: err.attempts,
                })
            }
            Err(err) => Err(err),
        }
    }
}

/// What became of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    Yes,
    ConditionFailed { attempts: u32 },
}

impl Applied {
    /// The condition failed on a retry, not on the first attempt.
    fn after_retry(self) -> bool {
        matches!(self, Self::ConditionFailed { attempts } if attempts > 1)
    }
}
