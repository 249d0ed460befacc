//! `GET /health`: a cheap read of the table, one attempt within a short timeout, no retries,
//! reused per process for a few seconds ([`shared::health`]). 200 with each check's status and
//! latency, or 503 in the contract shape with the same checks.

use std::sync::Arc;

use serde::Serialize;
use shared::{ApiRequest, App, HandlerResult, Route, StatusCode, health::Checks, response};

/// The route this function serves.
pub const ROUTE: Route = Route::new("GET", "/health");

#[derive(Debug, Serialize)]
struct Healthy {
    status: &'static str,
    checks: Checks,
    version: &'static str,
}

/// Checks DynamoDB, or reuses this process's last check if it is recent.
pub async fn handle(app: Arc<App>, _req: ApiRequest) -> HandlerResult {
    let checks = app.health.check(&app.store).await.into_result()?;
    Ok(response::json(
        StatusCode::OK,
        &Healthy {
            status: "ok",
            checks,
            version: app.config.version,
        },
    ))
}
