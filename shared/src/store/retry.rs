//! The one retry policy for DynamoDB calls.
//!
//! # One layer, ours
//! The SDK's own retries are turned off (`RetryConfig::disabled()` where the client is built) and
//! every store call goes through [`Retrier::run`]. Retries multiply across layers: with the SDK's
//! three attempts under our three, a persistent 500 was seen to cost nine calls per request, and a
//! throttled table got three times the load it was already refusing. One layer also means one place
//! that knows the invocation's deadline, counts retries and logs them.
//!
//! # What is retried
//! Only [`Fault::Transient`](super::Fault) errors, as classified from the SDK's typed errors in
//! [`super::error`]:
//! throttling (`ThrottlingException`, `ProvisionedThroughputExceededException`,
//! `RequestLimitExceeded`), 5xx, timeouts (the SDK's and our per-attempt timeout), connection
//! errors, and transactions cancelled only by contention (`TransactionConflict`, throttling). Never a
//! failed condition, a validation, access or not-found error: the same call would fail the same way.
//!
//! # How
//! - At most [`RetryPolicy::max_attempts`] attempts (default 3: the first and two retries).
//! - Capped exponential backoff with *full* jitter: before retry `n` (1-based) the wait is uniform in
//!   `[0, min(max, base * 2^(n-1)))`. The schedule comes from tokio-retry2
//!   (`ExponentialFactorBackoff` + `jitter_with_bounds(0, 1)`) and is driven by its `Retry` future.
//!   Full jitter spreads the retries of many clients that failed together, so they do not come back
//!   together.
//! - Each attempt has its own timeout, [`RetryPolicy::attempt_timeout`], cut to the time left.
//! - The overall deadline is the invocation's deadline minus [`RetryPolicy::deadline_margin`]: the
//!   margin is what we keep to render the 503 and hand it back before Lambda ends the invocation.
//!   A sleep is only started if, after it, at least [`MIN_ATTEMPT_TIME`] is left for the attempt it
//!   leads to; an attempt is only started if some time is left at all.
//! - A retry budget per process ([`RetryBudget`]): each retry spends a token, each success gives a
//!   tenth of one back, up to a cap. When DynamoDB browns out, a process soon stops retrying and
//!   fails fast instead of multiplying the load by three.
//!
//! # Defaults (the env var that overrides each, read once per cold start)
//! | setting | env var | default | why |
//! |---|---|---|---|
//! | attempts | `DYNAMODB_MAX_ATTEMPTS` | 3 | two retries absorb a blip; more only adds latency for a user who is waiting |
//! | backoff base | `DYNAMODB_BACKOFF_BASE_MS` | 50 | a DynamoDB call takes a few ms; throttling clears in tens of ms |
//! | backoff cap | `DYNAMODB_BACKOFF_MAX_MS` | 400 | keeps the worst case of all sleeps under half a second |
//! | attempt timeout | `DYNAMODB_ATTEMPT_TIMEOUT_MS` | 1000 | a hundred times a normal call; a hung connection costs one second, not the invocation |
//! | deadline margin | `DEADLINE_MARGIN_MS` | 250 | rendering the 503 and flushing telemetry takes well under that |
//!
//! With the defaults, a request that fails three times costs at most 3 s of attempts plus 150 ms
//! of sleeps, far inside the function's 10 s timeout and API Gateway's 29 s.
//!
//! # What the caller gets
//! On success, the value. On a permanent error, that error after one attempt. When a transient error
//! is given up on (attempts, deadline or budget), the last error, whose `Display` says how many
//! attempts were made and why we stopped ("after 3 attempts (attempts exhausted)"); it becomes a
//! 503 with `Retry-After` through `From<StoreError> for ApiError`.
//!
//! Every attempt's time is recorded as `DynamoDbLatency`, every throttling answer counted as
//! `DynamoDbThrottles`, every retry logged (attempt, error kind, delay) and counted as
//! `DynamoDbRetries`, every give-up on a transient error counted as `DynamoDbRetriesExhausted`.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;
use tokio_retry2::{
    Retry, RetryError,
    strategy::{ExponentialFactorBackoff, jitter_with_bounds},
};

use tracing::Instrument as _;

use super::error::{GaveUp, StoreError};
use crate::{deadline::Deadline, error::BoxError, metric, telemetry::xray};

/// The least time worth giving an attempt: no retry is started with less left before the deadline.
pub const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(100);

