//! What a handler gets besides its request: the configuration, the store and the password hasher,
//! all built once per cold start.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use aws_config::{BehaviorVersion, retry::RetryConfig, timeout::TimeoutConfig};

use crate::{config::Config, domain::PasswordHasher, error::BoxError, store::Store};

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
    pub health: HealthCache,
}

/// The outcome of one health check of DynamoDB.
#[derive(Debug, Clone)]
pub struct HealthSnapshot {
    /// When the check ended.
    pub at: Instant,
    /// How long it took.
    pub latency_ms: u64,
    /// Why it failed, if it did (for the logs).
    pub error: Option<Arc<str>>,
}

/// The last health check, per process (per [`App`]), so a burst of health checks reads the table
/// once. Checks run one at a time: a check that finds a fresh snapshot uses it, one that does not
/// makes the read while the others wait for it.
#[derive(Debug, Clone, Default)]
pub struct HealthCache(Arc<tokio::sync::Mutex<Option<HealthSnapshot>>>);

impl HealthCache {
    /// The snapshot if it is younger than `ttl`, else the outcome of `check`, remembered.
    pub async fn get_or_check<F, Fut>(&self, ttl: Duration, check: F) -> HealthSnapshot
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = HealthSnapshot>,
    {
        let mut last = self.0.lock().await;
        if let Some(snapshot) = last.as_ref().filter(|s| s.at.elapsed() < ttl) {
            return snapshot.clone();
        }
        let snapshot = check().await;
        *last = Some(snapshot.clone());
        snapshot
    }
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
            health: HealthCache::default(),
        }
    }

    /// Reads the configuration and builds the SDK client from the environment. The standard
    /// `AWS_ENDPOINT_URL_DYNAMODB` points it at a local server.
    ///
    /// The SDK's own retries are off: the store's retry policy is the only layer (see
    /// [`crate::store::retry`]), and its per-attempt timeout bounds each call. The SDK keeps a
    /// connect timeout, so an unreachable endpoint fails fast rather than at the attempt timeout.
    pub async fn from_env() -> Result<Self, BoxError> {
        let config = Config::from_env()?;
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
        Ok(Self::new(config, store))
    }
}
