//! What a handler gets besides its request: the configuration, the store and the password hasher,
//! all built once per cold start.

use std::time::Duration;

use crate::{
    config::Config,
    domain::PasswordHasher,
    health::Health,
    store::{ConnectOptions, Opened, Store},
};

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

    /// An app whose DynamoDB client is made, and its first connection opened, on a background
    /// task started now ([`Store::connect`]), so that start-up itself waits for none of it; `opened`
    /// is told what that took. Needs a Tokio runtime.
    pub fn connect(config: Config, opened: impl FnOnce(Opened) + Send + 'static) -> Self {
        let options = ConnectOptions {
            // The SDK keeps a connect timeout, so an unreachable endpoint fails fast rather than
            // at the attempt timeout; the pre-open request has the same bound.
            connect_timeout: config.retry.attempt_timeout.min(Duration::from_secs(1)),
            preopen: config.dynamodb_preopen,
        };
        let store = Store::connect(options, config.table_name.clone(), opened);
        Self::new(config, store)
    }
}
