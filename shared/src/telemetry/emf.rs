//! Metrics as CloudWatch Embedded Metric Format: exactly one document per invocation, printed on
//! stdout after the response has been handed back. The document is also the request's access line
//! ([`super::Scope::document`]): one line per request instead of two saying the same things, and
//! every byte of it is paid for as CloudWatch Logs ingestion, so it stays short (no `Unit`, whole
//! numbers without `.0`, counts written only when they count something).
//!
//! Code records through the `metrics` facade (via the names in [`crate::metric`]). The recorder
//! installed here does not aggregate globally: it routes every value to the invocation that is
//! running on the current task ([`super::Scope::current`]), so two invocations served
//! concurrently by one process (Lambda Managed Instances) never mix their metrics. A value
//! recorded outside any invocation is dropped.
//!
//! Why not `metrics_cloudwatch_embedded` (0.10): it keeps one process-wide collector, which its
//! Lambda integration flushes after each invocation, with the request id set as a property on that
//! same collector. With concurrent invocations in one process (Lambda Managed Instances) two
//! invocations would share the collector: each document would carry the other's values and one of
//! the two request ids. Its dimensions are static defaults plus metric labels; we want the same
//! values under two dimension sets (service, function) in one document. The document
//! format is small, and is validated against the EMF specification's schema in the tests.
//!
//! Why not AWS's `metrique` (0.1.33, evaluated for this): it keeps invocations apart only through
//! its own `#[metrics]` structs, one per unit of work, which would replace the `metrics` facade
//! this design records through. Its bridge from the facade (`metrique-metricsrs`, the Lambda
//! reporter) installs one process-wide recorder that each flush empties, so two invocations served
//! concurrently would again mix their values, and it records histogram values bucketed and cut to
//! whole numbers (a 3.5 ms latency becomes 3). It does meet the rest (several dimension sets, a
//! test sink, a synchronous write we could place after the response), for about thirty more crates
//! in the lockfile; if the facade is ever dropped, a per-invocation `#[metrics]` struct appended
//! on drop after the response would replace this module.
//!
//! Limits of the specification kept here: at most 100 metrics per directive (we define fewer, see
//! [`crate::metric::ALL`]), at most 30 dimensions per set (we use 2), at most 100 values per metric
//! (further values of a metric in one invocation are dropped and counted in the document's
//! `dropped_values` property).

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use serde_json::{Map, Value, json};

use super::Scope;
use crate::{
    config::{Config, DEFAULT_NAMESPACE, DEFAULT_SERVICE},
    metric,
};

/// The most values one metric may carry in one document (EMF specification).
pub const MAX_VALUES_PER_METRIC: usize = 100;

/// The dimension sets of every document: the whole service, and each function. No route set: a
/// function serves one route, so it would only double the custom metrics (each billed per month)
/// for no new view.
pub const DIMENSION_SETS: &[&[&str]] = &[&["Service"], &["Service", "Function"]];

/// What documents are labelled with.
#[derive(Debug, Clone)]
pub struct EmfConfig {
    /// The namespace ([`Config::metrics_namespace`]).
    pub namespace: String,
    /// The `Service` dimension ([`Config::service`]).
    pub service: String,
}

static CONFIG: OnceLock<EmfConfig> = OnceLock::new();

impl EmfConfig {
    /// Labels every document of this process as `config` says (start-up does this once).
    pub fn set(config: &Config) {
        let _ = CONFIG.set(Self {
            namespace: config.metrics_namespace.clone(),
            service: config.service.clone(),
        });
    }

    /// The process's labels: those start-up set, else (in-process tests) the defaults.
    pub fn get() -> &'static Self {
        CONFIG.get_or_init(|| Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            service: DEFAULT_SERVICE.to_owned(),
        })
    }
}

/// The values one invocation recorded.
#[derive(Debug, Default, Clone)]
pub struct MetricSet {
    values: BTreeMap<String, MetricValues>,
    dropped: u64,
}

#[derive(Debug, Clone)]
enum MetricValues {
    Sum(f64),
    Values(Vec<f64>),
}

impl MetricSet {
    /// Adds to a count.
    pub fn add(&mut self, name: &str, n: f64) {
        match self.values.get_mut(name) {
            Some(MetricValues::Sum(sum)) => *sum += n,
            Some(MetricValues::Values(_)) => self.dropped += 1,
            None => {
                self.values.insert(name.to_owned(), MetricValues::Sum(n));
            }
        }
    }

    /// Records one value of a distribution, kept to the metric's decimals ([`metric::Metric`];
    /// three, microseconds for a latency, when it has none).
    pub fn push(&mut self, name: &str, value: f64) {
        let scale = 10_f64.powi(metric::by_name(name).map_or(3, |m| i32::from(m.decimals)));
        let value = (value * scale).round() / scale;
        match self.values.get_mut(name) {
            Some(MetricValues::Values(values)) if values.len() < MAX_VALUES_PER_METRIC => {
                values.push(value);
            }
            Some(_) => self.dropped += 1,
            None => {
                self.values
                    .insert(name.to_owned(), MetricValues::Values(vec![value]));
            }
        }
    }

