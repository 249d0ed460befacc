#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::run(env!("CARGO_PKG_NAME"), health::ROUTE, health::handle).await
}
