//! The error contract: one enum for every failure a function can answer with, and the one JSON body
//! every error is rendered as.
//!
//! ```json
//! {"detail": "User already exists", "status": 409, "code": "user_exists", "request_id": "..."}
//! ```
//!
//! `Display` is the `detail` a client sees; it never contains internals. `Debug` walks the whole
//! cause chain, for logs. The mapping from variant to status and code is the one `match` in
//! [`ApiError::status`] and [`ApiError::code`].

use std::{error::Error as StdError, fmt, sync::Arc, time::Duration};

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::{
    domain::{HashError, NoRandomness},
    health::Checks,
    response::{self, REQUEST_ID_HEADER},
    store::{Fault, StoreError},
};

/// A boxed error that keeps its source chain.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// One problem with one field of a request body, as listed in a 422's `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// A JSON pointer to the field (`/email`); the empty string means the body as a whole.
    pub field: String,
    /// What is wrong, for a human; it never repeats the submitted value.
    pub message: String,
    /// `header` when `field` is a request header's name rather than a pointer into the body.
    #[serde(rename = "in", skip_serializing_if = "Option::is_none")]
    pub location: Option<&'static str>,
}

impl FieldError {
    /// An error about the member `name` of the top-level object.
    pub fn member(name: &str, message: impl Into<String>) -> Self {
        Self {
            field: json_pointer(name),
            message: message.into(),
            location: None,
        }
    }

    /// An error about the request header `name` (`in: header`).
    pub fn header(name: &str, message: impl Into<String>) -> Self {
        Self {
            field: name.to_owned(),
            message: message.into(),
            location: Some("header"),
        }
    }

    /// An error about the body as a whole (not JSON, not an object, ...).
    pub fn body(message: impl Into<String>) -> Self {
        Self {
            field: String::new(),
            message: message.into(),
            location: None,
        }
    }
}

/// `/name` with `~` and `/` escaped as RFC 6901 requires.
fn json_pointer(name: &str) -> String {
    format!("/{}", name.replace('~', "~0").replace('/', "~1"))
}

/// Every failure a function answers with. Each variant's doc says its status.
#[derive(thiserror::Error)]
pub enum ApiError {
    /// 401: the request has no bearer token, or one that is unknown or expired.
    #[error("Not authenticated")]
    Unauthenticated,

    /// 401: login with an unknown email or a wrong password (one answer for both).
    #[error("Invalid email or password")]
    InvalidCredentials,

