//! Client idempotency keys: a client that lost an answer retries with the same `Idempotency-Key`
//! and gets the first answer again, never a second effect.
//!
//! The semantics are those of Powertools for AWS Lambda's idempotency utility (Python,
//! TypeScript), which has no Rust counterpart; what follows is written here for that reason, on
//! the store's own retry layer and transactions.
//!
//! | the key's record | the request | answer |
//! |---|---|---|
//! | none, or expired | any | served; its success is recorded (24 h) |
//! | another payload's | any | 422 `idempotency_key_reused`, nothing stored |
//! | in progress, same payload | a retry while the first runs | 409 `request_in_progress` + `Retry-After` |
//! | completed, same payload | a retry | the first answer again, with `Idempotent-Replayed: true` |
//!
//! - **The lock.** [`crate::store::Store::begin_idempotent`] writes an `IN_PROGRESS` record with one
//!   conditional PutItem whose lock ends at the invocation's own deadline, so an attempt that
//!   crashed or timed out never holds the key longer than Lambda would have let it run.
//! - **Completion in the same transaction.** A handler that made its change writes the
//!   `COMPLETED` record in the same TransactWriteItems as the change itself
//!   ([`Lock::completion`]), on the condition that its lock is still its own: there is no moment
//!   when the user exists and the record does not, or the other way round.
//! - **Errors are not results.** A handler that fails releases its lock ([`Lock::release`]); a 422
//!   or a 503 can be retried with the same key and then succeed. A release that cannot be made (no
//!   time left, DynamoDB down) leaves the lock to expire at the deadline.
//! - **What the record holds.** The result's status and a reference to it (the user's id), never
//!   the body: a sign-up's body holds the email, and the record must hold no email, password or
//!   token. A replay rebuilds the answer from the reference.
//! - **Scope.** The record's key is a SHA-256 of the route, the caller's scope and the client's
//!   key. The scope is the API key's id where API Gateway gives one
//!   (`requestContext.identity.apiKeyId`), so two consumers choosing the same key never meet;
//!   without an API key (local runs) every caller shares one scope, and only the same key with the
//!   same payload, password included, sees a result.
//! - **The fingerprint** of the payload is an HMAC-SHA256 under a key the stack provides
//!   ([`FingerprintKey`], `IDEMPOTENCY_FINGERPRINT_KEY`). A plain SHA-256 over a payload holding a
//!   password is a fast password hash that anyone who can read the table could test guesses
//!   against offline; the keyed hash is useless without the key, which lives in Secrets Manager,
//!   not in the table. The password stays in the fingerprint so that a retry with another password
//!   is refused (422) rather than answered with an account whose password the client does not know.

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use hmac::{Hmac, KeyInit as _, Mac as _};
use http::HeaderValue;
use lambda_http::{Body, Response};
use sha2::{Digest as _, Sha256};

use crate::{error::FieldError, request::Route};

/// The request header a client sends its key in.
pub const HEADER: &str = "Idempotency-Key";
/// The response header that marks a replayed answer.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a completed request's answer is replayed.
pub const RECORD_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a lock lasts when the invocation has no deadline (outside Lambda).
pub const LOCK_WITHOUT_DEADLINE: Duration = Duration::from_secs(30);
/// The environment variable holding the fingerprint key.
pub const FINGERPRINT_KEY_ENV: &str = "IDEMPOTENCY_FINGERPRINT_KEY";
/// The shortest fingerprint key accepted, in bytes.
pub const MIN_FINGERPRINT_KEY_BYTES: usize = 32;

/// A client's idempotency key: 1 to 255 visible ASCII characters.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The most characters a key may have.
    pub const MAX_CHARS: usize = 255;

    /// The key in the request's `Idempotency-Key` header values: `Ok(None)` without the header, a
    /// 422 field error naming the header for anything but one valid value.
    pub fn from_header_values<'a>(
        mut values: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Option<Self>, FieldError> {
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(FieldError::header(HEADER, "must be sent once"));
        }
        let valid = (1..=Self::MAX_CHARS).contains(&first.len())
            && first.iter().all(|b| (0x21..=0x7e).contains(b));
        if !valid {
            return Err(FieldError::header(
                HEADER,
                "must be 1 to 255 visible ASCII characters",
            ));
        }
        // Only visible ASCII, checked above.
        Ok(Some(Self(String::from_utf8_lossy(first).into_owned())))
    }

    /// The record's key for this key, sent by `scope` to `route`: hashed, so the table holds no
    /// client-chosen text.
    pub fn record_key(&self, route: Route, scope: &Scope) -> RecordKey {
        let mut hash = Sha256::new();
        for part in [route.method, route.path, scope.0.as_str(), self.0.as_str()] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        RecordKey(hex::encode(hash.finalize()))
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A client may put anything in its key; the logs do not need it.
        f.write_str("IdempotencyKey(..)")
    }
}

/// Whose keys these are: the API key's id, or one shared scope without an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(String);

impl Scope {
    /// The scope of a caller with this API key id (`None`: no API key).
    pub fn of_api_key(api_key_id: Option<&str>) -> Self {
        match api_key_id.filter(|id| !id.is_empty()) {
            Some(id) => Self(format!("api-key:{id}")),
            None => Self("no-api-key".to_owned()),
        }
    }
}

/// The hex SHA-256 a record is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKey(pub String);

/// The secret the payload fingerprints are keyed with.
#[derive(Clone)]
pub struct FingerprintKey(Vec<u8>);