    /// The EMF document of these values.
    pub fn document(
        &self,
        config: &EmfConfig,
        dimensions: &[(&str, &str)],
        properties: Map<String, Value>,
        timestamp_ms: i64,
    ) -> Value {
        let mut doc = Map::new();
        let definitions: Vec<Value> = self
            .values
            .keys()
            // No `Unit`: CloudWatch then stores `None`, which changes no statistic, and the
            // document stays short (every byte of it is paid for as log ingestion, on every
            // request). The units are in `crate::metric`, the dashboard's titles and the README.
            .map(|name| json!({ "Name": name }))
            .collect();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": config.namespace,
                    "Dimensions": DIMENSION_SETS,
                    "Metrics": definitions,
                }],
            }),
        );
        for (name, value) in dimensions {
            doc.insert((*name).to_owned(), Value::from(*value));
        }
        doc.extend(properties);
        if self.dropped > 0 {
            doc.insert("dropped_values".into(), Value::from(self.dropped));
        }
        for (name, values) in &self.values {
            let value = match values {
                MetricValues::Sum(sum) => number(*sum),
                MetricValues::Values(values) if values.len() == 1 => number(values[0]),
                MetricValues::Values(values) => values.iter().copied().map(number).collect(),
            };
            doc.insert(name.clone(), value);
        }
        Value::Object(doc)
    }
}

/// A value as short as JSON allows: a whole number without its `.0`.
fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
        Value::from(value as i64)
    } else {
        Value::from(value)
    }
}

/// The `metrics` recorder that routes values to the current invocation.
#[derive(Debug, Clone, Copy, Default)]
pub struct InvocationRecorder;

/// Installs [`InvocationRecorder`] as the global recorder, once per process.
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = metrics::set_global_recorder(InvocationRecorder);
    });
}

struct Handle {
    invocation: Arc<Scope>,
    name: String,
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.invocation
            .with_metrics(|m| m.add(&self.name, value as f64));
    }
    fn absolute(&self, value: u64) {
        self.invocation
            .with_metrics(|m| m.add(&self.name, value as f64));
    }
}

impl HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.invocation.with_metrics(|m| m.push(&self.name, value));
    }
}

impl Recorder for InvocationRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match Scope::current() {
            Some(invocation) => Counter::from_arc(Arc::new(Handle {
                invocation,
                name: key.name().to_owned(),
            })),
            None => Counter::noop(),
        }
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        // Gauges have no per-invocation meaning here.
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        match Scope::current() {
            Some(invocation) => Histogram::from_arc(Arc::new(Handle {
                invocation,
                name: key.name().to_owned(),
            })),
            None => Histogram::noop(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_document_names_each_recorded_metric_once_with_its_unit() {
        let mut set = MetricSet::default();
        set.add("Errors4xx", 1.0);
        set.add("Errors5xx", 0.0);
        set.push("DynamoDbLatency", 3.5);
        set.push("DynamoDbLatency", 4.5432);
        set.push("Latency", 0.1234);
        let config = EmfConfig {
            namespace: "Test".into(),
            service: "svc".into(),
        };
        let doc = set.document(
            &config,
            &[("Service", "svc"), ("Function", "f")],
            Map::new(),
            1,
        );
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Test");
        assert_eq!(directive["Metrics"].as_array().unwrap().len(), 4);
        assert_eq!(doc["Latency"], json!(0.123), "to the microsecond");
        assert_eq!(doc["Errors4xx"], json!(1), "a whole number, without .0");
        assert_eq!(doc["Errors5xx"], json!(0));
        assert_eq!(doc["DynamoDbLatency"], json!([3.5, 4.5]));
        assert!(
            directive["Metrics"]
                .as_array()
                .unwrap()
                .contains(&json!({"Name": "Errors4xx"})),
            "no unit"
        );
        assert!(
            directive["Metrics"]
                .as_array()
                .unwrap()
                .contains(&json!({"Name": "DynamoDbLatency"}))
        );
    }

    #[test]
    fn values_beyond_the_limit_are_dropped_and_counted() {
        let mut set = MetricSet::default();
        for n in 0..150 {
            set.push("DynamoDbLatency", f64::from(n));
        }
        let config = EmfConfig {
            namespace: "T".into(),
            service: "s".into(),
        };
        let doc = set.document(&config, &[], Map::new(), 1);
        assert_eq!(doc["DynamoDbLatency"].as_array().unwrap().len(), 100);
        assert_eq!(doc["dropped_values"], 50);
    }
}
