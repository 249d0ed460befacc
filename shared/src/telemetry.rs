//! Logs: JSON inside Lambda, pretty elsewhere, one env var switches.

use tracing_subscriber::{EnvFilter, fmt};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object a line, for CloudWatch Logs Insights.
    Json,
    /// Human-readable and coloured, for a terminal.
    Pretty,
}

impl LogFormat {
    /// `LOG_FORMAT=json|pretty`; without it, JSON inside Lambda (or when Lambda's own log format is
    /// JSON) and pretty elsewhere.
    pub fn from_env() -> Self {
        match std::env::var("LOG_FORMAT").map(|v| v.to_ascii_lowercase()) {
            Ok(v) if v == "json" => Self::Json,
            Ok(v) if v == "pretty" => Self::Pretty,
            _ if std::env::var("AWS_LAMBDA_LOG_FORMAT")
                .is_ok_and(|v| v.eq_ignore_ascii_case("json")) =>
            {
                Self::Json
            }
            _ if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
                && std::env::var_os("CARGO_LAMBDA_VERSION").is_none() =>
            {
                Self::Json
            }
            _ => Self::Pretty,
        }
    }
}

/// The level filter: `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, then `info`.
pub fn filter_from_env() -> EnvFilter {
    let directive = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|level| match level.to_ascii_lowercase().as_str() {
            "fatal" => "error".to_owned(),
            other => other.to_owned(),
        })
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the global subscriber; a second call does nothing.
pub fn init() {
    let builder = fmt().with_env_filter(filter_from_env());
    let _ = match LogFormat::from_env() {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.pretty().try_init(),
    };
}
