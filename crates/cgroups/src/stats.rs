//! Resource usage statistics, shaped like the "data" object of runc's
//! `events --stats` (runc `types/events.go`).
//!
//! The serde attributes reproduce Go's encoding/json behaviour for that
//! file: `omitempty` on a number or slice drops it when zero/empty, but
//! `omitempty` on a struct never drops it (so e.g. `memory.usage` is always
//! present), and a nil slice without `omitempty` prints `null`.

use std::collections::BTreeMap;

use serde::Serialize;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Everything `events --stats` reports.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct Stats {
    /// CPU time and throttling.
    pub cpu: Cpu,
    /// cpuset configuration.
    pub cpuset: CpuSet,
    /// Memory usage and limits.
    pub memory: Memory,
    /// Process count and limit.
    pub pids: Pids,
    /// Block I/O counters.
    pub blkio: Blkio,
    /// Hugetlb usage by page size ("2MB").
    pub hugetlb: BTreeMap<String, Hugetlb>,
    /// Intel RDT; never filled by this crate.
    pub intel_rdt: IntelRdt,
    /// Network interfaces; runc leaves this `null` unless it reads them
    /// from the container's network namespace, which is not a cgroup matter.
    pub network_interfaces: Option<Vec<NetworkInterface>>,
}

/// CPU statistics.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct Cpu {
    /// Time used.
    pub usage: CpuUsage,
    /// CFS throttling.
    pub throttling: Throttling,
    /// Pressure stall information (v2 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<PsiStats>,
}

/// CPU time, in nanoseconds.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct CpuUsage {
    /// Total time.
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Total time per CPU (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Kernel time per CPU (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// User time per CPU (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// Kernel time.
    pub kernel: u64,
    /// User time.
    pub user: u64,
}

/// CFS bandwidth throttling counters.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct Throttling {
    /// Enforcement periods elapsed.
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Total throttled time in nanoseconds.
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// cpuset settings and flags.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct CpuSet {
    /// CPUs the cgroup may run on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    /// cpuset.cpu_exclusive.
    pub cpu_exclusive: u64,
    /// Memory nodes the cgroup may use.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    /// cpuset.mem_hardwall.
    pub mem_hardwall: u64,
    /// cpuset.mem_exclusive.
    pub mem_exclusive: u64,
    /// cpuset.memory_migrate.
    pub memory_migrate: u64,
    /// cpuset.memory_spread_page.
    pub memory_spread_page: u64,
    /// cpuset.memory_spread_slab.
    pub memory_spread_slab: u64,
    /// cpuset.memory_pressure.
    pub memory_pressure: u64,
    /// cpuset.sched_load_balance.
    pub sched_load_balance: u64,
    /// cpuset.sched_relax_domain_level.
    pub sched_relax_domain_level: i64,
}

/// Memory statistics.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct Memory {
    /// Page cache bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// Memory usage.
    pub usage: MemoryEntry,
    /// Memory + swap usage (v1 memsw; v2 swap + memory, as runc does).
    pub swap: MemoryEntry,
    /// Kernel memory (v1 only).
    pub kernel: MemoryEntry,
    /// Kernel TCP memory (v1 only).
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat as is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
    /// Pressure stall information (v2 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<PsiStats>,
}

/// One memory counter: usage, high-water mark, limit, failures.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct MemoryEntry {
    /// Limit in bytes (`u64::MAX` = unlimited).
    pub limit: u64,
    /// Current usage in bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Highest usage seen.
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

/// Process counts.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct Pids {
    /// Processes and threads now.
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// Limit; 0 = unlimited.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// Block I/O counters, each a list of per-device entries.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queue_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioServiceTimeRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioWaitTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioMergedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "sectorsRecursive", skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
    /// Pressure stall information (v2 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<PsiStats>,
}

/// One block I/O counter for one device and operation.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct BlkioEntry {
    /// Device major.
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    /// Device minor.
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    /// "Read", "Write", "Sync", "Async", "Discard", "Total" or "".
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// Counter value.
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

/// Hugetlb usage for one page size.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct Hugetlb {
    /// Bytes in use.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Highest usage seen (v1 only).
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Allocation failures.
    pub failcnt: u64,
}

/// Intel RDT statistics: not collected, serialized as `{}` like runc does
/// when RDT is off.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct IntelRdt {}

/// Per-interface network counters (same field names as runc, which has no
/// JSON tags on this struct).
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct NetworkInterface {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Pressure stall information from a v2 `*.pressure` file.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct PsiStats {
    /// Share of time some tasks were stalled.
    pub some: PsiData,
    /// Share of time all tasks were stalled.
    pub full: PsiData,
}

/// One line of a pressure file.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct PsiData {
    /// 10 s average, percent.
    pub avg10: f64,
    /// 60 s average, percent.
    pub avg60: f64,
    /// 300 s average, percent.
    pub avg300: f64,
    /// Total stall time, microseconds.
    pub total: u64,
}

/// Parse a pressure file ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0").
pub(crate) fn parse_psi(text: &str) -> PsiStats {
    let mut stats = PsiStats::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let target = match words.next() {
            Some("some") => &mut stats.some,
            Some("full") => &mut stats.full,
            _ => continue,
        };
        for word in words {
            match word.split_once('=') {
                Some(("avg10", v)) => target.avg10 = v.parse().unwrap_or(0.0),
                Some(("avg60", v)) => target.avg60 = v.parse().unwrap_or(0.0),
                Some(("avg300", v)) => target.avg300 = v.parse().unwrap_or(0.0),
                Some(("total", v)) => target.total = v.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_stats_serialize_like_runc() {
        let json = serde_json::to_value(Stats::default()).unwrap();
        let expected = serde_json::json!({
            "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
            "cpuset": {
                "cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0,
                "memory_migrate": 0, "memory_spread_page": 0, "memory_spread_slab": 0,
                "memory_pressure": 0, "sched_load_balance": 0, "sched_relax_domain_level": 0
            },
            "memory": {
                "usage": {"limit": 0, "failcnt": 0},
                "swap": {"limit": 0, "failcnt": 0},
                "kernel": {"limit": 0, "failcnt": 0},
                "kernelTCP": {"limit": 0, "failcnt": 0}
            },
            "pids": {},
            "blkio": {},
            "hugetlb": {},
            "intel_rdt": {},
            "network_interfaces": null
        });
        assert_eq!(json, expected);
    }

    #[test]
    fn filled_fields_use_runc_names() {
        let mut stats = Stats::default();
        stats.cpu.throttling.throttled_periods = 2;
        stats.blkio.io_service_bytes_recursive.push(BlkioEntry {
            major: 8,
            minor: 0,
            op: "Read".into(),
            value: 4096,
        });
        stats.memory.raw.insert("cache".into(), 1);
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["cpu"]["throttling"]["throttledPeriods"], 2);
        assert_eq!(json["blkio"]["ioServiceBytesRecursive"][0]["op"], "Read");
        assert_eq!(json["memory"]["raw"]["cache"], 1);
    }

    #[test]
    fn parses_pressure_files() {
        let psi = parse_psi(
            "some avg10=1.50 avg60=0.00 avg300=0.00 total=12\nfull avg10=0.00 avg60=0.25 avg300=0.00 total=3\n",
        );
        assert_eq!(psi.some.avg10, 1.5);
        assert_eq!(psi.some.total, 12);
        assert_eq!(psi.full.avg60, 0.25);
    }
}
