//! When an invocation ends, as a monotonic instant: what bounds every DynamoDB call and its retries.
//! A request knows its deadline ([`crate::ApiRequest::deadline`]); the store takes it explicitly.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// When the invocation ends: Lambda's deadline, as a monotonic instant. `None` outside Lambda.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline: only attempts and per-attempt timeouts bound the call.
    pub const NONE: Self = Self(None);

    /// Ends `after` from now.
    pub fn after(after: Duration) -> Self {
        Self(Some(Instant::now() + after))
    }

    /// Lambda's deadline (wall-clock), converted now to a monotonic instant.
    pub fn from_system_time(at: Option<SystemTime>) -> Self {
        Self(at.map(|at| {
            Instant::now()
                + at.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO)
        }))
    }

    /// The instant, if any.
    pub fn instant(&self) -> Option<Instant> {
        self.0
    }

    /// This deadline brought forward by `margin`.
    pub(crate) fn minus(self, margin: Duration) -> Self {
        Self(
            self.0
                .map(|at| at.checked_sub(margin).unwrap_or_else(Instant::now)),
        )
    }
}
