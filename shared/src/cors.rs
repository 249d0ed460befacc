//! CORS, so that a browser page on another origin can read every answer (successes and errors
//! alike, the `detail` of an error and its `x-request-id` included).
//!
//! The headers come from tower-http's [`CorsLayer`] around the function's service (see
//! [`crate::runtime::service`]); this module only reads the allowed origins and configures it:
//!
//! - `CORS_ALLOW_ORIGINS` is a comma-separated list of exact origins (`https://app.example.com`).
//!   Empty or unset: no layer, so no CORS header on any response. An origin on the list is echoed
//!   in `Access-Control-Allow-Origin`; any other gets no allow header, so the browser refuses to
//!   hand the response to the page. Answers carry `Vary: origin` (and the preflight request
//!   headers) because they depend on it.
//! - For local development only, a port may be `*` (`http://localhost:*`): that scheme and host on
//!   any port, since a frontend dev server picks its own. template.yaml refuses `*` for a deploy.
//! - Bearer tokens, not cookies: never `Access-Control-Allow-Credentials`.
//!
//! Preflights (`OPTIONS`) are answered by API Gateway itself (template.yaml) and, under `make dev`,
//! by the dev gateway; a function that is handed one anyway answers it the same way, through the
//! layer, without running the handler.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The environment variable holding the allowed origins.
pub const ALLOW_ORIGINS_ENV: &str = "CORS_ALLOW_ORIGINS";

/// Response headers a browser page may read besides the CORS-safelisted ones. Each one is part of
/// the contract: the request id of every answer, `Retry-After` on 429 and 503, `Location` after a
/// sign-up, the bearer challenge on 401, and the replay marker of an idempotent retry.
pub const EXPOSED_HEADERS: [&str; 5] = [
    "x-request-id",
    "retry-after",
    "location",
    "www-authenticate",
    "idempotent-replayed",
];

/// Request headers a page may send (the answer to a preflight's `Access-Control-Request-Headers`).
pub const ALLOWED_REQUEST_HEADERS: [&str; 4] = [
    "content-type",
    "authorization",
    "x-api-key",
    "idempotency-key",
];

/// How long a browser may cache a preflight's answer.
pub const MAX_AGE: Duration = Duration::from_secs(600);

/// An entry of `CORS_ALLOW_ORIGINS` that is not an origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{ALLOW_ORIGINS_ENV}: {entry:?} is not an origin: expected scheme://host[:port] with scheme \
     http or https, lowercase, without a path or a trailing slash (a port of * means any port)"
)]
pub struct InvalidOrigin {
    /// The refused entry, as configured.
    pub entry: String,
}

/// The allowed origins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    /// Exact origins, as browsers send them.
    exact: Vec<String>,
    /// `scheme://host:` prefixes of the entries whose port is `*`.
    any_port: Vec<String>,
}

impl AllowedOrigins {
    /// Parses a comma-separated list; blank entries are ignored. On error, the returned
    /// [`AllowedOrigins`] holds the valid entries, so that even the 500s a misconfigured function
    /// answers with stay readable by the pages that are allowed.
    pub fn parse(list: &str) -> (Self, Vec<InvalidOrigin>) {
        let mut origins = Self::default();
        let mut invalid = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match parse_origin(entry) {
                Some(Entry::Exact) => origins.exact.push(entry.to_owned()),
                Some(Entry::AnyPort(prefix)) => origins.any_port.push(prefix),
                None => invalid.push(InvalidOrigin {
                    entry: entry.to_owned(),
                }),
            }
        }
        (origins, invalid)
    }

    /// No origin is allowed: no CORS headers at all.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.any_port.is_empty()
    }

    /// Whether a request's `Origin` is allowed.
    pub fn allows(&self, origin: &[u8]) -> bool {
        let Ok(origin) = std::str::from_utf8(origin) else {
            return false;
        };
        self.exact.iter().any(|o| o == origin)
            || self
                .any_port
                .iter()
                .any(|prefix| origin.strip_prefix(prefix.as_str()).is_some_and(is_port))
    }

    /// The layer that adds the headers, or `None` when no origin is allowed. `method` is the one
    /// method the function serves, what a preflight that reaches it is told.
    pub fn layer(&self, method: Method) -> Option<CorsLayer> {
        if self.is_empty() {
            return None;
        }
        let origins = self.clone();
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                    origins.allows(origin.as_bytes())
                }))
                .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
                .allow_headers(ALLOWED_REQUEST_HEADERS.map(HeaderName::from_static))
                .allow_methods(method)
                .max_age(MAX_AGE),
        )
    }
}

enum Entry {
    Exact,
    AnyPort(String),
}

/// `scheme://host[:port]` as a browser serialises an origin: lowercase, no path, no userinfo. Hosts
/// are names or IPv4 addresses (an IPv6 literal is not supported).
fn parse_origin(entry: &str) -> Option<Entry> {
    let (scheme, rest) = entry.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let (host, port) = match rest.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'));
    if !host_ok {
        return None;
    }
    match port {
        None => Some(Entry::Exact),
        Some("*") => Some(Entry::AnyPort(format!("{scheme}://{host}:"))),
        Some(port) if is_port(port) => Some(Entry::Exact),
        Some(_) => None,
    }
}

fn is_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_list_allows_exactly_its_origins() {
        let (origins, invalid) =
            AllowedOrigins::parse(" https://app.example.com , http://127.0.0.1:5173,");
        assert!(invalid.is_empty(), "{invalid:?}");
        for (origin, allowed) in [
            ("https://app.example.com", true),
            ("http://127.0.0.1:5173", true),
            ("http://app.example.com", false),
            ("https://app.example.com:443", false),
            ("https://app.example.com.evil.test", false),
            ("https://evil.test", false),
            ("http://127.0.0.1:5174", false),
            ("null", false),
            ("", false),
        ] {
            assert_eq!(origins.allows(origin.as_bytes()), allowed, "{origin}");
        }
    }

    #[test]
    fn a_star_port_allows_that_host_on_any_port_only() {
        let (origins, invalid) = AllowedOrigins::parse("http://localhost:*");
        assert!(invalid.is_empty());
        for (origin, allowed) in [
            ("http://localhost:3000", true),
            ("http://localhost:65535", true),
            ("http://localhost", false),
            ("http://localhost:", false),
            ("http://localhost:3000/", false),
            ("http://localhost:3000.evil.test", false),
            ("https://localhost:3000", false),
            ("http://localhost.evil.test:3000", false),
        ] {
            assert_eq!(origins.allows(origin.as_bytes()), allowed, "{origin}");
        }
    }

    #[test]
    fn entries_that_are_not_origins_are_refused_and_named() {
        for entry in [
            "*",
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://App.example.com",
            "ftp://example.com",
            "https://*.example.com",
            "https://example.com:80x",
            "https://user@example.com",
        ] {
            let (origins, invalid) =
                AllowedOrigins::parse(&format!("https://ok.example.com,{entry}"));
            assert_eq!(
                invalid,
                vec![InvalidOrigin {
                    entry: entry.to_owned()
                }],
                "{entry}"
            );
            assert!(
                origins.allows(b"https://ok.example.com"),
                "the valid entries are kept"
            );
        }
    }

    #[test]
    fn an_empty_list_means_no_layer() {
        for list in ["", " ", ",,"] {
            let (origins, invalid) = AllowedOrigins::parse(list);
            assert!(
                invalid.is_empty() && origins.is_empty() && origins.layer(Method::GET).is_none()
            );
        }
    }
}
