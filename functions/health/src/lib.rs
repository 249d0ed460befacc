//! `GET /health`: a cheap read of the table, one attempt within a short timeout, no retries. 200 with
//! each check's status and latency, or 503 in the contract shape with the same checks.
//!
//! The outcome is kept for [`CACHE_TTL`] per process, so a burst of health checks (load balancers,
//! monitors, a dashboard left open) reads the table once, and a failing table is not hammered.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::json;
use shared::{
    ApiError, ApiRequest, App, HandlerResult, Route, StatusCode, app::HealthSnapshot, response,
};

/// The route this function serves.
pub const ROUTE: Route = Route::new("GET", "/health");

/// How long the DynamoDB check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a check's outcome is reused by the same process.
pub const CACHE_TTL: Duration = Duration::from_secs(3);

/// Checks DynamoDB, or reuses this process's last check if it is recent.
pub async fn handle(app: Arc<App>, _req: ApiRequest) -> HandlerResult {
    let snapshot = app
        .health
        .get_or_check(CACHE_TTL, || async {
            let started = Instant::now();
            let outcome = app.store.ping(CHECK_TIMEOUT).await;
            HealthSnapshot {
                at: Instant::now(),
                latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                error: outcome.err().map(|err| Arc::from(err.to_string())),
            }
        })
        .await;
    let status = if snapshot.error.is_some() {
        "error"
    } else {
        "ok"
    };
    let checks = json!({"dynamodb": {"status": status, "latency_ms": snapshot.latency_ms}});
    match (snapshot.error, checks) {
        (None, checks) => Ok(response::json(
            StatusCode::OK,
            &json!({"status": "ok", "checks": checks, "version": app.config.version}),
        )),
        (Some(error), serde_json::Value::Object(checks)) => Err(ApiError::Unhealthy {
            checks,
            source: error.to_string().into(),
        }),
        (Some(error), _) => Err(ApiError::internal(error.to_string())),
    }
}
