//! Configuration read from the environment once per cold start.

use crate::{error::BoxError, store::RetryPolicy};

/// What a function needs to know about where it runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The DynamoDB table (`TABLE_NAME`, required).
    pub table_name: String,
    /// The service name used in logs and metrics (`SERVICE_NAME`, default `users-api`).
    pub service: String,
    /// The deployment stage (`STAGE`, default `local`).
    pub stage: String,
    /// The code's version, from Cargo.
    pub version: &'static str,
    /// How DynamoDB calls are retried (`DYNAMODB_*`, `DEADLINE_MARGIN_MS`; see
    /// [`crate::store::retry`]).
    pub retry: RetryPolicy,
}

impl Config {
    /// Reads the environment. Fails when `TABLE_NAME` is missing or empty, or a retry setting is
    /// set but invalid.
    pub fn from_env() -> Result<Self, BoxError> {
        let table_name = std::env::var("TABLE_NAME")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or("TABLE_NAME is not set: the function does not know its DynamoDB table")?;
        Ok(Self {
            table_name,
            service: env_or("SERVICE_NAME", "users-api"),
            stage: env_or("STAGE", "local"),
            version: env!("CARGO_PKG_VERSION"),
            retry: RetryPolicy::from_env()?,
        })
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}
