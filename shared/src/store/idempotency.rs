//! Idempotency records ([`crate::idempotency`]): take a key's lock, complete it inside the caller's
//! transaction, or release it.
//!
//! | `pk` | `sk` | attributes |
//! |---|---|---|
//! | `IDEMPOTENCY#<sha256 of route, scope and key>` | `IDEMPOTENCY` | state (`IN_PROGRESS` or `COMPLETED`), fingerprint, attempt, valid_until (epoch ms), expires_at (TTL), result_status and reference once completed |
//!
//! A record is live while `valid_until` is in the future: TTL deletion runs up to days late, so
//! the code never relies on it, and an expired record is taken over as if it were not there.

use std::{
    sync::Mutex,
    time::{Duration, SystemTime},
};

use aws_sdk_dynamodb::{
    operation::{delete_item::DeleteItemError, put_item::PutItemError},
    types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem},
};

use super::{ErrorKind, Item, Read, Store, StoreError, attr, key, keys, n, s};
use crate::{
    idempotency::{Begun, Fingerprint, Lock, RECORD_TTL, RecordKey, epoch_ms},
    store::Deadline,
};

const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";

/// The condition that a record can be written: none, or no longer live.
const FREE: &str = "attribute_not_exists(pk) OR #valid_until < :now";
/// The condition that a record is still this attempt's lock.
const HELD: &str = "#state = :in_progress AND #attempt = :attempt";