/// How DynamoDB calls are retried. Read once per cold start ([`crate::config::Config::retry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (`DYNAMODB_MAX_ATTEMPTS`, 1 to 10).
    pub max_attempts: u32,
    /// The backoff before the first retry is drawn from `[0, base)` (`DYNAMODB_BACKOFF_BASE_MS`).
    pub backoff_base: Duration,
    /// No backoff is drawn from a range wider than this (`DYNAMODB_BACKOFF_MAX_MS`).
    pub backoff_max: Duration,
    /// How long one attempt may take (`DYNAMODB_ATTEMPT_TIMEOUT_MS`).
    pub attempt_timeout: Duration,
    /// Kept free before the invocation's deadline, to answer in (`DEADLINE_MARGIN_MS`).
    pub deadline_margin: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_millis(400),
            attempt_timeout: Duration::from_millis(1000),
            deadline_margin: Duration::from_millis(250),
        }
    }
}

impl RetryPolicy {
    /// The defaults, overridden by the variables `lookup` finds ([`crate::config`] reads them). A
    /// value that is set but not valid is an error (a typo in a tuning knob should be seen at
    /// once, not silently ignored).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, BoxError> {
        let defaults = Self::default();
        let number = |name: &str, default: u64| -> Result<u64, BoxError> {
            match lookup(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{name} must be a whole number, not {v:?}").into()),
            }
        };
        let ms = |name: &str, default: Duration| -> Result<Duration, BoxError> {
            let default = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
            number(name, default).map(Duration::from_millis)
        };
        let max_attempts = number("DYNAMODB_MAX_ATTEMPTS", u64::from(defaults.max_attempts))?;
        let policy = Self {
            max_attempts: u32::try_from(max_attempts)
                .ok()
                .filter(|n| (1..=10).contains(n))
                .ok_or("DYNAMODB_MAX_ATTEMPTS must be between 1 and 10")?,
            backoff_base: ms("DYNAMODB_BACKOFF_BASE_MS", defaults.backoff_base)?,
            backoff_max: ms("DYNAMODB_BACKOFF_MAX_MS", defaults.backoff_max)?,
            attempt_timeout: ms("DYNAMODB_ATTEMPT_TIMEOUT_MS", defaults.attempt_timeout)?,
            deadline_margin: ms("DEADLINE_MARGIN_MS", defaults.deadline_margin)?,
        };
        if policy.attempt_timeout.is_zero() {
            return Err("DYNAMODB_ATTEMPT_TIMEOUT_MS must be above 0".into());
        }
        if policy.backoff_base > policy.backoff_max {
            return Err("DYNAMODB_BACKOFF_BASE_MS must not exceed DYNAMODB_BACKOFF_MAX_MS".into());
        }
        Ok(policy)
    }

    /// One attempt with this timeout, no retry: for checks that must answer fast (`/health`).
    pub fn single_attempt(attempt_timeout: Duration) -> Self {
        Self {
            max_attempts: 1,
            attempt_timeout,
            ..Self::default()
        }
    }

    /// The sleeps before each retry (`max_attempts - 1` of them), full jitter applied.
    pub fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        let base = u64::try_from(self.backoff_base.as_millis()).unwrap_or(u64::MAX);
        ExponentialFactorBackoff::from_millis(base, 2.0)
            .max_delay(self.backoff_max)
            .map(jitter_with_bounds(0.0, 1.0))
            .take(self.max_attempts.saturating_sub(1) as usize)
    }
}

/// Retries spent and earned, per process: a token bucket counted in tenths of a retry.
#[derive(Debug)]
pub struct RetryBudget {
    tenths: AtomicU32,
}

impl RetryBudget {
    /// Retries the bucket holds when full (and at start).
    pub const CAPACITY: u32 = 10;
    /// One retry costs one token.
    const RETRY_COST: u32 = 10;
    /// Each success gives back a tenth of a token.
    const SUCCESS_REFILL: u32 = 1;

    /// A full bucket.
    pub fn new() -> Self {
        Self {
            tenths: AtomicU32::new(Self::CAPACITY * 10),
        }
    }

    /// Takes a token for one retry; false when the bucket is empty.
    pub fn try_spend(&self) -> bool {
        self.tenths
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                t.checked_sub(Self::RETRY_COST)
            })
            .is_ok()
    }

    /// A call succeeded: a tenth of a token back, up to the capacity.
    pub fn refill(&self) {
        let _ = self
            .tenths
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                (t < Self::CAPACITY * 10)
                    .then(|| (t + Self::SUCCESS_REFILL).min(Self::CAPACITY * 10))
            });
    }

    /// Whole retries left.
    pub fn available(&self) -> u32 {
        self.tenths.load(Ordering::Acquire) / Self::RETRY_COST
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self::new()
    }
}

