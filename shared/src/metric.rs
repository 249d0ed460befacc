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
    /// The decimals a value keeps in the document.
    pub decimals: u8,
}

impl Metric {
    const fn new(name: &'static str, unit: Unit) -> Self {
        Self {
            name,
            unit,
            decimals: 3,
        }
    }

    const fn decimals(self, decimals: u8) -> Self {
        Self { decimals, ..self }
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

/// The handler's time, from request to response: one value per invocation, so its `SampleCount`
/// is the number of requests (no `Requests` count of its own: it would be the same figure, billed
/// as a metric of its own and written on every line).
pub const LATENCY: Metric = Metric::new("Latency", Unit::Milliseconds);
/// 1 when the response was a 4xx; absent otherwise (the sum is the same; the line is shorter).
pub const ERRORS_4XX: Metric = Metric::new("Errors4xx", Unit::Count);
/// 1 when the response was a 5xx; absent otherwise.
pub const ERRORS_5XX: Metric = Metric::new("Errors5xx", Unit::Count);
/// 1 on the first invocation of a process; absent otherwise.
pub const COLD_START: Metric = Metric::new("ColdStart", Unit::Count);
/// The time of each DynamoDB call attempt, to a tenth of a millisecond (a call takes
/// milliseconds; a login makes about eight, each written on its one line).
pub const DYNAMODB_LATENCY: Metric = Metric::new("DynamoDbLatency", Unit::Milliseconds).decimals(1);
/// DynamoDB calls made again after a transient error.
pub const DYNAMODB_RETRIES: Metric = Metric::new("DynamoDbRetries", Unit::Count);
/// DynamoDB answers that were throttling errors.
pub const DYNAMODB_THROTTLES: Metric = Metric::new("DynamoDbThrottles", Unit::Count);
/// DynamoDB operations that failed after every allowed attempt (answered 503).
pub const DYNAMODB_RETRIES_EXHAUSTED: Metric = Metric::new("DynamoDbRetriesExhausted", Unit::Count);

/// Logins refused for a wrong password or an unknown email (1 on such an attempt; absent
/// otherwise: the alarm treats no data as no failures).
pub const LOGIN_FAILURES: Metric = Metric::new("LoginFailures", Unit::Count);

/// Every metric, for the EMF directive and the checks against template.yaml.
pub const ALL: &[Metric] = &[
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
