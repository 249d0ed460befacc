//! What a million requests cost, from measured durations, CPU time and log bytes: Lambda's
//! request and compute charges, CloudWatch Logs ingestion and CloudWatch custom metrics.
//!
//! Assumptions, stated once: on-demand pricing in us-east-1 (first tier), billed duration rounded
//! up to the next millisecond per request, no free tier, no API Gateway or DynamoDB charges, and
//! a duration measured on this machine standing in for the duration on Lambda. The CPU-share model
//! ([`modelled_ms`]) stretches only the CPU time of a request to Lambda's share of a vCPU; the
//! rest (waiting on DynamoDB) stays as measured.

/// Lambda's on-demand prices for one architecture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// Which architecture and region these are for.
    pub label: &'static str,
    /// USD per GB-second of billed duration (GB = 1024 MB of configured memory).
    pub per_gb_second: f64,
    /// USD per million requests.
    pub per_million_requests: f64,
}

/// arm64 (Graviton), us-east-1, first tier (the first 7.5 billion GB-seconds a month).
pub const ARM64_US_EAST_1: Prices = Prices {
    label: "arm64, us-east-1",
    per_gb_second: 0.000_013_333_4,
    per_million_requests: 0.20,
};

/// x86_64, us-east-1, first tier (the first 6 billion GB-seconds a month).
pub const X86_64_US_EAST_1: Prices = Prices {
    label: "x86_64, us-east-1",
    per_gb_second: 0.000_016_666_7,
    per_million_requests: 0.20,
};

/// The memory size at which Lambda gives a function one full vCPU; below it, a proportional share.
pub const FULL_VCPU_MB: u32 = 1769;

/// When the CloudWatch prices below were read (CloudWatch pricing page, us-east-1).
pub const CLOUDWATCH_PRICES_AS_OF: &str = "2026-12, us-east-1";

/// CloudWatch Logs ingestion, standard log class, us-east-1 (as of [`CLOUDWATCH_PRICES_AS_OF`]):
/// USD per GB ingested. Everything a function writes to stdout is ingested (the EMF documents
/// too); a GB is taken as 2^30 bytes, as AWS bills data volumes.
pub const LOG_INGESTION_PER_GB: f64 = 0.50;

/// Bytes in the GB that [`LOG_INGESTION_PER_GB`] is charged by.
pub const BYTES_PER_GB: f64 = 1_073_741_824.0;

/// CloudWatch custom metrics, us-east-1 (as of [`CLOUDWATCH_PRICES_AS_OF`]): USD per metric per
/// month, first tier (the first 10,000 metrics). A metric is a namespace, a name and one set of
/// dimension values; EMF documents define them, the charge is prorated by the hour a metric is
/// published, so one published all month costs the full amount.
pub const CUSTOM_METRIC_PER_MONTH: f64 = 0.30;

/// The first tier of [`CUSTOM_METRIC_PER_MONTH`]: metrics beyond it are cheaper.
pub const CUSTOM_METRICS_FIRST_TIER: usize = 10_000;

/// USD of CloudWatch Logs ingestion for one million requests that each write `bytes_per_request`.
pub fn log_ingestion_per_million(bytes_per_request: f64) -> f64 {
    if bytes_per_request.is_finite() && bytes_per_request > 0.0 {
        1_000_000.0 * bytes_per_request / BYTES_PER_GB * LOG_INGESTION_PER_GB
    } else {
        0.0
    }
}

/// USD a month for `metrics` distinct custom metrics, all in the first tier (the report says when
/// a count goes past it).
pub fn custom_metrics_per_month(metrics: usize) -> f64 {
    metrics as f64 * CUSTOM_METRIC_PER_MONTH
}

/// The duration of a request on Lambda at `memory_mb`, modelled from what it took here with a
/// whole core: its CPU time stretched to Lambda's CPU share (`memory_mb / 1769` of a vCPU below
/// 1769 MB), plus the rest of its latency as measured (waiting on DynamoDB, which the CPU share
/// does not slow). The rest is clamped at zero: a request whose CPU time exceeds its latency (work
/// on other threads) is all CPU.
pub fn modelled_ms(cpu_ms: f64, latency_ms: f64, memory_mb: u32) -> f64 {
    let cpu = cpu_ms.max(0.0);
    cpu_share_scaled_ms(cpu, memory_mb) + (latency_ms - cpu).max(0.0)
}

/// USD for one million requests of the CPU-share model: each latency in `latencies_ms` modelled
/// with the mean CPU time per request `cpu_ms` at `memory_mb` ([`modelled_ms`]), then billed as
/// [`per_million`] bills it. `None` without latencies.
pub fn per_million_modelled(
    latencies_ms: &[f64],
    cpu_ms: f64,
    memory_mb: u32,
    prices: &Prices,
) -> Option<f64> {
    let modelled: Vec<f64> = latencies_ms
        .iter()
        .map(|latency| modelled_ms(cpu_ms, *latency, memory_mb))
        .collect();
    per_million(&modelled, memory_mb, prices)
}

