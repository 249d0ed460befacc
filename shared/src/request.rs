//! What a handler sees of a request: the HTTP request plus the invocation it belongs to, with the
//! checks every body goes through (size, content type, JSON) before a handler parses it.

use std::time::{Duration, SystemTime};

use http::{Method, header};
use lambda_http::{Body, Request, RequestExt, request::RequestContext};

use crate::{
    deadline::Deadline,
    error::{ApiError, FieldError},
    idempotency::IdempotencyKey,
    json::JsonObject,
};

/// The largest request body accepted, in bytes. Every body of this API is a few hundred bytes; the
/// limit is checked before anything parses the body, so a large or deeply nested one costs nothing.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A function's route, as API Gateway (and `cargo lambda watch`) routes it: `GET /users/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method.
    pub method: &'static str,
    /// The resource path template, with `{name}` for path parameters.
    pub path: &'static str,
}

impl Route {
    /// `GET /users/{id}`.
    pub const fn new(method: &'static str, path: &'static str) -> Self {
        Self { method, path }
    }

    /// Every method the route's path serves, comma-separated and sorted (the `Allow` of a 405, before
    /// `OPTIONS`): from openapi.yaml, read at build time; this route's own method if the path is
    /// not there.
    pub fn path_methods(&self) -> &'static str {
        PATH_METHODS
            .iter()
            .find(|(path, _)| *path == self.path)
            .map_or(self.method, |(_, methods)| methods)
    }

    /// Matches `path` against this template from its end, so that a stage prefix (`/prod/users/1`)
    /// or the local `/lambda-url/<function>` prefix does not matter. Returns the value of `name`.
    fn param_from_path<'p>(&self, path: &'p str, name: &str) -> Option<&'p str> {
        let template: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let offset = segments.len().checked_sub(template.len())?;
        let wanted = format!("{{{name}}}");
        let mut found = None;
        for (t, s) in template.iter().zip(&segments[offset..]) {
            if *t == wanted {
                found = Some(*s);
            } else if !(t.starts_with('{') || t == s) {
                return None;
            }
        }
        found.filter(|s| !s.is_empty())
    }
}

include!(concat!(env!("OUT_DIR"), "/path_methods.rs"));

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// Facts about the invocation a request arrived in.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The contract's request id: API Gateway's when there is one, else Lambda's.
    pub request_id: String,
    /// Lambda's own request id (the one in the REPORT line).
    pub lambda_request_id: String,
    /// When Lambda will stop this invocation; `None` outside Lambda.
    pub deadline: Option<SystemTime>,
    /// The X-Ray trace id, when tracing is on.
    pub xray_trace_id: Option<String>,
    /// The function's name, as the code knows it (`create_user`).
    pub function: &'static str,
    /// The route this function serves.
    pub route: Route,
}

impl Invocation {
    /// Reads the ids and deadline from the request's Lambda and API Gateway contexts.
    pub fn from_request(request: &Request, function: &'static str, route: Route) -> Self {
        let lambda = request.lambda_context_ref();
        let lambda_request_id = lambda
            .map(|c| c.request_id.clone())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let gateway_request_id = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV1(ctx)) => ctx.request_id.clone(),
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
            _ => None,
        };
        let request_id = gateway_request_id
            .filter(|id| is_plausible_id(id))
            .unwrap_or_else(|| lambda_request_id.clone());
        Self {
            request_id,
            lambda_request_id,
            deadline: lambda.and_then(|c| plausible_deadline(c.deadline, SystemTime::now())),
            xray_trace_id: lambda.and_then(|c| c.xray_trace_id.clone()),
            function,
            route,
        }
    }

    /// Time left before the deadline; `None` outside Lambda.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline.map(|d| {
            d.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        })
    }
}

/// Lambda's deadline (epoch milliseconds), when it is one: Lambda always hands out a deadline in
/// the future. `cargo lambda watch` 1.9 sends its timeout (600000, i.e. 1970) in this header; a
/// deadline that has already passed when the invocation starts is ignored rather than obeyed, or
/// every DynamoDB call would be refused for lack of time.
fn plausible_deadline(epoch_ms: u64, now: SystemTime) -> Option<SystemTime> {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(epoch_ms);
    (at > now).then_some(at)
}

/// Request ids end up in a header and on every log line: only accept what API Gateway sends.
fn is_plausible_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A request as a handler sees it.
#[derive(Debug)]
pub struct ApiRequest {
    inner: Request,
    invocation: Invocation,
}

impl ApiRequest {
    /// Wraps a request of `invocation`.
    pub fn new(inner: Request, invocation: Invocation) -> Self {
        Self { inner, invocation }
    }

    /// The invocation this request belongs to.
    pub fn invocation(&self) -> &Invocation {
        &self.invocation
    }

