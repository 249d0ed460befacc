//! Store errors and their classification: transient (worth retrying, 503 when retries run out) or
//! permanent (a bug or a misconfiguration, 500). Classified from the SDK's typed errors and the
//! HTTP status, never from message text.

use std::fmt;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::{
    Error as DynamoError,
    error::SdkError,
    types::{CancellationReason, error::TransactionCanceledException},
};

use crate::error::{ApiError, BoxError};

/// Whether a failed call may succeed if made again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Throttling, 5xx, timeouts, connection errors, transaction conflicts.
    Transient,
    /// Validation, access, not-found, a malformed item: retrying cannot help.
    Permanent,
}

/// What went wrong with which DynamoDB call.
#[derive(thiserror::Error)]
#[error("DynamoDB {operation} failed ({kind})")]
pub struct StoreError {
    /// What we were doing: "GetItem user by id".
    pub operation: &'static str,
    /// Retry or not.
    pub fault: Fault,
    /// A short name of the error, safe for logs and metrics: `ThrottlingException`, `timeout`.
    pub kind: &'static str,
    #[source]
    source: BoxError,
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}: {:?}", self.source)
    }
}

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
            source: source.into(),
        }
    }

    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        self.fault == Fault::Transient
    }
}

/// The service's typed errors.
fn classify(error: &DynamoError) -> (Fault, &'static str) {
    match error {
        DynamoError::ThrottlingException(_) => (Fault::Transient, "ThrottlingException"),
        DynamoError::ProvisionedThroughputExceededException(_) => {
            (Fault::Transient, "ProvisionedThroughputExceededException")
        }
        DynamoError::RequestLimitExceeded(_) => (Fault::Transient, "RequestLimitExceeded"),
        DynamoError::InternalServerError(_) => (Fault::Transient, "InternalServerError"),
        DynamoError::TransactionConflictException(_) => {
            (Fault::Transient, "TransactionConflictException")
        }
        DynamoError::TransactionInProgressException(_) => {
            (Fault::Transient, "TransactionInProgressException")
        }
        DynamoError::TransactionCanceledException(e) if cancelled_only_by_contention(e) => {
            (Fault::Transient, "TransactionCanceledException")
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