impl Store {
    /// Takes the lock on `key` until `lock_until` for a request whose payload has `fingerprint`,
    /// or says what an earlier request with this key left. One conditional PutItem, which returns
    /// the record it found when its condition fails. Retrying it is safe: a retry that finds our
    /// own attempt's record (its answer was lost) has the lock.
    pub async fn begin_idempotent(
        &self,
        key: &RecordKey,
        fingerprint: &Fingerprint,
        lock_until: SystemTime,
        deadline: Deadline,
    ) -> Result<Begun, StoreError> {
        const OP: &str = "PutItem idempotency lock";
        let now = SystemTime::now();
        let attempt = uuid::Uuid::new_v4().to_string();
        let mut item = record_key(key);
        item.extend([
            (attr::ENTITY.to_owned(), s("idempotency")),
            (attr::STATE.to_owned(), s(IN_PROGRESS)),
            (attr::FINGERPRINT.to_owned(), s(&fingerprint.0)),
            (attr::ATTEMPT.to_owned(), s(&attempt)),
        ]);
        item.extend(validity(lock_until));
        let found = Mutex::new(None::<Item>);
        let result = self
            .call_or(
                &self.retry,
                OP,
                deadline,
                |client| {
                    client
                        .put_item()
                        .table_name(&self.table)
                        .set_item(Some(item.clone()))
                        .condition_expression(FREE)
                        .expression_attribute_names("#valid_until", attr::VALID_UNTIL)
                        .expression_attribute_values(":now", n(epoch_ms(now)))
                        .return_values_on_condition_check_failure(
                            ReturnValuesOnConditionCheckFailure::AllOld,
                        )
                        .send()
                },
                |err| match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(e)) => {
                        if let Ok(mut found) = found.lock() {
                            *found = e.item().cloned();
                        }
                        StoreError::permanent(
                            OP,
                            ErrorKind::ConditionalCheckFailed,
                            "a live record holds the key",
                        )
                    }
                    _ => StoreError::from_sdk(OP, err),
                },
            )
            .await;
        let lock = Lock {
            key: key.clone(),
            fingerprint: fingerprint.clone(),
            attempt,
        };
        match result {
            Ok(_) => return Ok(Begun::Fresh(lock)),
            Err(err) if err.kind != ErrorKind::ConditionalCheckFailed => return Err(err),
            Err(_) => {}
        }
        let found = found.into_inner().ok().flatten().ok_or_else(|| {
            StoreError::permanent(
                OP,
                ErrorKind::MalformedItem,
                "the failed condition returned no record",
            )
        })?;
        let record = Read::new(&found, OP, "idempotency record");
        let found_attempt = record.string(attr::ATTEMPT)?;
        let state = record.string(attr::STATE)?;
        if found_attempt == lock.attempt && state == IN_PROGRESS {
            // Our own first attempt wrote it; its answer was lost.
            return Ok(Begun::Fresh(lock));
        }
        if record.string(attr::FINGERPRINT)? != fingerprint.0 {
            return Ok(Begun::Reused);
        }
        if state == COMPLETED {
            return Ok(Begun::Completed {
                status: u16::try_from(record.count(attr::RESULT_STATUS)?)
                    .map_err(|_| record.malformed(attr::RESULT_STATUS))?,
                reference: record.string(attr::REFERENCE)?.to_owned(),
            });
        }
        let until = record
            .number(attr::VALID_UNTIL)
            .ok_or_else(|| record.malformed(attr::VALID_UNTIL))?;
        let left = u64::try_from(until)
            .unwrap_or(0)
            .saturating_sub(epoch_ms(now));
        Ok(Begun::InProgress {
            retry_after: Duration::from_millis(left),
        })
    }

    /// Gives `lock` up after its request failed, so that a retry with the key is served anew.
    /// Conditional on the lock being still ours and in progress: a completed record (the change
    /// was made though its answer was lost) is never removed.
    pub async fn release_idempotent(
        &self,
        lock: &Lock,
        deadline: Deadline,
    ) -> Result<(), StoreError> {
        const OP: &str = "DeleteItem idempotency lock";
        let result = self
            .call_or(
                &self.retry,
                OP,
                deadline,
                |client| {
                    client
                        .delete_item()
                        .table_name(&self.table)
                        .set_key(Some(record_key(&lock.key)))
                        .condition_expression(HELD)
                        .expression_attribute_names("#state", attr::STATE)
                        .expression_attribute_names("#attempt", attr::ATTEMPT)
                        .expression_attribute_values(":in_progress", s(IN_PROGRESS))
                        .expression_attribute_values(":attempt", s(&lock.attempt))
                        .send()
                },
                |err| match err.as_service_error() {
                    Some(DeleteItemError::ConditionalCheckFailedException(_)) => {
                        StoreError::permanent(
                            OP,
                            ErrorKind::ConditionalCheckFailed,
                            "the lock is no longer ours",
                        )
                    }
                    _ => StoreError::from_sdk(OP, err),
                },
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.kind == ErrorKind::ConditionalCheckFailed => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// The transaction item that turns `lock` into the completed record of a `status` answer
    /// about `reference`, replayed for [`RECORD_TTL`]; conditional on the lock being still ours.
    pub(crate) fn completion(
        &self,
        lock: &Lock,
        status: u16,
        reference: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        const OP: &str = "TransactWriteItems idempotency record";
        let mut item = record_key(&lock.key);
        item.extend([
            (attr::ENTITY.to_owned(), s("idempotency")),
            (attr::STATE.to_owned(), s(COMPLETED)),
            (attr::FINGERPRINT.to_owned(), s(&lock.fingerprint.0)),
            (attr::ATTEMPT.to_owned(), s(&lock.attempt)),
            (attr::RESULT_STATUS.to_owned(), n(status)),
            (attr::REFERENCE.to_owned(), s(reference)),
        ]);
        item.extend(validity(SystemTime::now() + RECORD_TTL));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            // Ours, whether still in progress or (on a retry of the same transaction) completed.
            .condition_expression("#attempt = :attempt")
            .expression_attribute_names("#attempt", attr::ATTEMPT)
            .expression_attribute_values(":attempt", s(&lock.attempt))
            .build()
            .map_err(|e| StoreError::permanent(OP, ErrorKind::Construction, e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

fn record_key(record: &RecordKey) -> Item {
    key(keys::idempotency(record))
}

/// `valid_until` (epoch ms) and the TTL attribute (epoch seconds, rounded up) for `until`.
fn validity(until: SystemTime) -> [(String, aws_sdk_dynamodb::types::AttributeValue); 2] {
    let ms = epoch_ms(until);
    [
        (attr::VALID_UNTIL.to_owned(), n(ms)),
        (attr::EXPIRES_AT.to_owned(), n(ms.div_ceil(1000))),
    ]
}