    /// 404: no such resource, or one the caller may not see.
    #[error("{0} not found")]
    NotFound(&'static str),

    /// 405: the route does not serve this method; `Allow` names the ones it does.
    #[error("Method not allowed")]
    MethodNotAllowed {
        /// The methods the path serves (`OPTIONS`, answered for CORS, is added to `Allow`).
        allow: &'static str,
    },

    /// 409: a user with this email already exists.
    #[error("User already exists")]
    UserExists,

    /// 409: a request with this `Idempotency-Key` is still being served; retry after
    /// `retry_after`, when it has finished or its lock has ended.
    #[error("A request with this Idempotency-Key is still in progress, please retry later")]
    RequestInProgress {
        /// Until the first request's lock ends.
        retry_after: Duration,
    },

    /// 422: this `Idempotency-Key` was used with another payload; `errors` names the header.
    #[error("This Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,

    /// 413: the body is larger than [`crate::request::MAX_BODY_BYTES`].
    #[error("Request body is too large: the limit is {limit} bytes")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },

    /// 415: a body whose content type is not JSON.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,

    /// 422: the body is not valid JSON, or a field is missing, unknown, of the wrong type or invalid.
    #[error("Request validation failed")]
    Validation(Vec<FieldError>),

    /// 429: too many failed logins for this email; refused without checking the password until
    /// the window ends (see [`crate::domain::LoginLimit`]).
    #[error("Too many failed login attempts, please try again later")]
    TooManyAttempts {
        /// How long until the window ends.
        retry_after: Duration,
    },

    /// 503: a dependency failed in a way that may pass (throttling, timeouts, 5xx) and retrying did
    /// not help in time.
    #[error("Service temporarily unavailable, please retry")]
    Unavailable {
        /// What failed, for the logs.
        #[source]
        source: BoxError,
        /// How long a client should wait before retrying.
        retry_after: Duration,
    },

    /// 503 from `/health`: a dependency check failed.
    #[error("Service unavailable: a dependency check failed")]
    Unhealthy {
        /// Every check with its status.
        checks: Checks,
        /// Why the failing check failed, for the logs (shared by the requests that reuse the
        /// cached report).
        #[source]
        source: Arc<StoreError>,
    },

    /// 500: anything else, a panic included. The source is logged, never shown.
    #[error("Internal server error")]
    Internal(#[source] BoxError),
}

impl ApiError {
    /// A 500 with `source` kept for the logs.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        Self::Internal(source.into())
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::UserExists | Self::RequestInProgress { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } | Self::Unhealthy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "not_authenticated",
            Self::InvalidCredentials => "invalid_credentials",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::UserExists => "user_exists",
            Self::RequestInProgress { .. } => "request_in_progress",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Validation(_) => "validation_error",
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::Unavailable { .. } => "service_unavailable",
            Self::Unhealthy { .. } => "unhealthy",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The `Retry-After` a client gets, for the statuses that carry one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. }
            | Self::TooManyAttempts { retry_after }
            | Self::RequestInProgress { retry_after } => Some(*retry_after),
            Self::Unhealthy { .. } => Some(UNHEALTHY_RETRY_AFTER),
            _ => None,
        }
    }

    /// Whether this is a fault of ours (5xx) rather than of the request.
    pub fn is_server_error(&self) -> bool {
        self.status().is_server_error()
    }

    /// Renders the contract body and its headers.
    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let status = self.status();
        let detail = self.to_string();
        // Every 422 names what is wrong; a reused key's problem is the header.
        let reused = matches!(self, Self::IdempotencyKeyReused).then(|| {
            vec![FieldError::header(
                crate::idempotency::HEADER,
                "was already used with a different request; send a new key",
            )]
        });
        let body = ErrorBody {
            detail: &detail,
            status: status.as_u16(),
            code: self.code(),
            request_id,
            errors: match &self {
                Self::Validation(errors) => Some(errors),
                _ => reused.as_ref(),
            },
            checks: match &self {
                Self::Unhealthy { checks, .. } => Some(checks),
                _ => None,
            },
        };
        let mut response = response::json(status, &body);
        let headers = response.headers_mut();
        if let Some(retry_after) = self.retry_after() {
            // Whole seconds, rounded up: `Retry-After: 0` would invite an immediate retry.
            let secs = retry_after.as_millis().div_ceil(1000).max(1);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs as u64));
        }
        if matches!(self, Self::Unauthenticated) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // Written as API Gateway's own 405 writes it (template.yaml), so both read the same.
        if let Self::MethodNotAllowed { allow } = self
            && let Ok(value) = HeaderValue::from_str(&format!("{allow},OPTIONS"))
        {
            headers.insert(header::ALLOW, value);
        }
        response::set_request_id(&mut response, request_id);
        debug_assert!(response.headers().contains_key(REQUEST_ID_HEADER));
        response
    }
}

/// A store failure, mapped once: a transient one (retries ran out) is a 503 with `Retry-After`,
/// a permanent one (a bug, a misconfiguration, a malformed item) a 500.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err.fault {
            Fault::Transient => ApiError::Unavailable {
                source: Box::new(err),
                retry_after: Duration::from_secs(1),
            },
            Fault::Permanent => ApiError::Internal(Box::new(err)),
        }
    }
}

/// The domain's own failures are faults of ours: 500s, their causes kept for the logs.
impl From<HashError> for ApiError {
    fn from(err: HashError) -> Self {
        ApiError::Internal(Box::new(err))
    }
}

impl From<NoRandomness> for ApiError {
    fn from(err: NoRandomness) -> Self {
        ApiError::Internal(Box::new(err))
    }
}

/// How long a client is asked to wait after a failed health check.
const UNHEALTHY_RETRY_AFTER: Duration = Duration::from_secs(5);

