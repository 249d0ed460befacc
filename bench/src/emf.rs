//! The CloudWatch custom metrics a function's EMF documents define, read from its stdout.
//!
//! A stdout line that is a JSON object with an `_aws` key is an Embedded Metric Format document.
//! Each directive of its `_aws.CloudWatchMetrics` defines, for every metric `Name` in `Metrics`
//! and every dimension set in `Dimensions`, one CloudWatch metric: the directive's `Namespace`,
//! the name, and the set's dimension names with the values the document's top-level fields give
//! them. A dimension set whose names are not all top-level strings of the document defines
//! nothing (CloudWatch rejects it) and is counted apart.
//!
//! The count of distinct metrics is what CloudWatch charges by, per metric per month.

use std::collections::BTreeSet;

use serde_json::Value;

/// One CloudWatch metric: namespace, name, and dimension `name=value` pairs sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Metric {
    /// The directive's `Namespace`.
    pub namespace: String,
    /// The metric's `Name`.
    pub name: String,
    /// `(dimension name, value)`, sorted by name.
    pub dimensions: Vec<(String, String)>,
}

impl Metric {
    /// Whether one of its dimensions is `name`.
    pub fn has_dimension(&self, name: &str) -> bool {
        self.dimensions.iter().any(|(n, _)| n == name)
    }
}

/// The metrics the EMF documents among some lines define.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// The distinct metrics.
    pub metrics: BTreeSet<Metric>,
    /// EMF documents read.
    pub documents: usize,
    /// Dimension sets that referred to a field the document does not have as a string.
    pub invalid_sets: usize,
}

impl Metrics {
    /// Reads every line; lines that are not EMF documents are skipped.
    pub fn read<S: AsRef<str>>(lines: &[S]) -> Self {
        let mut metrics = Self::default();
        for line in lines {
            metrics.add_line(line.as_ref());
        }
        metrics
    }

    /// Adds the metrics of one line, if it is an EMF document.
    pub fn add_line(&mut self, line: &str) {
        // Cheap test first: most lines are not documents.
        if !line.contains("\"_aws\"") {
            return;
        }
        let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(line) else {
            return;
        };
        let Some(directives) = doc
            .get("_aws")
            .and_then(|aws| aws.get("CloudWatchMetrics"))
            .and_then(Value::as_array)
        else {
            return;
        };
        self.documents += 1;
        for directive in directives {
            let namespace = directive
                .get("Namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let names: Vec<&str> = directive
                .get("Metrics")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| m.get("Name").and_then(Value::as_str))
                .collect();
            let sets = directive
                .get("Dimensions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            for set in sets {
                let dimensions: Option<Vec<(String, String)>> = set
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|name| {
                        let name = name.as_str()?;
                        let value = doc.get(name)?.as_str()?;
                        Some((name.to_owned(), value.to_owned()))
                    })
                    .collect();
                let Some(mut dimensions) = dimensions else {
                    self.invalid_sets += 1;
                    continue;
                };
                dimensions.sort();
                dimensions.dedup();
                for name in &names {
                    self.metrics.insert(Metric {
                        namespace: namespace.to_owned(),
                        name: (*name).to_owned(),
                        dimensions: dimensions.clone(),
                    });
                }
            }
        }
    }

    /// Adds another reading's metrics and counts.
    pub fn merge(&mut self, other: &Self) {
        self.metrics.extend(other.metrics.iter().cloned());
        self.documents += other.documents;
        self.invalid_sets += other.invalid_sets;
    }

    /// How many distinct metrics.
    pub fn count(&self) -> usize {
        self.metrics.len()
    }

    /// How many of them have no `Function` dimension (shared by every function of the service).
    pub fn service_wide(&self) -> usize {
        self.metrics
            .iter()
            .filter(|m| !m.has_dimension("Function"))
            .count()
    }

    /// The distinct dimension-name sets, each as `[A, B]`, for the report.
    pub fn dimension_sets(&self) -> BTreeSet<String> {
        self.metrics
            .iter()
            .map(|m| {
                let names: Vec<&str> = m.dimensions.iter().map(|(n, _)| n.as_str()).collect();
                format!("[{}]", names.join(", "))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An EMF document as the functions print it (three dimension sets, two metrics).
    const DOCUMENT: &str = r#"{"_aws":{"Timestamp":1764000000000,"CloudWatchMetrics":[{"Namespace":"UsersApi","Dimensions":[["Service"],["Service","Function"],["Service","Function","Route"]],"Metrics":[{"Name":"Requests","Unit":"Count"},{"Name":"Latency","Unit":"Milliseconds"}]}]},"Service":"users-api","Function":"create_user","Route":"POST /users","request_id":"r1","status":422,"Requests":1,"Latency":0.2}"#;

    fn metric(name: &str, dimensions: &[(&str, &str)]) -> Metric {
        Metric {
            namespace: "UsersApi".to_owned(),
            name: name.to_owned(),
            dimensions: dimensions
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn every_name_under_every_dimension_set_is_a_metric() {
        let metrics = Metrics::read(&[DOCUMENT]);
        assert_eq!(metrics.documents, 1);
        assert_eq!(metrics.count(), 6);
        assert_eq!(metrics.service_wide(), 2);
        assert!(
            metrics
                .metrics
                .contains(&metric("Latency", &[("Service", "users-api")]))
        );
        assert!(metrics.metrics.contains(&metric(
            "Requests",
            &[
                ("Function", "create_user"),
                ("Route", "POST /users"),
                ("Service", "users-api"),
            ]
        )));
        assert_eq!(
            metrics.dimension_sets().into_iter().collect::<Vec<_>>(),
            [
                "[Function, Route, Service]",
                "[Function, Service]",
                "[Service]"
            ]
        );
    }

    #[test]
    fn documents_of_two_functions_share_the_service_wide_metrics() {
        let other = DOCUMENT
            .replace("create_user", "login")
            .replace("POST /users", "POST /auth/login");
        let mut service = Metrics::read(&[DOCUMENT, DOCUMENT]);
        service.merge(&Metrics::read(&[other.as_str()]));
        // 2 under [Service], and 2 each under the two per-function sets of each function.
        assert_eq!(service.count(), 2 + 2 * 2 * 2);
        assert_eq!(service.documents, 3);
    }

    #[test]
    fn other_lines_and_broken_sets_define_nothing() {
        let missing_route = DOCUMENT.replace(r#""Route":"POST /users","#, "");
        let metrics = Metrics::read(&[
            r#"{"level":"INFO","message":"request refused","status":422}"#,
            "not json at all, with \"_aws\" in it",
            r#"{"_aws":{"Timestamp":1}}"#,
            missing_route.as_str(),
        ]);
        // The route set is dropped; the other two sets stand.
        assert_eq!(metrics.count(), 4);
        assert_eq!(metrics.invalid_sets, 1);
        assert_eq!(metrics.documents, 1);
    }
}