/// A policy and its process-wide budget. Cheap to clone; clones share the budget.
#[derive(Debug, Clone, Default)]
pub struct Retrier {
    policy: RetryPolicy,
    budget: Arc<RetryBudget>,
    /// The table, for each attempt's X-Ray subsegment.
    table: Arc<str>,
}

impl Retrier {
    /// `policy` with a full budget of its own.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            budget: Arc::new(RetryBudget::new()),
            table: Arc::from(""),
        }
    }

    /// This retrier, its attempts' subsegments naming `table`.
    pub fn for_table(mut self, table: &str) -> Self {
        self.table = Arc::from(table);
        self
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The budget.
    pub fn budget(&self) -> &RetryBudget {
        &self.budget
    }

    /// Runs `attempt` until it succeeds, fails permanently, or a transient failure is given up on
    /// (see the module doc). `attempt` is called once per attempt and must build its request anew
    /// each time, with the same idempotency token if it has one.
    pub async fn run<T, F, Fut>(
        &self,
        operation: &'static str,
        deadline: Deadline,
        mut attempt: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let delays: Vec<Duration> = self.policy.backoff().collect();
        let end = deadline.minus(self.policy.deadline_margin).instant();
        let mut made = 0_u32;
        // The action decides, after each failure, whether there will be a retry; the strategy then
        // yields exactly the delay the action planned (the n-th), since tokio-retry2 consults it
        // only after a transient error.
        let action = || {
            made += 1;
            let n = made;
            let next_delay = delays.get(n as usize - 1).copied();
            let call = attempt();
            self.attempt(operation, n, next_delay, end, call)
        };
        Retry::spawn(delays.clone(), action).await
    }

    async fn attempt<T>(
        &self,
        operation: &'static str,
        n: u32,
        next_delay: Option<Duration>,
        end: Option<Instant>,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, RetryError<StoreError>> {
        let started = Instant::now();
        let timeout = match end {
            Some(end) => {
                let left = end.saturating_duration_since(started);
                if left.is_zero() {
                    // Only a first attempt can get here: retries check the deadline before sleeping.
                    metric::DYNAMODB_RETRIES_EXHAUSTED.count(1);
                    return Err(RetryError::permanent(
                        StoreError::deadline(operation).gave_up(n - 1, GaveUp::Deadline),
                    ));
                }
                self.policy.attempt_timeout.min(left)
            }
            None => self.policy.attempt_timeout,
        };
        let trace = xray::dynamodb_attempt(operation, &self.table, n);
        let outcome = tokio::time::timeout(timeout, call)
            .instrument(trace.clone())
            .await;
        metric::DYNAMODB_LATENCY.record(started.elapsed().as_secs_f64() * 1000.0);
        let err = match outcome {
            Ok(Ok(value)) => {
                self.budget.refill();
                xray::record_attempt(&trace, "ok", None, None);
                return Ok(value);
            }
            Ok(Err(err)) => err,
            Err(_) => StoreError::timeout(operation, timeout),
        };
        if err.is_throttle() {
            metric::DYNAMODB_THROTTLES.count(1);
        }
        if !err.is_transient() {
            xray::record_attempt(&trace, "failed", Some(err.kind.as_str()), None);
            return Err(RetryError::permanent(err.after(n)));
        }
        let give_up = match next_delay {
            None => Some(GaveUp::Attempts),
            Some(delay)
                if end.is_some_and(|end| Instant::now() + delay + MIN_ATTEMPT_TIME > end) =>
            {
                Some(GaveUp::Deadline)
            }
            Some(_) if !self.budget.try_spend() => Some(GaveUp::Budget),
            Some(_) => None,
        };
        match (give_up, next_delay) {
            (None, Some(delay)) => {
                metric::DYNAMODB_RETRIES.count(1);
                xray::record_attempt(&trace, "retried", Some(err.kind.as_str()), Some(delay));
                // DEBUG: the access line already counts it (`DynamoDbRetries`,
                // `DynamoDbThrottles`) and the trace shows each attempt; a line per retry would
                // multiply the log bytes exactly when DynamoDB is struggling.
                tracing::debug!(
                    operation,
                    attempt = n,
                    error.kind = err.kind.as_str(),
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    error = %err,
                    "DynamoDB call failed; retrying"
                );
                Err(RetryError::transient(err))
            }
            (reason, _) => {
                let reason = reason.unwrap_or(GaveUp::Attempts);
                metric::DYNAMODB_RETRIES_EXHAUSTED.count(1);
                xray::record_attempt(&trace, "failed", Some(err.kind.as_str()), None);
                // DEBUG: the error says it ("after 3 attempts (attempts exhausted)") on the 5xx's
                // one error line, and `DynamoDbRetriesExhausted` counts it.
                tracing::debug!(
                    operation,
                    attempt = n,
                    error.kind = err.kind.as_str(),
                    reason = reason.as_str(),
                    "DynamoDB call failed; giving up"
                );
                Err(RetryError::permanent(err.gave_up(n, reason)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::store::{ErrorKind, Fault};

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    fn transient() -> StoreError {
        StoreError::transient_for_tests("GetItem test", ErrorKind::InternalServerError)
    }

    fn throttled() -> StoreError {
        StoreError::transient_for_tests("GetItem test", ErrorKind::Throttling)
    }

    fn permanent() -> StoreError {
        StoreError::permanent("GetItem test", ErrorKind::Other, "bad key")
    }

    /// Runs `run` with attempts that fail with `fail(n)` (`None`: succeed), recording when each
    /// attempt started, relative to the start.
    async fn drive(
        retrier: &Retrier,
        deadline: Deadline,
        fail: impl Fn(u32) -> Option<StoreError>,
        hang: bool,
    ) -> (Result<u32, StoreError>, Vec<Duration>) {
        let start = Instant::now();
        let calls = AtomicU32::new(0);
        let starts = std::sync::Mutex::new(Vec::new());
        let result = retrier
            .run("GetItem test", deadline, || {
                // Like the SDK's `send()`, nothing happens until the future is polled.
                let (calls, starts, fail) = (&calls, &starts, &fail);
                async move {
                    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    starts.lock().unwrap().push(start.elapsed());
                    let outcome = fail(n);
                    if hang {
                        std::future::pending::<()>().await;
                    }
                    match outcome {
                        Some(err) => Err(err),
                        None => Ok(n),
                    }
                }
            })
            .await;
        (result, starts.into_inner().unwrap())
    }

    #[test]
    fn backoff_is_capped_exponential_with_full_jitter() {
        let policy = RetryPolicy {
            max_attempts: 6,
            ..policy()
        };
        for _ in 0..200 {
            let delays: Vec<Duration> = policy.backoff().collect();
            assert_eq!(delays.len(), 5, "one sleep before each retry");
            for (i, delay) in delays.iter().enumerate() {
                let ceiling = (policy.backoff_base * 2_u32.pow(i as u32)).min(policy.backoff_max);
                assert!(*delay <= ceiling, "retry {i}: {delay:?} > {ceiling:?}");
            }
        }
        // Full jitter: small delays happen (not the "equal jitter" floor of half the range).
        let smallest = (0..200)
            .filter_map(|_| policy.backoff().next())
            .min()
            .unwrap();
        assert!(smallest < policy.backoff_base / 4, "{smallest:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_error_then_success_is_retried() {
        let retrier = Retrier::default();
        let (result, starts) = drive(
            &retrier,
            Deadline::after(Duration::from_secs(10)),
            |n| (n == 1).then(transient),
            false,
        )
        .await;
        assert_eq!(result.unwrap(), 2);
        assert_eq!(starts.len(), 2);
        assert!(starts[1] <= policy().backoff_base, "{starts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_persistent_transient_error_stops_after_max_attempts() {
        let retrier = Retrier::default();
        let (result, starts) = drive(
            &retrier,
            Deadline::after(Duration::from_secs(10)),
            |_| Some(throttled()),
            false,
        )
        .await;
        let err = result.unwrap_err();
        assert_eq!(starts.len(), 3);
        assert_eq!(err.attempts, 3);
        assert_eq!(err.fault, Fault::Transient);
        assert!(err.to_string().contains("after 3 attempts"), "{err}");
        // Two sleeps, each within its capped range.
        assert!(starts[2] <= policy().backoff_base * 3, "{starts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_error_is_not_retried() {
        let retrier = Retrier::default();
        let (result, starts) = drive(&retrier, Deadline::NONE, |_| Some(permanent()), false).await;
        let err = result.unwrap_err();
        assert_eq!(starts.len(), 1);
        assert_eq!(err.fault, Fault::Permanent);
        assert!(err.to_string().contains("after 1 attempt"), "{err}");
        assert_eq!(retrier.budget().available(), RetryBudget::CAPACITY);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_attempt_times_out_and_the_deadline_stops_retries() {
        let retrier = Retrier::default();
        let begun = Instant::now();
        // 1.5 s to the deadline, 250 ms margin: the first attempt times out at 1 s, then 250 ms are
        // left, which is enough for a sleep of at most 50 ms and a 100 ms attempt; the second
        // attempt is cut to the time left, and no third one starts.
        let (result, starts) = drive(
            &retrier,
            Deadline::after(Duration::from_millis(1500)),
            |_| None,
            true,
        )
        .await;
        let err = result.unwrap_err();
        let elapsed = begun.elapsed();
        assert_eq!(err.kind, ErrorKind::Timeout);
        assert_eq!(starts.len(), 2, "{starts:?}");
        assert!(elapsed <= Duration::from_millis(1250), "{elapsed:?}");
        assert!(err.to_string().contains("after 2 attempts"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_sleep_starts_that_cannot_end_before_the_deadline() {
        let retrier = Retrier::new(RetryPolicy {
            backoff_base: Duration::from_millis(400),
            ..policy()
        });
        // 300 ms after the margin: any retry needs its sleep plus 100 ms; draws above 200 ms give up.
        for _ in 0..20 {
            let begun = Instant::now();
            let (result, starts) = drive(
                &Retrier::new(retrier.policy().clone()),
                Deadline::after(Duration::from_millis(550)),
                |_| Some(transient()),
                false,
            )
            .await;
            let err = result.unwrap_err();
            assert!(begun.elapsed() <= Duration::from_millis(300), "{starts:?}");
            for start in &starts[1..] {
                assert!(*start + MIN_ATTEMPT_TIME <= Duration::from_millis(300));
            }
            if starts.len() < 3 {
                assert!(err.to_string().contains("deadline reached"), "{err}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_passed_deadline_makes_no_call() {
        let retrier = Retrier::default();
        let (result, starts) = drive(
            &retrier,
            Deadline::after(Duration::from_millis(100)),
            |_| None,
            false,
        )
        .await;
        assert!(starts.is_empty());
        let err = result.unwrap_err();
        assert_eq!(err.fault, Fault::Transient);
        assert!(err.to_string().contains("deadline"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_budget_stops_retries_and_successes_refill_it() {
        let retrier = Retrier::default();
        for _ in 0..RetryBudget::CAPACITY {
            assert!(retrier.budget().try_spend());
        }
        let (result, starts) = drive(&retrier, Deadline::NONE, |_| Some(transient()), false).await;
        assert_eq!(starts.len(), 1, "no token, no retry");
        assert!(
            result.unwrap_err().to_string().contains("budget"),
            "the reason is kept"
        );
        for _ in 0..10 {
            let (result, _) = drive(&retrier, Deadline::NONE, |_| None, false).await;
            result.unwrap();
        }
        assert_eq!(
            retrier.budget().available(),
            1,
            "ten successes buy one retry"
        );
        let (result, starts) = drive(
            &retrier,
            Deadline::NONE,
            |n| (n == 1).then(transient),
            false,
        )
        .await;
        assert_eq!(result.unwrap(), 2);
        assert_eq!(starts.len(), 2);
    }

    #[test]
    fn the_policy_comes_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(RetryPolicy::from_lookup(env(&[])).unwrap(), policy());
        let custom = RetryPolicy::from_lookup(env(&[
            ("DYNAMODB_MAX_ATTEMPTS", "5"),
            ("DYNAMODB_BACKOFF_BASE_MS", "10"),
            ("DYNAMODB_BACKOFF_MAX_MS", "100"),
            ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "300"),
            ("DEADLINE_MARGIN_MS", "50"),
        ]))
        .unwrap();
        assert_eq!(
            custom,
            RetryPolicy {
                max_attempts: 5,
                backoff_base: Duration::from_millis(10),
                backoff_max: Duration::from_millis(100),
                attempt_timeout: Duration::from_millis(300),
                deadline_margin: Duration::from_millis(50),
            }
        );
        assert!(RetryPolicy::from_lookup(env(&[("DYNAMODB_MAX_ATTEMPTS", "0")])).is_err());
        assert!(RetryPolicy::from_lookup(env(&[("DYNAMODB_MAX_ATTEMPTS", "three")])).is_err());
        assert!(RetryPolicy::from_lookup(env(&[("DYNAMODB_ATTEMPT_TIMEOUT_MS", "0")])).is_err());
        assert!(RetryPolicy::from_lookup(env(&[("DYNAMODB_BACKOFF_BASE_MS", "1000")])).is_err());
    }
}
