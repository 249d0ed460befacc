#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::run(
        env!("CARGO_PKG_NAME"),
        delete_user::ROUTE,
        delete_user::handle,
    )
    .await
}
