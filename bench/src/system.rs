//! What the bench reads from /proc: a process's peak resident memory and CPU time, the machine's
//! CPU.

use std::{collections::BTreeMap, time::Duration};

/// Clock ticks per second of `/proc/<pid>/stat`'s times (`sysconf(_SC_CLK_TCK)`, 100 on Linux for
/// every architecture the bench runs on).
pub const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// The `VmHWM` (peak resident set) of a `/proc/<pid>/status` text, in kB.
pub fn parse_vm_hwm_kb(status: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix("VmHWM:")?;
        let mut parts = rest.split_whitespace();
        let value = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") | None => Some(value),
            Some(_) => None,
        }
    })
}

/// The peak resident set of a live process, in kB.
pub fn vm_hwm_kb(pid: u32) -> Option<u64> {
    parse_vm_hwm_kb(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// `utime + stime` of a `/proc/<pid>/stat` text (fields 14 and 15), in clock ticks: the CPU time
/// of the whole process, its ended threads included.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11); // field 3 (state) is the first after ')'
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The first field of a `/proc/<pid>/task/<tid>/schedstat` text: the thread's time on a CPU, ns.
pub fn parse_schedstat_ns(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().next()?.parse().ok()
}

/// A process's CPU time at one moment: each live thread's, in ns (schedstat), and the whole
/// process's in clock ticks (stat).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuSnapshot {
    /// Thread id → time on a CPU, ns.
    pub threads_ns: BTreeMap<u32, u64>,
    /// `utime + stime`, clock ticks.
    pub ticks: Option<u64>,
}

impl CpuSnapshot {
    /// Reads a live process's threads and stat; empty when the process is gone.
    pub fn read(pid: u32) -> Self {
        let mut threads_ns = BTreeMap::new();
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                    continue;
                };
                if let Some(ns) = std::fs::read_to_string(task.path().join("schedstat"))
                    .ok()
                    .and_then(|text| parse_schedstat_ns(&text))
                {
                    threads_ns.insert(tid, ns);
                }
            }
        }
        let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|text| parse_stat_ticks(&text));
        Self { threads_ns, ticks }
    }

    /// The CPU time spent between `self` (earlier) and `later`: the sum over threads of their
    /// schedstat growth (a thread born in between counts from zero), at nanosecond resolution.
    /// When a thread of `self` has ended by `later`, its time since `self` is unknown there, so
    /// the process's stat ticks (which keep ended threads) are used instead, at 10 ms resolution.
    /// `None` when neither can be read.
    pub fn cpu_until(&self, later: &Self) -> Option<Duration> {
        let ended = self
            .threads_ns
            .keys()
            .any(|tid| !later.threads_ns.contains_key(tid));
        if ended || later.threads_ns.is_empty() {
            let ticks = later.ticks?.checked_sub(self.ticks?)?;
            return Some(Duration::from_millis(ticks * 1000 / CLOCK_TICKS_PER_SECOND));
        }
        let ns: u64 = later
            .threads_ns
            .iter()
            .map(|(tid, ns)| ns.saturating_sub(self.threads_ns.get(tid).copied().unwrap_or(0)))
            .sum();
        Some(Duration::from_nanos(ns))
    }
}

/// The first `model name` of a `/proc/cpuinfo` text.
pub fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// This machine's CPU model and the number of CPUs this process may use.
pub fn machine() -> (String, usize) {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| parse_cpu_model(&text))
        .unwrap_or_else(|| "unknown".to_owned());
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    (model, cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_kb() {
        let status =
            "Name:\thealth\nVmPeak:\t  123456 kB\nVmHWM:\t    9876 kB\nVmRSS:\t    9000 kB\n";
        assert_eq!(parse_vm_hwm_kb(status), Some(9876));
    }

    #[test]
    fn a_status_without_vm_hwm_or_with_garbage_gives_none() {
        assert_eq!(parse_vm_hwm_kb("Name:\tx\nVmRSS:\t1 kB\n"), None);
        assert_eq!(parse_vm_hwm_kb("VmHWM:\tlots kB\n"), None);
        assert_eq!(parse_vm_hwm_kb("VmHWM:\t12 MB\n"), None);
        // A kernel thread has no memory lines at all.
        assert_eq!(parse_vm_hwm_kb(""), None);
    }

    #[test]
    fn stat_gives_user_plus_system_ticks() {
        // A command name with a space and a parenthesis; utime 1234, stime 56.
        let stat = "4242 (create (user) 1) S 1 4242 4242 0 -1 4194560 2830 0 0 0 1234 56 0 0 20 0 3 0 812345 10000000 2000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(1290));
        assert_eq!(parse_stat_ticks("4242 (x) S 1 2"), None);
        assert_eq!(parse_stat_ticks("no parenthesis"), None);
    }

    #[test]
    fn schedstat_gives_the_time_on_cpu_in_ns() {
        assert_eq!(parse_schedstat_ns("123456789 2000 15\n"), Some(123_456_789));
        assert_eq!(parse_schedstat_ns(""), None);
    }

    #[test]
    fn cpu_time_is_the_threads_growth_or_the_ticks_once_a_thread_ended() {
        let before = CpuSnapshot {
            threads_ns: BTreeMap::from([(1, 1_000_000), (2, 5_000_000)]),
            ticks: Some(10),
        };
        // Thread 3 was born in between: all of its time counts.
        let after = CpuSnapshot {
            threads_ns: BTreeMap::from([(1, 1_500_000), (2, 7_000_000), (3, 250_000)]),
            ticks: Some(11),
        };
        assert_eq!(
            before.cpu_until(&after),
            Some(Duration::from_nanos(500_000 + 2_000_000 + 250_000))
        );
        // Thread 2 ended: the ticks, 3 of them = 30 ms.
        let ended = CpuSnapshot {
            threads_ns: BTreeMap::from([(1, 2_000_000)]),
            ticks: Some(13),
        };
        assert_eq!(before.cpu_until(&ended), Some(Duration::from_millis(30)));
        // The process is gone: nothing to say.
        assert_eq!(before.cpu_until(&CpuSnapshot::default()), None);
    }

    #[test]
    fn this_process_has_cpu_time() {
        let pid = std::process::id();
        let before = CpuSnapshot::read(pid);
        assert!(!before.threads_ns.is_empty());
        let mut x = 0_u64;
        for i in 0..2_000_000_u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(std::hint::black_box(x), 1);
        // Other tests' threads may end in between (then the 10 ms ticks apply, maybe none yet).
        let after = CpuSnapshot::read(pid);
        assert!(after.ticks.is_some());
        assert!(before.cpu_until(&after).is_some());
    }

    #[test]
    fn the_cpu_model_is_the_first_model_name() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(parse_cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(parse_cpu_model("processor: 0\n"), None);
    }
}
