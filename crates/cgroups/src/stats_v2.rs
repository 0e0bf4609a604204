//! Reading [`Stats`] from cgroup v2 files, mapped onto runc's v1-shaped
//! structure the way runc's fs2 driver does. Sections whose controller is
//! not enabled in the cgroup are left at their defaults.

use std::collections::BTreeMap;
use std::path::Path;

use crate::convert::{hugepage_file_name, parse_cpu_list};
use crate::error::Result;
use crate::fs;
use crate::stats::{BlkioEntry, Hugetlb, Memory, MemoryEntry, Stats, parse_psi};

/// Collect everything the cgroup's enabled controllers offer.
pub(crate) fn collect(dir: &Path) -> Result<Stats> {
    let mut stats = Stats::default();
    if let Some(text) = fs::read_optional(dir, "cpu.stat")? {
        cpu(&text, &mut stats);
    }
    stats.cpu.psi = fs::read_optional(dir, "cpu.pressure")?.map(|t| parse_psi(&t));
    if let Some(cpus) = fs::read_optional(dir, "cpuset.cpus.effective")? {
        stats.cpuset.cpus = parse_cpu_list(&cpus).unwrap_or_default();
    }
    if let Some(mems) = fs::read_optional(dir, "cpuset.mems.effective")? {
        stats.cpuset.mems = parse_cpu_list(&mems).unwrap_or_default();
    }
    if let Some(text) = fs::read_optional(dir, "memory.stat")? {
        stats.memory = memory(dir, &text)?;
    }
    stats.memory.psi = fs::read_optional(dir, "memory.pressure")?.map(|t| parse_psi(&t));
    if fs::exists(dir, "pids.current") {
        stats.pids.current = fs::read_u64(dir, "pids.current")?;
        stats.pids.limit = match fs::read_u64(dir, "pids.max")? {
            u64::MAX => 0,
            limit => limit,
        };
    }
    if let Some(text) = fs::read_optional(dir, "io.stat")? {
        io(&text, &mut stats);
    }
    stats.blkio.psi = fs::read_optional(dir, "io.pressure")?.map(|t| parse_psi(&t));
    for (name, kb) in hugepage_sizes() {
        let prefix = format!("hugetlb.{}", hugepage_file_name(kb));
        if !fs::exists(dir, &format!("{prefix}.current")) {
            continue;
        }
        let events = fs::read_optional(dir, &format!("{prefix}.events"))?.unwrap_or_default();
        let entry = Hugetlb {
            usage: fs::read_u64(dir, &format!("{prefix}.current"))?,
            max: 0,
            failcnt: fs::flat_keyed_value(&events, "max").unwrap_or(0),
        };
        stats.hugetlb.insert(name, entry);
    }
    Ok(stats)
}

/// cpu.stat is in microseconds; runc reports nanoseconds.
fn cpu(text: &str, stats: &mut Stats) {
    let micros = |key: &str| fs::flat_keyed_value(text, key).unwrap_or(0) * 1000;
    stats.cpu.usage.total = micros("usage_usec");
    stats.cpu.usage.user = micros("user_usec");
    stats.cpu.usage.kernel = micros("system_usec");
    let t = &mut stats.cpu.throttling;
    t.periods = fs::flat_keyed_value(text, "nr_periods").unwrap_or(0);
    t.throttled_periods = fs::flat_keyed_value(text, "nr_throttled").unwrap_or(0);
    t.throttled_time = micros("throttled_usec");
}

/// runc's mapping: cache = "file", swap = swap + memory (v1's memsw).
fn memory(dir: &Path, stat: &str) -> Result<Memory> {
    let raw: BTreeMap<String, u64> = fs::parse_flat_keyed(stat).into_iter().collect();
    let events = fs::read_optional(dir, "memory.events")?.unwrap_or_default();
    let usage = MemoryEntry {
        limit: fs::read_u64(dir, "memory.max")?,
        usage: fs::read_u64(dir, "memory.current")?,
        max: fs::read_u64_or_zero(dir, "memory.peak")?,
        failcnt: fs::flat_keyed_value(&events, "max").unwrap_or(0),
    };
    let mut swap = MemoryEntry {
        limit: fs::read_u64_or_zero(dir, "memory.swap.max")?,
        usage: fs::read_u64_or_zero(dir, "memory.swap.current")?,
        max: 0,
        failcnt: 0,
    };
    swap.usage += usage.usage;
    if swap.limit != u64::MAX {
        swap.limit = swap.limit.saturating_add(usage.limit);
    }
    Ok(Memory {
        cache: raw.get("file").copied().unwrap_or(0),
        usage,
        swap,
        raw,
        ..Memory::default()
    })
}

/// io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0".
fn io(text: &str, stats: &mut Stats) {
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some((major, minor)) = words.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for word in words {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            let (list, op) = match key {
                "rbytes" => (&mut stats.blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut stats.blkio.io_service_bytes_recursive, "Write"),
                "rios" => (&mut stats.blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut stats.blkio.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value: value.parse().unwrap_or(0),
            });
        }
    }
}

/// Huge page sizes the kernel supports: ("2MB", 2048) pairs.
pub(crate) fn hugepage_sizes() -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut sizes: Vec<(String, u64)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some((hugepage_file_name(kb), kb))
        })
        .collect();
    sizes.sort_by_key(|(_, kb)| *kb);
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_cpu_stat_to_nanoseconds() {
        let mut stats = Stats::default();
        cpu(
            "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 7\nnr_throttled 1\nthrottled_usec 4\n",
            &mut stats,
        );
        assert_eq!(stats.cpu.usage.total, 5000);
        assert_eq!(stats.cpu.usage.kernel, 2000);
        assert_eq!(stats.cpu.throttling.periods, 7);
        assert_eq!(stats.cpu.throttling.throttled_time, 4000);
    }

    #[test]
    fn maps_io_stat() {
        let mut stats = Stats::default();
        io(
            "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
            &mut stats,
        );
        let bytes = &stats.blkio.io_service_bytes_recursive;
        assert_eq!(bytes.len(), 2);
        assert_eq!((bytes[1].op.as_str(), bytes[1].value), ("Write", 20));
        assert_eq!(stats.blkio.io_serviced_recursive[0].value, 1);
    }
}
