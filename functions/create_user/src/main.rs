#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::run(
        env!("CARGO_PKG_NAME"),
        create_user::ROUTE,
        create_user::handle,
    )
    .await
}
