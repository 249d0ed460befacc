#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::run(env!("CARGO_PKG_NAME"), get_user::ROUTE, get_user::handle).await
}