    /// When this invocation ends, for the store's calls (they stop retrying before it).
    pub fn deadline(&self) -> Deadline {
        Deadline::from_system_time(self.invocation.deadline)
    }

    /// The contract's request id.
    pub fn request_id(&self) -> &str {
        &self.invocation.request_id
    }

    /// The HTTP method.
    pub fn method(&self) -> &Method {
        self.inner.method()
    }

    /// The path as the client sent it (with the stage, behind API Gateway's default domain).
    pub fn path(&self) -> &str {
        self.inner.uri().path()
    }

    /// The client's address as API Gateway saw the connection (`requestContext.identity.sourceIp`,
    /// or `requestContext.http.sourceIp` in an HTTP API event). Never a header: `X-Forwarded-For`
    /// and its kin say whatever the client writes.
    pub fn source_ip(&self) -> Option<&str> {
        match self.inner.request_context_ref()? {
            RequestContext::ApiGatewayV1(ctx) => ctx.identity.source_ip.as_deref(),
            RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref(),
            _ => None,
        }
    }

    /// The id of the API key the request was made with (`requestContext.identity.apiKeyId`), when
    /// API Gateway required one.
    pub fn api_key_id(&self) -> Option<&str> {
        match self.inner.request_context_ref()? {
            RequestContext::ApiGatewayV1(ctx) => ctx.identity.api_key_id.as_deref(),
            _ => None,
        }
    }

    /// The client's `Idempotency-Key`, if it sent one ([`crate::idempotency`]); a 422 field error
    /// naming the header for a malformed or repeated one.
    pub fn idempotency_key(&self) -> Result<Option<IdempotencyKey>, FieldError> {
        IdempotencyKey::from_header_values(
            self.inner
                .headers()
                .get_all(crate::idempotency::HEADER)
                .iter()
                .map(http::HeaderValue::as_bytes),
        )
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.headers().get(name)?.to_str().ok()
    }

    /// A path parameter. API Gateway fills path parameters; when a local tool does not, the value is
    /// taken from the path by matching this function's route template.
    pub fn path_param(&self, name: &str) -> Option<String> {
        if let Some(value) = self
            .inner
            .path_parameters_ref()
            .and_then(|params| params.first(name))
        {
            return Some(value.to_owned());
        }
        self.invocation
            .route
            .param_from_path(self.inner.uri().path(), name)
            .map(percent_decode)
    }

    /// The token of an `Authorization: Bearer <token>` header. The scheme is case-insensitive.
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self.header(header::AUTHORIZATION.as_str())?;
        let (scheme, token) = value.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }

    /// The body as a JSON object, after the checks every body goes through, in this order: at most
    /// [`MAX_BODY_BYTES`] (413), a JSON content type (415), valid JSON whose top level is an object
    /// (422).
    pub fn json_object(&self) -> Result<JsonObject, ApiError> {
        let bytes: &[u8] = match self.inner.body() {
            Body::Empty => &[],
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => &[],
        };
        if bytes.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        if !self.header("content-type").is_some_and(is_json_media_type) {
            return Err(ApiError::UnsupportedMediaType);
        }
        JsonObject::parse(bytes)
    }
}

/// `application/json`, `application/json; charset=utf-8`, or any `application/*+json`.
fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Decodes `%XX` escapes (percent-encoding's decoder); a malformed escape is kept as is (it then
/// fails validation as an id), and bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET_USER: Route = Route::new("GET", "/users/{id}");

    #[test]
    fn path_params_are_matched_from_the_end() {
        for (path, expected) in [
            ("/users/abc", Some("abc")),
            ("/prod/users/abc", Some("abc")),
            ("/lambda-url/get_user/users/abc", Some("abc")),
            ("/users/", None),
            ("/users", None),
            ("/accounts/abc", None),
        ] {
            assert_eq!(GET_USER.param_from_path(path, "id"), expected, "{path}");
        }
    }

    #[test]
    fn json_media_types() {
        for (value, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/problem+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
            ("", false),
            ("application/jsonp", false),
        ] {
            assert_eq!(is_json_media_type(value), ok, "{value}");
        }
    }

    #[test]
    fn only_future_deadlines_are_kept() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(
            plausible_deadline(600_000, now),
            None,
            "cargo lambda watch's value"
        );
        assert_eq!(plausible_deadline(0, now), None);
        let later = 1_800_000_003_000;
        assert_eq!(
            plausible_deadline(later, now),
            Some(SystemTime::UNIX_EPOCH + Duration::from_millis(later))
        );
    }

    #[test]
    fn request_ids_from_outside_are_checked() {
        assert!(is_plausible_id("c6af9ac6-7b61-11e6-9a41-93e8deadbeef"));
        assert!(!is_plausible_id("a\nb"));
        assert!(!is_plausible_id(""));
        assert!(!is_plausible_id(&"a".repeat(129)));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%E2%82%AC%ff"), "€\u{fffd}");
    }
}
