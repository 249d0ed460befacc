//! The baseline: the smallest lambda_http function that answers like `create_user` does on its
//! no-DB path (a 422 in the contract shape, with its headers), with no telemetry and no shared
//! crate. What the functions cost beyond this is the cost of the stack they share.

use lambda_http::{Body, Error, Request, RequestExt as _, Response, service_fn};

async fn handle(request: Request) -> Result<Response<Body>, Error> {
    let request_id = request.lambda_context().request_id;
    let body = serde_json::json!({
        "detail": "Request validation failed",
        "status": 422,
        "code": "validation_error",
        "request_id": request_id,
        "errors": [
            {"field": "/email", "message": "must be a valid email address"},
            {"field": "/name", "message": "must not be empty"},
            {"field": "/password", "message": "must be at least 8 characters"},
        ],
    });
    Ok(Response::builder()
        .status(422)
        .header("content-type", "application/json")
        .header("x-request-id", request_id)
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Body::Text(body.to_string()))?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(handle)).await
}
