//! The health check `/health` answers with: DynamoDB read once within [`CHECK_TIMEOUT`], the
//! outcome kept per process for [`CACHE_TTL`], typed checks, and the failure kept as the error it
//! was (so its cause chain reaches the logs and Sentry).
//!
//! The cache means a burst of health checks (load balancers, monitors, a dashboard left open)
//! reads the table once, and a failing table is not hammered. Checks run one at a time: a check
//! that finds a fresh report uses it, one that does not makes the read while the others wait.

use std::{sync::Arc, time::Duration};

use serde::Serialize;
use tokio::{sync::Mutex, time::Instant};

use crate::{
    error::ApiError,
    store::{Store, StoreError},
};

/// How long the DynamoDB check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a check's outcome is reused by the same process.
pub const CACHE_TTL: Duration = Duration::from_secs(3);

/// One dependency's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It answered in time.
    Ok,
    /// It failed or did not answer in time.
    Error,
}

/// One dependency's check, as `/health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Whether it passed.
    pub status: Status,
    /// How long it took.
    pub latency_ms: u64,
}

/// Every dependency's check, by name: the `checks` of `/health`'s answer, 200 or 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Checks {
    /// The table, read with an eventually consistent GetItem of a key no item has.
    pub dynamodb: Check,
}

/// The outcome of one health check.
#[derive(Debug, Clone)]
pub struct Report {
    at: Instant,
    /// Each dependency's check.
    pub checks: Checks,
    /// Why the DynamoDB check failed, if it did.
    pub failure: Option<Arc<StoreError>>,
}

impl Report {
    /// The checks when every one passed; else the 503 in the contract shape, with the checks and
    /// the failure as its source.
    pub fn into_result(self) -> Result<Checks, ApiError> {
        match self.failure {
            None => Ok(self.checks),
            Some(source) => Err(ApiError::Unhealthy {
                checks: self.checks,
                source,
            }),
        }
    }
}

/// The last health check of this process (of its [`crate::App`]). Cheap to clone; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<Mutex<Option<Report>>>);

impl Health {
    /// The last report if it is younger than [`CACHE_TTL`], else a new check of `store`.
    pub async fn check(&self, store: &Store) -> Report {
        self.report_or(CACHE_TTL, || async {
            let started = Instant::now();
            let outcome = store.ping(CHECK_TIMEOUT).await;
            let check = |status| Check {
                status,
                latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            };
            let (dynamodb, failure) = match outcome {
                Ok(()) => (check(Status::Ok), None),
                Err(err) => (check(Status::Error), Some(Arc::new(err))),
            };
            Report {
                at: Instant::now(),
                checks: Checks { dynamodb },
                failure,
            }
        })
        .await
    }

    async fn report_or<Fut>(&self, ttl: Duration, check: impl FnOnce() -> Fut) -> Report
    where
        Fut: Future<Output = Report>,
    {
        let mut last = self.0.lock().await;
        if let Some(report) = last.as_ref().filter(|r| r.at.elapsed() < ttl) {
            return report.clone();
        }
        let report = check().await;
        *last = Some(report.clone());
        report
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn report(status: Status) -> Report {
        Report {
            at: Instant::now(),
            checks: Checks {
                dynamodb: Check {
                    status,
                    latency_ms: 3,
                },
            },
            failure: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_report_is_reused_for_the_ttl_then_checked_again() {
        let health = Health::default();
        let checks = AtomicU32::new(0);
        let check = || async {
            checks.fetch_add(1, Ordering::SeqCst);
            report(Status::Ok)
        };
        health.report_or(CACHE_TTL, check).await;
        health.report_or(CACHE_TTL, check).await;
        assert_eq!(checks.load(Ordering::SeqCst), 1, "within the TTL");
        tokio::time::advance(CACHE_TTL).await;
        health.report_or(CACHE_TTL, check).await;
        assert_eq!(checks.load(Ordering::SeqCst), 2, "after the TTL");
    }

    #[test]
    fn checks_serialise_as_the_contract_says() {
        let json = serde_json::to_value(report(Status::Error).checks).ok();
        assert_eq!(
            json,
            Some(serde_json::json!({"dynamodb": {"status": "error", "latency_ms": 3}}))
        );
    }
}
