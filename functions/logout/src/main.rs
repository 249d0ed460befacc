#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::run(env!("CARGO_PKG_NAME"), logout::ROUTE, logout::handle).await
}
