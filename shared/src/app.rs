//! What a handler gets besides its request: the configuration, the store and the password hasher,
//! all built once per cold start.

use std::time::Duration;

use aws_config::{BehaviorVersion, retry::RetryConfig, timeout::TimeoutConfig};

use crate::{config::Config, domain::PasswordHasher, health::Health, store::Store};

/// Shared, read-only state of one function instance.
#[derive(Debug, Clone)]
pub struct App {
    /// Where the function runs.
    pub config: Config,
    /// The DynamoDB table.
    pub store: Store,
    /// Argon2id on blocking threads.
    pub passwords: PasswordHasher,
    /// The last health check's outcome, shared by this process's requests.
    pub health: Health,
}

impl App {
    /// An app over an existing store (tests build theirs against the local server). The store gets
    /// `config.retry` and a fresh retry budget.
    pub fn new(config: Config, store: Store) -> Self {
        let store = store.with_retry_policy(config.retry.clone());
        Self {
            config,
            store,
            passwords: PasswordHasher::default(),
            health: Health::default(),
        }
    }

    /// Builds the SDK client for `config` (its credentials, region and the standard
    /// `AWS_ENDPOINT_URL_DYNAMODB`, which points it at a local server, are the SDK's own to read).
    ///
    /// The SDK's own retries are off: the store's retry policy is the only layer (see
    /// [`crate::store::retry`]), and its per-attempt timeout bounds each call. The SDK keeps a
    /// connect timeout, so an unreachable endpoint fails fast rather than at the attempt timeout.
    pub async fn connect(config: Config) -> Self {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.retry.attempt_timeout.min(Duration::from_secs(1)))
                    .build(),
            )
            .load()
            .await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let store = Store::new(client, config.table_name.clone());
        Self::new(config, store)
    }
}
