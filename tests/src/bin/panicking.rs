//! A test-only function: it panics on every request, so the tests can see what a panic becomes
//! through the real runtime (a 500 in the contract shape, one log line, one Sentry event, one EMF
//! document).

use std::sync::Arc;

use shared::{ApiRequest, App, HandlerResult, Route};

async fn handle(_app: Arc<App>, request: ApiRequest) -> HandlerResult {
    panic!("test-only panic while serving {}", request.path());
}

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::run("panicking", Route::new("GET", "/health"), handle).await
}
