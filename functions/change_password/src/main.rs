#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::run(
        env!("CARGO_PKG_NAME"),
        change_password::ROUTE,
        change_password::handle,
    )
    .await
}
