//! Building responses: JSON bodies with the right content type, and the headers every response carries.

use http::{HeaderName, HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

/// The response header that repeats the error body's `request_id` on every response.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A JSON response with `content-type: application/json`.
///
/// Our bodies are plain structs of strings and numbers; if one ever failed to serialise, the client
/// gets a 500 in the contract shape rather than a panic.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response<Body> {
    let (status, bytes) = match serde_json::to_string(body) {
        Ok(text) => (status, text),
        Err(err) => {
            tracing::error!(error = %err, "response body failed to serialise");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"detail":"Internal server error","status":500,"code":"internal_error","request_id":""}"#
                    .to_owned(),
            )
        }
    };
    let mut response = Response::new(Body::Text(bytes));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, APPLICATION_JSON);
    response
}

/// A 204 No Content: no body, no content type.
pub fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Sets `x-request-id`. An id that is not a valid header value (it never is from API Gateway or
/// Lambda) is left out rather than failing the response.
pub fn set_request_id(response: &mut Response<Body>, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
}

/// Headers every response carries, whatever produced it.
pub(crate) fn set_common_headers(response: &mut Response<Body>, request_id: &str) {
    set_request_id(response, request_id);
    let headers = response.headers_mut();
    // Bodies are JSON with user data or tokens: never cached by a browser or a proxy, never sniffed.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}
