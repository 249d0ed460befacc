//! Every metric the functions emit, defined once: its CloudWatch name and unit. template.yaml's
//! dashboard and alarms use these names; a test checks they match.
//!
//! Record through these constants (`metric::REQUESTS.count(1)`), never with a name literal.

/// CloudWatch units used here (a subset of the EMF specification's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count of events.
    Count,
    /// A duration.
    Milliseconds,
}

impl Unit {
    /// The unit's name in an EMF document.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// A metric: name and unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The CloudWatch metric name.
    pub name: &'static str,
    /// Its unit.
    pub unit: Unit,
}

impl Metric {
    const fn new(name: &'static str, unit: Unit) -> Self {
        Self { name, unit }
    }

    /// Adds `n` to a count for the current invocation.
    pub fn count(&self, n: u64) {
        metrics::counter!(self.name).increment(n);
    }

    /// Records one value (a latency in milliseconds, say) for the current invocation.
    pub fn record(&self, value: f64) {
        metrics::histogram!(self.name).record(value);
    }
}

/// One per invocation.
pub const REQUESTS: Metric = Metric::new("Requests", Unit::Count);
/// The handler's time, from request to response.
pub const LATENCY: Metric = Metric::new("Latency", Unit::Milliseconds);
/// 1 when the response was a 4xx, else 0 (always emitted, so alarms have data).
pub const ERRORS_4XX: Metric = Metric::new("Errors4xx", Unit::Count);
/// 1 when the response was a 5xx, else 0 (always emitted).
pub const ERRORS_5XX: Metric = Metric::new("Errors5xx", Unit::Count);
/// 1 on the first invocation of a process, else 0.
pub const COLD_START: Metric = Metric::new("ColdStart", Unit::Count);
/// The time of each DynamoDB call attempt.
pub const DYNAMODB_LATENCY: Metric = Metric::new("DynamoDbLatency", Unit::Milliseconds);
/// DynamoDB calls made again after a transient error.
pub const DYNAMODB_RETRIES: Metric = Metric::new("DynamoDbRetries", Unit::Count);
/// DynamoDB answers that were throttling errors.
pub const DYNAMODB_THROTTLES: Metric = Metric::new("DynamoDbThrottles", Unit::Count);
/// DynamoDB operations that failed after every allowed attempt (answered 503).
pub const DYNAMODB_RETRIES_EXHAUSTED: Metric = Metric::new("DynamoDbRetriesExhausted", Unit::Count);

/// Logins refused for a wrong password or an unknown email (emitted by login on every attempt
/// that reached the password check, 0 or 1, so the alarm has data).
pub const LOGIN_FAILURES: Metric = Metric::new("LoginFailures", Unit::Count);

/// Every metric, for the EMF directive and the checks against template.yaml.
pub const ALL: &[Metric] = &[
    REQUESTS,
    LATENCY,
    ERRORS_4XX,
    ERRORS_5XX,
    COLD_START,
    DYNAMODB_LATENCY,
    DYNAMODB_RETRIES,
    DYNAMODB_THROTTLES,
    DYNAMODB_RETRIES_EXHAUSTED,
    LOGIN_FAILURES,
];

/// Looks a metric up by name.
pub fn by_name(name: &str) -> Option<Metric> {
    ALL.iter().copied().find(|m| m.name == name)
}
