//! What a failed DynamoDB call became: a [`StoreError`] with its [`ErrorKind`], whether it is
//! worth retrying ([`Fault`]) and, when the retry layer stopped on it, why ([`GaveUp`]). Classified
//! from the SDK's typed errors and the HTTP status, never from message text.
//!
//! Transient errors become a 503 when the retries run out, permanent ones a 500
//! (`From<StoreError> for ApiError`, in [`crate::error`]). The retry layer ([`super::retry`])
//! reads this module; this module knows nothing of it.

use std::{fmt, time::Duration};

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::{
    Error as DynamoError,
    error::SdkError,
    types::{CancellationReason, error::TransactionCanceledException},
};

use crate::error::BoxError;

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
    /// What kind of failure it was; [`ErrorKind::as_str`] names it in logs and metrics.
    pub kind: ErrorKind,
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
            self.operation,
            self.kind.as_str(),
            self.attempts
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
        let transport = match &err {
            SdkError::TimeoutError(_) => Some(ErrorKind::Timeout),
            SdkError::DispatchFailure(d) if d.is_user() => Some(ErrorKind::Dispatch),
            SdkError::DispatchFailure(d) if d.is_timeout() => Some(ErrorKind::Timeout),
            SdkError::DispatchFailure(_) => Some(ErrorKind::Connection),
            SdkError::ResponseError(_) => Some(ErrorKind::BadResponse),
            SdkError::ConstructionFailure(_) => Some(ErrorKind::Construction),
            _ => None,
        };
        let server_error = err
            .raw_response()
            .is_some_and(|r| r.status().is_server_error());
        let error = DynamoError::from(err);
        let kind = transport.unwrap_or_else(|| classify(&error));
        // A 5xx is worth another try whatever the service called it.
        let fault = if transport.is_none() && server_error {
            Fault::Transient
        } else {
            kind.fault()
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
        kind: ErrorKind,
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
            kind: ErrorKind::Timeout,
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
            kind: ErrorKind::Deadline,
            attempts: 0,
            gave_up: None,
            source: Box::new(NoTimeLeft),
        }
    }

    /// A transient error for tests of the retry layer.
    #[cfg(test)]
    pub(crate) fn transient_for_tests(operation: &'static str, kind: ErrorKind) -> Self {
        Self {
            fault: Fault::Transient,
            ..Self::permanent(operation, kind, kind.as_str())
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
        matches!(
            self.kind,
            ErrorKind::TransactionCancelledByConflict | ErrorKind::TransactionCancelledByThrottling
        )
    }

    /// Whether DynamoDB refused the call for throughput: throttling, over capacity, too many
    /// requests, or a transaction cancelled for one of these.
    pub fn is_throttle(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Throttling
                | ErrorKind::ProvisionedThroughputExceeded
                | ErrorKind::RequestLimitExceeded
                | ErrorKind::TransactionCancelledByThrottling
        )
    }
}

/// Every kind of store failure: the SDK's transport failures, the service's typed errors, and our
/// own (a deadline, a malformed item, a condition the store checks for a caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The SDK's or our per-attempt timeout.
    Timeout,
    /// The request could not be sent for a reason of ours (the SDK's "user" dispatch failure).
    Dispatch,
    /// The connection failed.
    Connection,
    /// An answer that could not be read.
    BadResponse,
    /// The request could not be built.
    Construction,
    /// `ThrottlingException`.
    Throttling,
    /// `ProvisionedThroughputExceededException`.
    ProvisionedThroughputExceeded,
    /// `RequestLimitExceeded`.
    RequestLimitExceeded,
    /// `InternalServerError`.
    InternalServerError,
    /// `TransactionConflictException`.
    TransactionConflict,
    /// `TransactionInProgressException`.
    TransactionInProgress,
    /// A transaction cancelled by conflicts with other transactions only.
    TransactionCancelledByConflict,
    /// A transaction cancelled with throttling among its reasons (and only contention ones).
    TransactionCancelledByThrottling,
    /// A transaction cancelled for another reason (a failed condition, a validation).
    TransactionCancelled,
    /// `ConditionalCheckFailedException`.
    ConditionalCheckFailed,
    /// `ResourceNotFoundException`.
    ResourceNotFound,
    /// `IdempotentParameterMismatchException`.
    IdempotentParameterMismatch,
    /// Any other service error.
    Other,
    /// The invocation's deadline left no time for a call.
    Deadline,
    /// An item whose attributes do not parse: a bug or a hand-edited item.
    MalformedItem,
    /// The create transaction's email condition failed: the email item exists.
    EmailTaken,
}

