#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::run(
        env!("CARGO_PKG_NAME"),
        update_user::ROUTE,
        update_user::handle,
    )
    .await
}