/// The parts of a path's bill for one million requests, USD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bill {
    /// Lambda's request charge.
    pub requests: f64,
    /// Lambda's compute charge (GB-seconds).
    pub compute: f64,
    /// CloudWatch Logs ingestion.
    pub log_ingestion: f64,
}

/// One part of a [`Bill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Lambda's request charge.
    Requests,
    /// Lambda's compute charge.
    Compute,
    /// CloudWatch Logs ingestion.
    LogIngestion,
}

impl Part {
    /// How the report names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Compute => "compute",
            Self::LogIngestion => "log ingestion",
        }
    }
}

impl Bill {
    /// The bill of a path whose Lambda charge (requests and compute, as [`per_million`] gives it)
    /// is `lambda_per_million` and whose requests write `log_bytes_per_request`.
    pub fn new(lambda_per_million: f64, log_bytes_per_request: f64, prices: &Prices) -> Self {
        Self {
            requests: prices.per_million_requests,
            compute: (lambda_per_million - prices.per_million_requests).max(0.0),
            log_ingestion: log_ingestion_per_million(log_bytes_per_request),
        }
    }

    /// The whole bill.
    pub fn total(&self) -> f64 {
        self.requests + self.compute + self.log_ingestion
    }

    /// The largest part (the first of equal ones, in the order requests, compute, log ingestion).
    pub fn dominant(&self) -> Part {
        let mut largest = (Part::Requests, self.requests);
        for part in [
            (Part::Compute, self.compute),
            (Part::LogIngestion, self.log_ingestion),
        ] {
            if part.1 > largest.1 {
                largest = part;
            }
        }
        largest.0
    }

    /// The largest part's share of the whole, 0 to 1.
    pub fn dominant_share(&self) -> f64 {
        let total = self.total();
        let part = match self.dominant() {
            Part::Requests => self.requests,
            Part::Compute => self.compute,
            Part::LogIngestion => self.log_ingestion,
        };
        if total > 0.0 { part / total } else { 0.0 }
    }
}

/// The billed milliseconds of one invocation that took `duration_ms`: rounded up, at least 1.
pub fn billed_ms(duration_ms: f64) -> u64 {
    if duration_ms.is_finite() && duration_ms > 1.0 {
        duration_ms.ceil() as u64
    } else {
        1
    }
}

/// USD for one million requests whose durations are distributed as `durations_ms` (each billed on
/// its own, rounded up), at `memory_mb` of configured memory. `None` without durations.
pub fn per_million(durations_ms: &[f64], memory_mb: u32, prices: &Prices) -> Option<f64> {
    if durations_ms.is_empty() {
        return None;
    }
    let mean_billed_ms = durations_ms
        .iter()
        .map(|d| billed_ms(*d) as f64)
        .sum::<f64>()
        / durations_ms.len() as f64;
    let gb = f64::from(memory_mb) / 1024.0;
    let compute = 1_000_000.0 * (mean_billed_ms / 1000.0) * gb * prices.per_gb_second;
    Some(compute + prices.per_million_requests)
}

