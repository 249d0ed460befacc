//! Store errors and their classification: transient (worth retrying, 503 when retries run out) or
//! permanent (a bug or a misconfiguration, 500). Classified from the SDK's typed errors and the
//! HTTP status, never from message text.

use std::{fmt, time::Duration};

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::{
    Error as DynamoError,
    error::SdkError,
    types::{CancellationReason, error::TransactionCanceledException},
};

use super::retry::GaveUp;
use crate::error::{ApiError, BoxError};

/// Whether a failed call may succeed if made again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Throttling, 5xx, timeouts, connection errors, transaction conflicts.
    Transient,
    /// Validation, access, not-found, a malformed item: retrying cannot help.
    Permanent,
}

/// What went wrong with which DynamoDB call, after how many attempts.
///
/// `Display` reads "DynamoDB GetItem user failed (ThrottlingException) after 3 attempts (attempts
/// exhausted)", so the boundary's log line and a Sentry event say how hard we tried.
#[derive(thiserror::Error)]
pub struct StoreError {
    /// What we were doing: "GetItem user by id".
    pub operation: &'static str,
    /// Retry or not.
    pub fault: Fault,
    /// A short name of the error, safe for logs and metrics: `ThrottlingException`, `timeout`.
    pub kind: &'static str,
    /// Attempts made before this error was returned (1 until the retry layer says otherwise).
    pub attempts: u32,
    /// Why the retry layer stopped on a transient error, when it did.
    pub gave_up: Option<GaveUp>,
    #[source]
    source: BoxError,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "DynamoDB {} failed ({}) after {} attempt{plural}",
            self.operation, self.kind, self.attempts
        )?;
        if let Some(reason) = self.gave_up {
            write!(f, " ({})", reason.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}: {:?}", self.source)
    }
}

/// Our own per-attempt timeout fired.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?}")]
struct AttemptTimedOut(Duration);

/// The invocation's deadline left no time for an attempt.
#[derive(Debug, thiserror::Error)]
#[error("the invocation's deadline left no time for a call")]
struct NoTimeLeft;

impl StoreError {
    /// Classifies an SDK error from `operation`.
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        DynamoError: From<SdkError<E, HttpResponse>>,
    {
        let (transport, transport_kind) = match &err {
            SdkError::TimeoutError(_) => (Some(Fault::Transient), "timeout"),
            SdkError::DispatchFailure(d) if d.is_user() => (Some(Fault::Permanent), "dispatch"),
            SdkError::DispatchFailure(d) if d.is_timeout() => (Some(Fault::Transient), "timeout"),
            SdkError::DispatchFailure(_) => (Some(Fault::Transient), "connection"),
            SdkError::ResponseError(_) => (Some(Fault::Transient), "bad_response"),
            SdkError::ConstructionFailure(_) => (Some(Fault::Permanent), "construction"),
            _ => (None, ""),
        };
        let server_error = err
            .raw_response()
            .is_some_and(|r| r.status().is_server_error());
        let error = DynamoError::from(err);
        let (fault, kind) = match transport {
            Some(fault) => (fault, transport_kind),
            None => {
                let (fault, kind) = classify(&error);
                if server_error {
                    (Fault::Transient, kind)
                } else {
                    (fault, kind)
                }
            }
        };
        Self {
            operation,
            fault,
            kind,
            attempts: 1,
            gave_up: None,
            source: Box::new(error),
        }
    }

    /// A permanent error that is ours, not the SDK's: a malformed item, say.
    pub fn permanent(
        operation: &'static str,
        kind: &'static str,
        source: impl Into<BoxError>,
    ) -> Self {
        Self {
            operation,
            fault: Fault::Permanent,
            kind,
            attempts: 1,
            gave_up: None,
            source: source.into(),
        }
    }

    /// Our per-attempt timeout fired after `after`: transient.
    pub fn timeout(operation: &'static str, after: Duration) -> Self {
        Self {
            operation,
            fault: Fault::Transient,
            kind: "timeout",
            attempts: 1,
            gave_up: None,
            source: Box::new(AttemptTimedOut(after)),
        }
    }

    /// No time was left before the invocation's deadline to make the call: transient (503).
    pub fn deadline(operation: &'static str) -> Self {
        Self {
            operation,
            fault: Fault::Transient,
            kind: "deadline",
            attempts: 0,
            gave_up: None,
            source: Box::new(NoTimeLeft),
        }
    }

    /// A transient error for tests of the retry layer.
    #[cfg(test)]
    pub(crate) fn transient_for_tests(operation: &'static str, kind: &'static str) -> Self {
        Self {
            fault: Fault::Transient,
            ..Self::permanent(operation, kind, kind)
        }
    }

    /// This error, as returned after `attempts` attempts.
    pub fn after(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// This error, as returned after `attempts` attempts when the retry layer stopped for `reason`.
    pub fn gave_up(mut self, attempts: u32, reason: GaveUp) -> Self {
        self.attempts = attempts;
        self.gave_up = Some(reason);
        self
    }

    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        self.fault == Fault::Transient
    }

    /// Whether this is a transaction cancelled only by contention (conflicts, throttling).
    pub fn is_cancelled_by_contention(&self) -> bool {
        matches!(self.kind, TRANSACTION_CONFLICT | TRANSACTION_THROTTLED)
    }

