//! What a million requests cost on Lambda, from measured durations.
//!
//! Assumptions, stated once: on-demand pricing in us-east-1 (first tier), billed duration rounded
//! up to the next millisecond per request, no free tier, no API Gateway or DynamoDB charges, and
//! a duration measured on this machine standing in for the duration on Lambda.

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
    fn cpu_share_scaling_only_slows_below_a_full_vcpu() {
        assert!(close(cpu_share_scaled_ms(10.0, 1769), 10.0));
        assert!(close(cpu_share_scaled_ms(10.0, 3008), 10.0));
        assert!(close(cpu_share_scaled_ms(10.0, 256), 10.0 * 1769.0 / 256.0));
    }
}
