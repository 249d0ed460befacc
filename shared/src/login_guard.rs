//! The login limits ([`crate::domain::login_limit`]) around a password check: reserve the attempt
//! before the hash, then count a failure or clear the pair after it. Every place that checks a
//! password someone types (login, a password change) goes through [`LoginAttempt`], so the
//! limits, their refusals and their logs are the same everywhere.

use chrono::{DateTime, Utc};
use tracing::Instrument as _;

use crate::{
    ApiError,
    domain::{ClientAddress, Email, Limit, LoginCounters, LoginLimit},
    metric,
    store::{Deadline, Store, StoreError},
    telemetry::xray,
};

/// An attempt that passed the limits: its password may be checked now.
#[derive(Debug)]
pub struct LoginAttempt {
    counters: LoginCounters,
    address: ClientAddress,
    now: DateTime<Utc>,
}

impl LoginAttempt {
    /// Reserves an attempt for `email` from `source_ip` (API Gateway's `sourceIp`), or refuses
    /// it with a 429 whose `Retry-After` runs to the window's end. The same calls, in the same
    /// order, for known and unknown emails.
    pub async fn reserve(
        store: &Store,
        email: &Email,
        source_ip: Option<&str>,
        deadline: Deadline,
    ) -> Result<Self, ApiError> {
        // The time spent on the limits is its own subsegment in X-Ray, the counters' DynamoDB
        // calls inside it.
        Self::check_limits(store, email, source_ip, deadline)
            .instrument(xray::work("login limit"))
            .await
    }

    async fn check_limits(
        store: &Store,
        email: &Email,
        source_ip: Option<&str>,
        deadline: Deadline,
    ) -> Result<Self, ApiError> {
        let now = Utc::now();
        let address = ClientAddress::from_source_ip(source_ip);
        let counters = LoginCounters::new(email, &address, now);
        let window = counters.window;
        let refuse = |limit: Limit| {
            let retry_after = window.retry_after(now);
            crate::telemetry::annotate("limit", limit.as_str());
            ApiError::TooManyAttempts { retry_after }
        };
        let address_failures = store
            .login_failures(&counters.address, window, deadline)
            .await?;
        if address_failures >= LoginLimit::PER_ADDRESS_FAILURES {
            return Err(refuse(Limit::Address));
        }
        let pair_limit = Some(LoginLimit::PER_PAIR);
        if !store
            .reserve_login_attempt(&counters.pair, window, pair_limit, deadline)
            .await?
        {
            return Err(refuse(Limit::Pair));
        }
        let email_limit = Some(LoginLimit::PER_EMAIL);
        if !store
            .reserve_login_attempt(&counters.email, window, email_limit, deadline)
            .await?
            // At the ceiling, a pair that signed in before may still try (uncounted: the count only
            // matters up to the ceiling). Read only here, so every other path makes the same calls.
            && !store.login_trusted(&counters.pair, now, deadline).await?
        {
            return Err(refuse(Limit::Email));
        }
        Ok(Self {
            counters,
            address,
            now,
        })
    }

    /// The password was wrong (or the email unknown): counts the failure on the address, with the
    /// spraying WARN once the address meets its threshold, and the `LoginFailures` metric.
    pub async fn failed(&self, store: &Store, deadline: Deadline) -> Result<u32, StoreError> {
        metric::LOGIN_FAILURES.count(1);
        let failures = store
            .count_login_failure(&self.counters.address, self.counters.window, deadline)
            .await?;
        if failures == LoginLimit::PER_ADDRESS_FAILURES {
            // Once per address and window; no email: they may be many people's.
            tracing::warn!(
                source_ip = self.address.as_str(),
                failures,
                window_s = LoginLimit::WINDOW.as_secs(),
                "password spraying suspected: this address is refused logins until the window ends"
            );
        }
        Ok(failures)
    }

    /// The password was right: clears the pair's counter and marks the pair trusted.
    pub async fn succeeded(&self, store: &Store, deadline: Deadline) -> Result<(), StoreError> {
        store
            .login_succeeded(
                &self.counters.pair,
                self.counters.window,
                self.now,
                deadline,
            )
            .await
    }
}