/// `Debug` shows the variant and the whole cause chain, one cause a line, for the logs.
impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {self}", self.code(), self.status().as_u16())?;
        if let Self::Validation(errors) = self {
            for e in errors {
                write!(f, "\n  field {:?}: {}", e.field, e.message)?;
            }
        }
        let mut source = self.source();
        while let Some(cause) = source {
            write!(f, "\nCaused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// The wire shape of every error.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// Human-readable; the frontend shows it as is.
    pub detail: &'a str,
    /// The HTTP status, repeated for clients that only see the body.
    pub status: u16,
    /// Stable, snake_case.
    pub code: &'static str,
    /// The same id as the `x-request-id` header and the logs.
    pub request_id: &'a str,
    /// Per-field problems, on 422 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<&'a Vec<FieldError>>,
    /// Dependency checks, on `/health`'s 503 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<&'a Checks>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::{Value, json};

    fn render(err: ApiError) -> (StatusCode, http::HeaderMap, Value) {
        let response = err.into_response("req-1");
        let (parts, body) = response.into_parts();
        let body: Value = serde_json::from_slice(body.as_ref()).unwrap();
        (parts.status, parts.headers, body)
    }

    #[test]
    fn every_variant_renders_the_contract_body() {
        let cases = vec![
            (ApiError::Unauthenticated, 401, "not_authenticated"),
            (ApiError::InvalidCredentials, 401, "invalid_credentials"),
            (ApiError::NotFound("User"), 404, "not_found"),
            (ApiError::UserExists, 409, "user_exists"),
            (
                ApiError::RequestInProgress {
                    retry_after: Duration::from_secs(3),
                },
                409,
                "request_in_progress",
            ),
            (
                ApiError::IdempotencyKeyReused,
                422,
                "idempotency_key_reused",
            ),
            (
                ApiError::MethodNotAllowed { allow: "POST" },
                405,
                "method_not_allowed",
            ),
            (
                ApiError::PayloadTooLarge { limit: 10 },
                413,
                "payload_too_large",
            ),
            (
                ApiError::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (ApiError::Validation(vec![]), 422, "validation_error"),
            (
                ApiError::TooManyAttempts {
                    retry_after: Duration::from_secs(60),
                },
                429,
                "too_many_attempts",
            ),
            (
                ApiError::Unavailable {
                    source: "boom".into(),
                    retry_after: Duration::from_millis(1500),
                },
                503,
                "service_unavailable",
            ),
            (
                ApiError::internal("secret internals"),
                500,
                "internal_error",
            ),
        ];
        for (err, status, code) in cases {
            let detail = err.to_string();
            let (got_status, headers, body) = render(err);
            assert_eq!(got_status.as_u16(), status, "{code}");
            assert_eq!(body["status"], status, "{code}");
            assert_eq!(body["code"], code);
            assert_eq!(body["detail"], detail.as_str());
            assert_eq!(body["request_id"], "req-1");
            assert_eq!(headers["content-type"], "application/json");
            assert_eq!(headers["x-request-id"], "req-1");
        }
    }

    #[test]
    fn user_exists_body_is_exactly_the_documented_one() {
        let (_, _, body) = render(ApiError::UserExists);
        assert_eq!(
            body,
            json!({"detail": "User already exists", "status": 409, "code": "user_exists", "request_id": "req-1"})
        );
    }

    #[test]
    fn internal_details_never_reach_the_body() {
        let (_, _, body) = render(ApiError::internal("connection refused to 10.0.0.1"));
        assert_eq!(body["detail"], "Internal server error");
        assert!(!body.to_string().contains("10.0.0.1"));
    }

    #[test]
    fn validation_lists_field_errors() {
        let (_, _, body) = render(ApiError::Validation(vec![
            FieldError::member("email", "must be a valid email address"),
            FieldError::member("a/b~c", "unknown field"),
        ]));
        assert_eq!(
            body["errors"],
            json!([
                {"field": "/email", "message": "must be a valid email address"},
                {"field": "/a~1b~0c", "message": "unknown field"},
            ])
        );
    }

    #[test]
    fn idempotency_errors_name_the_header_and_say_when_to_retry() {
        let (_, _, body) = render(ApiError::IdempotencyKeyReused);
        assert_eq!(
            body["errors"],
            json!([{
                "field": "Idempotency-Key",
                "in": "header",
                "message": "was already used with a different request; send a new key",
            }])
        );
        let (_, headers, body) = render(ApiError::RequestInProgress {
            retry_after: Duration::from_millis(2100),
        });
        assert_eq!(headers["retry-after"], "3");
        assert!(body.get("errors").is_none());
    }

    #[test]
    fn unavailable_carries_retry_after_rounded_up() {
        let (_, headers, _) = render(ApiError::Unavailable {
            source: "throttled".into(),
            retry_after: Duration::from_millis(1500),
        });
        assert_eq!(headers["retry-after"], "2");
    }

    #[test]
    fn too_many_attempts_says_when_to_come_back() {
        let (status, headers, body) = render(ApiError::TooManyAttempts {
            retry_after: Duration::from_millis(899_001),
        });
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers["retry-after"], "900");
        assert_eq!(body["code"], "too_many_attempts");
    }

    #[test]
    fn method_not_allowed_names_the_allowed_methods() {
        let (status, headers, body) = render(ApiError::MethodNotAllowed { allow: "POST" });
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers["allow"], "POST,OPTIONS");
        assert_eq!(body["detail"], "Method not allowed");
    }

    #[test]
    fn unauthenticated_carries_a_bearer_challenge() {
        let (_, headers, _) = render(ApiError::Unauthenticated);
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }

    #[test]
    fn debug_walks_the_cause_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("GetItem user")]
        struct Outer(#[source] std::io::Error);
        let err = ApiError::internal(Outer(std::io::Error::other("connection reset")));
        let debug = format!("{err:?}");
        assert!(debug.contains("Caused by: GetItem user"), "{debug}");
        assert!(debug.contains("Caused by: connection reset"), "{debug}");
    }
}