/// A duration measured with a whole core, stretched to the CPU share Lambda gives `memory_mb`
/// (a pessimistic bound for CPU-bound work; time spent waiting on DynamoDB does not stretch).
pub fn cpu_share_scaled_ms(duration_ms: f64, memory_mb: u32) -> f64 {
    duration_ms * (f64::from(FULL_VCPU_MB) / f64::from(memory_mb.max(1))).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn durations_are_billed_by_the_started_millisecond() {
        assert_eq!(billed_ms(0.0), 1);
        assert_eq!(billed_ms(0.2), 1);
        assert_eq!(billed_ms(1.0), 1);
        assert_eq!(billed_ms(1.01), 2);
        assert_eq!(billed_ms(20.5), 21);
        assert_eq!(billed_ms(f64::NAN), 1);
    }

    #[test]
    fn cost_per_million_is_requests_plus_gb_seconds() {
        // 1 ms at 1024 MB: a million of them is 1000 GB-s.
        let cost = per_million(&[0.4, 0.9], 1024, &ARM64_US_EAST_1).unwrap_or_default();
        assert!(close(cost, 0.20 + 1000.0 * 0.000_013_333_4), "{cost}");
        // 256 MB, 10 ms and 20.5 ms (billed 21): mean 15.5 ms, 0.25 GB.
        let cost = per_million(&[10.0, 20.5], 256, &ARM64_US_EAST_1).unwrap_or_default();
        let want = 0.20 + 1_000_000.0 * 0.0155 * 0.25 * 0.000_013_333_4;
        assert!(close(cost, want), "{cost} != {want}");
        assert_eq!(per_million(&[], 256, &ARM64_US_EAST_1), None);
    }

    #[test]
    fn log_ingestion_is_half_a_dollar_per_gib() {
        // 1,662 bytes a request (a 422 of BENCHMARKS.md): 1.662e9 bytes per million.
        let cost = log_ingestion_per_million(1662.0);
        assert!(close(cost, 1.662e9 / 1_073_741_824.0 * 0.5), "{cost}");
        assert!((cost - 0.7739).abs() < 1e-4, "{cost}");
        // 600 bytes, issue 16's ceiling: about 28 cents.
        assert!((log_ingestion_per_million(600.0) - 0.2794).abs() < 1e-4);
        assert!(close(log_ingestion_per_million(0.0), 0.0));
        assert!(close(log_ingestion_per_million(f64::NAN), 0.0));
    }

    #[test]
    fn custom_metrics_are_thirty_cents_each_a_month() {
        assert!(close(custom_metrics_per_month(0), 0.0));
        assert!(close(custom_metrics_per_month(1), 0.30));
        // Five metrics under [Service], and [Service, Function] for eight functions: 45.
        assert!(close(custom_metrics_per_month(5 + 5 * 8), 13.5));
    }

    #[test]
    fn the_cpu_share_model_stretches_only_the_cpu_time() {
        // 40 ms of CPU in a 60 ms request at 256 MB: 40 × 1769/256 = 276.41 ms, plus 20 ms waiting.
        assert!(close(
            modelled_ms(40.0, 60.0, 256),
            40.0 * 1769.0 / 256.0 + 20.0
        ));
        assert!((modelled_ms(40.0, 60.0, 256) - 296.40625).abs() < 1e-9);
        // At 512 MB: 40 × 3.455 + 20 = 158.20 ms; at 1024 MB: 40 × 1.7275 + 20 = 89.10 ms.
        assert!((modelled_ms(40.0, 60.0, 512) - 158.203_125).abs() < 1e-9);
        assert!((modelled_ms(40.0, 60.0, 1024) - 89.101_562_5).abs() < 1e-9);
        // A full vCPU or more: as measured.
        assert!(close(modelled_ms(40.0, 60.0, 1769), 60.0));
        assert!(close(modelled_ms(40.0, 60.0, 3008), 60.0));
        // CPU beyond the latency (work on another thread): all of it stretched, no negative wait.
        assert!(close(modelled_ms(10.0, 8.0, 1769), 10.0));
        assert!(close(modelled_ms(10.0, 8.0, 256), 10.0 * 1769.0 / 256.0));
        // No CPU measured: the latency, unstretched.
        assert!(close(modelled_ms(0.0, 12.5, 256), 12.5));
    }

    #[test]
    fn the_modelled_cost_bills_each_modelled_duration() {
        // 40 ms CPU of 60 ms at 256 MB: 296.41 ms, billed 297 ms, 0.25 GB.
        let cost =
            per_million_modelled(&[60.0, 60.0], 40.0, 256, &ARM64_US_EAST_1).unwrap_or_default();
        let want = 0.20 + 1_000_000.0 * 0.297 * 0.25 * 0.000_013_333_4;
        assert!(close(cost, want), "{cost} != {want}");
        assert!((cost - 1.190_005).abs() < 1e-6, "{cost}");
        // The same request at 1024 MB: 89.10 ms, billed 90 ms, 1 GB: dearer, and 3.3× faster.
        let cost = per_million_modelled(&[60.0], 40.0, 1024, &ARM64_US_EAST_1).unwrap_or_default();
        assert!((cost - (0.20 + 1_000_000.0 * 0.090 * 0.000_013_333_4)).abs() < 1e-9);
        assert_eq!(per_million_modelled(&[], 1.0, 256, &ARM64_US_EAST_1), None);
    }

    #[test]
    fn a_bill_names_its_largest_part() {
        // A 422 at 256 MB billed 1 ms, 1,662 log bytes: log ingestion dominates.
        let lambda = per_million(&[0.3], 256, &ARM64_US_EAST_1).unwrap_or_default();
        let bill = Bill::new(lambda, 1662.0, &ARM64_US_EAST_1);
        assert!(close(bill.requests, 0.20));
        assert!(close(
            bill.compute,
            1_000_000.0 * 0.001 * 0.25 * 0.000_013_333_4
        ));
        assert!((bill.log_ingestion - 0.7739).abs() < 1e-4);
        assert_eq!(bill.dominant(), Part::LogIngestion);
        assert!((bill.total() - (0.20 + 0.003_333_35 + 0.773_929)).abs() < 1e-5);
        assert!((bill.dominant_share() - bill.log_ingestion / bill.total()).abs() < 1e-12);
        assert!((bill.dominant_share() - 0.7919).abs() < 1e-4);
        // A sign-up of 300 ms at 256 MB with 600 log bytes: compute dominates.
        let bill = Bill::new(1.2, 600.0, &ARM64_US_EAST_1);
        assert_eq!(bill.dominant(), Part::Compute);
        assert!(close(bill.compute, 1.0));
        // Nothing logged, 1 ms: the request charge.
        let bill = Bill::new(0.203, 0.0, &ARM64_US_EAST_1);
        assert_eq!(bill.dominant(), Part::Requests);
        assert_eq!(Part::LogIngestion.as_str(), "log ingestion");
    }

    #[test]
    fn cpu_share_scaling_only_slows_below_a_full_vcpu() {
        assert!(close(cpu_share_scaled_ms(10.0, 1769), 10.0));
        assert!(close(cpu_share_scaled_ms(10.0, 3008), 10.0));
        assert!(close(cpu_share_scaled_ms(10.0, 256), 10.0 * 1769.0 / 256.0));
    }
}