    /// Whether DynamoDB refused the call for throughput: throttling, over capacity, too many
    /// requests, or a transaction cancelled for one of these.
    pub fn is_throttle(&self) -> bool {
        matches!(
            self.kind,
            THROTTLING
                | PROVISIONED_THROUGHPUT_EXCEEDED
                | REQUEST_LIMIT_EXCEEDED
                | TRANSACTION_THROTTLED
        )
    }
}

const THROTTLING: &str = "ThrottlingException";
const PROVISIONED_THROUGHPUT_EXCEEDED: &str = "ProvisionedThroughputExceededException";
const REQUEST_LIMIT_EXCEEDED: &str = "RequestLimitExceeded";
/// A transaction cancelled by conflicts with other transactions only.
const TRANSACTION_CONFLICT: &str = "TransactionCanceledException(conflict)";
/// A transaction cancelled with throttling among its reasons (and only contention ones).
const TRANSACTION_THROTTLED: &str = "TransactionCanceledException(throttled)";

/// The service's typed errors.
fn classify(error: &DynamoError) -> (Fault, &'static str) {
    match error {
        DynamoError::ThrottlingException(_) => (Fault::Transient, THROTTLING),
        DynamoError::ProvisionedThroughputExceededException(_) => {
            (Fault::Transient, PROVISIONED_THROUGHPUT_EXCEEDED)
        }
        DynamoError::RequestLimitExceeded(_) => (Fault::Transient, REQUEST_LIMIT_EXCEEDED),
        DynamoError::InternalServerError(_) => (Fault::Transient, "InternalServerError"),
        DynamoError::TransactionConflictException(_) => {
            (Fault::Transient, "TransactionConflictException")
        }
        DynamoError::TransactionInProgressException(_) => {
            (Fault::Transient, "TransactionInProgressException")
        }
        DynamoError::TransactionCanceledException(e) if cancelled_only_by_contention(e) => {
            let throttled = e
                .cancellation_reasons()
                .iter()
                .any(|r| is_contention(r) && r.code() != Some("TransactionConflict"));
            if throttled {
                (Fault::Transient, TRANSACTION_THROTTLED)
            } else {
                (Fault::Transient, TRANSACTION_CONFLICT)
            }
        }
        DynamoError::TransactionCanceledException(_) => {
            (Fault::Permanent, "TransactionCanceledException")
        }
        DynamoError::ConditionalCheckFailedException(_) => {
            (Fault::Permanent, "ConditionalCheckFailedException")
        }
        DynamoError::ResourceNotFoundException(_) => {
            (Fault::Permanent, "ResourceNotFoundException")
        }
        DynamoError::IdempotentParameterMismatchException(_) => {
            (Fault::Permanent, "IdempotentParameterMismatchException")
        }
        _ => (Fault::Permanent, "other"),
    }
}

/// A transaction cancelled only because of contention (conflicts, throttling) may go through if
/// tried again; one cancelled by a failed condition may not.
pub(crate) fn cancelled_only_by_contention(e: &TransactionCanceledException) -> bool {
    let reasons = e.cancellation_reasons();
    reasons.iter().any(is_contention)
        && reasons
            .iter()
            .all(|r| is_contention(r) || matches!(r.code(), None | Some("None")))
}

fn is_contention(reason: &CancellationReason) -> bool {
    matches!(
        reason.code(),
        Some(
            "TransactionConflict"
                | "ThrottlingError"
                | "ProvisionedThroughputExceeded"
                | "RequestLimitExceeded"
        )
    )
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err.fault {
            Fault::Transient => ApiError::Unavailable {
                source: Box::new(err),
                retry_after: std::time::Duration::from_secs(1),
            },
            Fault::Permanent => ApiError::Internal(Box::new(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn cancelled(codes: &[&str]) -> TransactionCanceledException {
        let mut builder = TransactionCanceledException::builder();
        for code in codes {
            builder =
                builder.cancellation_reasons(CancellationReason::builder().code(*code).build());
        }
        builder.build()
    }

    #[test]
    fn cancellation_reasons() {
        assert!(cancelled_only_by_contention(&cancelled(&[
            "TransactionConflict",
            "None"
        ])));
        assert!(cancelled_only_by_contention(&cancelled(&[
            "ThrottlingError",
            "ThrottlingError"
        ])));
        assert!(!cancelled_only_by_contention(&cancelled(&[
            "None",
            "ConditionalCheckFailed"
        ])));
        assert!(!cancelled_only_by_contention(&cancelled(&[
            "TransactionConflict",
            "ConditionalCheckFailed"
        ])));
        assert!(!cancelled_only_by_contention(&cancelled(&[
            "ValidationError"
        ])));
        assert!(!cancelled_only_by_contention(&cancelled(&[])));
    }

    #[test]
    fn typed_errors_are_classified() {
        use aws_sdk_dynamodb::types::error::*;
        assert_eq!(
            classify(&DynamoError::ThrottlingException(
                ThrottlingException::builder().build()
            ))
            .0,
            Fault::Transient
        );
        assert_eq!(
            classify(&DynamoError::ProvisionedThroughputExceededException(
                ProvisionedThroughputExceededException::builder().build()
            ))
            .0,
            Fault::Transient
        );
        assert_eq!(
            classify(&DynamoError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build()
            ))
            .0,
            Fault::Permanent
        );
        assert_eq!(
            classify(&DynamoError::ResourceNotFoundException(
                ResourceNotFoundException::builder().build()
            ))
            .0,
            Fault::Permanent
        );
    }
}