impl ErrorKind {
    /// A short, stable name, safe for logs and metrics (the service's own error names where there
    /// is one).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Dispatch => "dispatch",
            Self::Connection => "connection",
            Self::BadResponse => "bad_response",
            Self::Construction => "construction",
            Self::Throttling => "ThrottlingException",
            Self::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            Self::RequestLimitExceeded => "RequestLimitExceeded",
            Self::InternalServerError => "InternalServerError",
            Self::TransactionConflict => "TransactionConflictException",
            Self::TransactionInProgress => "TransactionInProgressException",
            Self::TransactionCancelledByConflict => "TransactionCanceledException(conflict)",
            Self::TransactionCancelledByThrottling => "TransactionCanceledException(throttled)",
            Self::TransactionCancelled => "TransactionCanceledException",
            Self::ConditionalCheckFailed => "ConditionalCheckFailedException",
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::IdempotentParameterMismatch => "IdempotentParameterMismatchException",
            Self::Other => "other",
            Self::Deadline => "deadline",
            Self::MalformedItem => "malformed_item",
            Self::EmailTaken => "EmailConditionFailed",
        }
    }

    /// Whether a call that failed this way may succeed if made again.
    pub fn fault(self) -> Fault {
        match self {
            Self::Timeout
            | Self::Connection
            | Self::BadResponse
            | Self::Throttling
            | Self::ProvisionedThroughputExceeded
            | Self::RequestLimitExceeded
            | Self::InternalServerError
            | Self::TransactionConflict
            | Self::TransactionInProgress
            | Self::TransactionCancelledByConflict
            | Self::TransactionCancelledByThrottling
            | Self::Deadline => Fault::Transient,
            Self::Dispatch
            | Self::Construction
            | Self::TransactionCancelled
            | Self::ConditionalCheckFailed
            | Self::ResourceNotFound
            | Self::IdempotentParameterMismatch
            | Self::Other
            | Self::MalformedItem
            | Self::EmailTaken => Fault::Permanent,
        }
    }
}

/// Why a transient error was not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaveUp {
    /// Every allowed attempt was made.
    Attempts,
    /// The next sleep and attempt would not end before the deadline.
    Deadline,
    /// The process's retry budget is empty.
    Budget,
}

impl GaveUp {
    /// For messages and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Attempts => "attempts exhausted",
            Self::Deadline => "deadline reached",
            Self::Budget => "retry budget empty",
        }
    }
}

/// The service's typed errors.
fn classify(error: &DynamoError) -> ErrorKind {
    match error {
        DynamoError::ThrottlingException(_) => ErrorKind::Throttling,
        DynamoError::ProvisionedThroughputExceededException(_) => {
            ErrorKind::ProvisionedThroughputExceeded
        }
        DynamoError::RequestLimitExceeded(_) => ErrorKind::RequestLimitExceeded,
        DynamoError::InternalServerError(_) => ErrorKind::InternalServerError,
        DynamoError::TransactionConflictException(_) => ErrorKind::TransactionConflict,
        DynamoError::TransactionInProgressException(_) => ErrorKind::TransactionInProgress,
        DynamoError::TransactionCanceledException(e) if cancelled_only_by_contention(e) => {
            let throttled = e
                .cancellation_reasons()
                .iter()
                .any(|r| is_contention(r) && r.code() != Some("TransactionConflict"));
            if throttled {
                ErrorKind::TransactionCancelledByThrottling
            } else {
                ErrorKind::TransactionCancelledByConflict
            }
        }
        DynamoError::TransactionCanceledException(_) => ErrorKind::TransactionCancelled,
        DynamoError::ConditionalCheckFailedException(_) => ErrorKind::ConditionalCheckFailed,
        DynamoError::ResourceNotFoundException(_) => ErrorKind::ResourceNotFound,
        DynamoError::IdempotentParameterMismatchException(_) => {
            ErrorKind::IdempotentParameterMismatch
        }
        _ => ErrorKind::Other,
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
            .fault(),
            Fault::Transient
        );
        assert_eq!(
            classify(&DynamoError::ProvisionedThroughputExceededException(
                ProvisionedThroughputExceededException::builder().build()
            ))
            .fault(),
            Fault::Transient
        );
        assert_eq!(
            classify(&DynamoError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build()
            ))
            .fault(),
            Fault::Permanent
        );
        assert_eq!(
            classify(&DynamoError::ResourceNotFoundException(
                ResourceNotFoundException::builder().build()
            ))
            .fault(),
            Fault::Permanent
        );
    }
}
