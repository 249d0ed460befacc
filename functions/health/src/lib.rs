//! `GET /health`: a cheap read of the table within a short timeout. 200 with each check's status
//! and latency, or 503 in the contract shape with the same checks.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::json;
use shared::{ApiError, ApiRequest, App, HandlerResult, Route, StatusCode, response};

/// The route this function serves.
pub const ROUTE: Route = Route::new("GET", "/health");

/// How long the DynamoDB check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Checks DynamoDB.
pub async fn handle(app: Arc<App>, _req: ApiRequest) -> HandlerResult {
    let started = Instant::now();
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, app.store.ping(CHECK_TIMEOUT)).await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let failure: Option<shared::BoxError> = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(Box::new(err)),
        Err(elapsed) => {
            Some(format!("DynamoDB check timed out after {CHECK_TIMEOUT:?}: {elapsed}").into())
        }
    };
    let status = if failure.is_some() { "error" } else { "ok" };
    let checks = json!({"dynamodb": {"status": status, "latency_ms": latency_ms}});
    match (failure, checks) {
        (None, checks) => Ok(response::json(
            StatusCode::OK,
            &json!({"status": "ok", "checks": checks, "version": app.config.version}),
        )),
        (Some(source), serde_json::Value::Object(checks)) => {
            Err(ApiError::Unhealthy { checks, source })
        }
        (Some(source), _) => Err(ApiError::Internal(source)),
    }
}