impl FingerprintKey {
    /// A key of at least [`MIN_FINGERPRINT_KEY_BYTES`] bytes.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.len() < MIN_FINGERPRINT_KEY_BYTES {
            return Err(format!(
                "{FINGERPRINT_KEY_ENV} must be at least {MIN_FINGERPRINT_KEY_BYTES} bytes"
            ));
        }
        Ok(Self(value.as_bytes().to_vec()))
    }

    /// The keyed fingerprint of a payload given as its parts (each length-prefixed, so no two
    /// payloads share one).
    pub fn fingerprint(&self, parts: &[&[u8]]) -> Fingerprint {
        // HMAC takes keys of any length; this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            unreachable!("HMAC accepts keys of any length")
        };
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        Fingerprint(hex::encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintKey(..)")
    }
}

/// A payload's keyed fingerprint (hex HMAC-SHA256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(pub String);

/// What a record says about an earlier request with the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// No live record: this request holds the lock and goes ahead.
    Fresh(Lock),
    /// An earlier request with this key and payload succeeded: replay its answer.
    Completed {
        /// The status it answered with.
        status: u16,
        /// What it made (a user's id), to rebuild the answer from.
        reference: String,
    },
    /// An earlier request with this key and payload is still running.
    InProgress {
        /// Until its lock ends.
        retry_after: Duration,
    },
    /// The key was used with another payload.
    Reused,
}

/// The lock a request holds on its key: what it needs to complete or release the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// Where the record is.
    pub key: RecordKey,
    /// The payload's fingerprint.
    pub fingerprint: Fingerprint,
    /// This attempt's own id: completing and releasing are conditional on it.
    pub attempt: String,
}

/// When the lock of a request ends: its invocation's deadline, or [`LOCK_WITHOUT_DEADLINE`]
/// from now when it has none.
pub fn lock_until(deadline: Option<SystemTime>, now: SystemTime) -> SystemTime {
    deadline.unwrap_or(now + LOCK_WITHOUT_DEADLINE)
}

/// Marks `response` as the replay of an earlier answer (`Idempotent-Replayed: true`).
pub fn mark_replayed(response: &mut Response<Body>) {
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
}

/// Milliseconds since the epoch (0 before it).
pub fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn key(value: &[u8]) -> Result<Option<IdempotencyKey>, FieldError> {
        IdempotencyKey::from_header_values([value].into_iter())
    }

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert!(key(b"a").unwrap().is_some());
        assert!(key(&[b'x'; 255]).unwrap().is_some());
        assert!(
            key(b"550e8400-e29b-41d4-a716-446655440000")
                .unwrap()
                .is_some()
        );
        for bad in [
            &b""[..],
            &[b'x'; 256],
            b"with space",
            b"tab\t",
            "é".as_bytes(),
            b"\x7f",
        ] {
            let err = key(bad).unwrap_err();
            assert_eq!(err.field, HEADER, "{bad:?}");
            assert_eq!(err.location, Some("header"));
        }
        assert_eq!(
            IdempotencyKey::from_header_values(std::iter::empty()).unwrap(),
            None
        );
        let twice = IdempotencyKey::from_header_values([&b"a"[..], b"a"].into_iter());
        assert!(twice.is_err(), "a repeated header is refused");
    }

    #[test]
    fn record_keys_are_scoped_by_route_and_api_key() {
        let k = key(b"k-1").unwrap().unwrap();
        let users = Route::new("POST", "/users");
        let (a, b) = (Scope::of_api_key(Some("a")), Scope::of_api_key(Some("b")));
        assert_ne!(k.record_key(users, &a), k.record_key(users, &b));
        assert_ne!(
            k.record_key(users, &a),
            k.record_key(Route::new("POST", "/auth/login"), &a)
        );
        assert_eq!(k.record_key(users, &a), k.record_key(users, &a));
        assert_eq!(Scope::of_api_key(Some("")), Scope::of_api_key(None));
        assert!(!format!("{k:?}").contains("k-1"));
    }

    #[test]
    fn fingerprints_depend_on_the_key_and_on_every_part() {
        let one = FingerprintKey::parse(&"1".repeat(32)).unwrap();
        let two = FingerprintKey::parse(&"2".repeat(32)).unwrap();
        let parts: &[&[u8]] = &[b"ada@example.com", b"Ada", b"correct horse"];
        assert_eq!(one.fingerprint(parts), one.fingerprint(parts));
        assert_ne!(one.fingerprint(parts), two.fingerprint(parts));
        assert_ne!(
            one.fingerprint(parts),
            one.fingerprint(&[b"ada@example.com", b"Ada", b"other password"])
        );
        // Length prefixes: moving a boundary changes the fingerprint.
        assert_ne!(
            one.fingerprint(&[b"ab", b"c"]),
            one.fingerprint(&[b"a", b"bc"])
        );
        assert!(FingerprintKey::parse("short").is_err());
        assert_eq!(format!("{one:?}"), "FingerprintKey(..)");
    }

    #[test]
    fn a_lock_ends_at_the_deadline_or_soon_without_one() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let deadline = now + Duration::from_secs(3);
        assert_eq!(lock_until(Some(deadline), now), deadline);
        assert_eq!(lock_until(None, now), now + LOCK_WITHOUT_DEADLINE);
        assert_eq!(epoch_ms(now), 1_000_000);
    }
}
