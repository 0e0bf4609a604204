//! Reading [`Stats`] from cgroup v1 files, as runc's fs driver does.

use std::path::Path;

use crate::convert::{hugepage_file_name, parse_cpu_list};
use crate::error::Result;
use crate::fs;
use crate::stats::{Blkio, BlkioEntry, CpuSet, Hugetlb, Memory, MemoryEntry, Stats};
use crate::v1::V1;

/// cpuacct.stat counts in USER_HZ ticks, which Linux fixes at 100 for user
/// space on every architecture we run on (runc hard-codes it too).
const NANOS_PER_TICK: u64 = 1_000_000_000 / 100;

/// Collect everything the mounted hierarchies offer.
pub(crate) fn collect(v1: &V1) -> Result<Stats> {
    let mut stats = Stats::default();
    if let Some(dir) = v1.dir("cpuacct") {
        cpu_usage(dir, &mut stats)?;
    }
    if let Some(dir) = v1.dir("cpu") {
        let text = fs::read(dir, "cpu.stat")?;
        let t = &mut stats.cpu.throttling;
        t.periods = fs::flat_keyed_value(&text, "nr_periods").unwrap_or(0);
        t.throttled_periods = fs::flat_keyed_value(&text, "nr_throttled").unwrap_or(0);
        t.throttled_time = fs::flat_keyed_value(&text, "throttled_time").unwrap_or(0);
    }
    if let Some(dir) = v1.dir("cpuset") {
        stats.cpuset = cpuset(dir)?;
    }
    if let Some(dir) = v1.dir("memory") {
        stats.memory = memory(dir)?;
    }
    if let Some(dir) = v1.dir("pids") {
        stats.pids.current = fs::read_u64(dir, "pids.current")?;
        // runc reports "max" (no limit) as 0.
        stats.pids.limit = match fs::read_u64(dir, "pids.max")? {
            u64::MAX => 0,
            limit => limit,
        };
    }
    if let Some(dir) = v1.dir("blkio") {
        stats.blkio = blkio(dir)?;
    }
    if let Some(dir) = v1.dir("hugetlb") {
        for (name, kb) in crate::stats_v2::hugepage_sizes() {
            let prefix = format!("hugetlb.{}", hugepage_file_name(kb));
            let entry = Hugetlb {
                usage: fs::read_u64_or_zero(dir, &format!("{prefix}.usage_in_bytes"))?,
                max: fs::read_u64_or_zero(dir, &format!("{prefix}.max_usage_in_bytes"))?,
                failcnt: fs::read_u64_or_zero(dir, &format!("{prefix}.failcnt"))?,
            };
            stats.hugetlb.insert(name, entry);
        }
    }
    Ok(stats)
}

fn cpu_usage(dir: &Path, stats: &mut Stats) -> Result<()> {
    let usage = &mut stats.cpu.usage;
    usage.total = fs::read_u64(dir, "cpuacct.usage")?;
    usage.percpu = number_list(fs::read_optional(dir, "cpuacct.usage_percpu")?);
    usage.percpu_kernel = number_list(fs::read_optional(dir, "cpuacct.usage_percpu_sys")?);
    usage.percpu_user = number_list(fs::read_optional(dir, "cpuacct.usage_percpu_user")?);
    let text = fs::read(dir, "cpuacct.stat")?;
    usage.user = fs::flat_keyed_value(&text, "user").unwrap_or(0) * NANOS_PER_TICK;
    usage.kernel = fs::flat_keyed_value(&text, "system").unwrap_or(0) * NANOS_PER_TICK;
    Ok(())
}

fn number_list(text: Option<String>) -> Vec<u64> {
    text.unwrap_or_default()
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}

fn cpuset(dir: &Path) -> Result<CpuSet> {
    let flag = |file: &str| fs::read_u64_or_zero(dir, file);
    Ok(CpuSet {
        cpus: parse_cpu_list(&fs::read(dir, "cpuset.cpus")?).unwrap_or_default(),
        mems: parse_cpu_list(&fs::read(dir, "cpuset.mems")?).unwrap_or_default(),
        cpu_exclusive: flag("cpuset.cpu_exclusive")?,
        mem_hardwall: flag("cpuset.mem_hardwall")?,
        mem_exclusive: flag("cpuset.mem_exclusive")?,
        memory_migrate: flag("cpuset.memory_migrate")?,
        memory_spread_page: flag("cpuset.memory_spread_page")?,
        memory_spread_slab: flag("cpuset.memory_spread_slab")?,
        memory_pressure: flag("cpuset.memory_pressure")?,
        sched_load_balance: flag("cpuset.sched_load_balance")?,
        sched_relax_domain_level: fs::read_optional(dir, "cpuset.sched_relax_domain_level")?
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0),
    })
}

fn memory(dir: &Path) -> Result<Memory> {
    let raw: std::collections::BTreeMap<String, u64> =
        fs::parse_flat_keyed(&fs::read(dir, "memory.stat")?)
            .into_iter()
            .collect();
    Ok(Memory {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage: memory_entry(dir, "memory")?,
        swap: memory_entry(dir, "memory.memsw")?,
        kernel: memory_entry(dir, "memory.kmem")?,
        kernel_tcp: memory_entry(dir, "memory.kmem.tcp")?,
        raw,
        psi: None,
    })
}

/// usage/max/failcnt/limit for one memory counter; absent counters (no swap
/// accounting, no kmem on new kernels) read as zeros, as in runc.
fn memory_entry(dir: &Path, prefix: &str) -> Result<MemoryEntry> {
    Ok(MemoryEntry {
        limit: fs::read_u64_or_zero(dir, &format!("{prefix}.limit_in_bytes"))?,
        usage: fs::read_u64_or_zero(dir, &format!("{prefix}.usage_in_bytes"))?,
        max: fs::read_u64_or_zero(dir, &format!("{prefix}.max_usage_in_bytes"))?,
        failcnt: fs::read_u64_or_zero(dir, &format!("{prefix}.failcnt"))?,
    })
}

/// runc's preference: CFQ's full set, then BFQ's, then the throttle
/// counters that every kernel has.
fn blkio(dir: &Path) -> Result<Blkio> {
    let read = |file: &str| -> Result<Vec<BlkioEntry>> {
        Ok(parse_blkio(
            &fs::read_optional(dir, file)?.unwrap_or_default(),
        ))
    };
    let mut out = Blkio::default();
    if fs::exists(dir, "blkio.io_service_bytes_recursive") {
        out.io_service_bytes_recursive = read("blkio.io_service_bytes_recursive")?;
        out.io_serviced_recursive = read("blkio.io_serviced_recursive")?;
        out.io_queue_recursive = read("blkio.io_queued_recursive")?;
        out.io_service_time_recursive = read("blkio.io_service_time_recursive")?;
        out.io_wait_time_recursive = read("blkio.io_wait_time_recursive")?;
        out.io_merged_recursive = read("blkio.io_merged_recursive")?;
        out.io_time_recursive = read("blkio.time_recursive")?;
        out.sectors_recursive = read("blkio.sectors_recursive")?;
    } else if fs::exists(dir, "blkio.bfq.io_service_bytes_recursive") {
        out.io_service_bytes_recursive = read("blkio.bfq.io_service_bytes_recursive")?;
        out.io_serviced_recursive = read("blkio.bfq.io_serviced_recursive")?;
    } else {
        out.io_service_bytes_recursive = read("blkio.throttle.io_service_bytes_recursive")?;
        out.io_serviced_recursive = read("blkio.throttle.io_serviced_recursive")?;
    }
    Ok(out)
}

/// Lines look like "8:0 Read 4096" or "8:0 4096"; "Total N" is skipped.
pub(crate) fn parse_blkio(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (major, minor) = fields.first()?.split_once(':')?;
            let (op, value) = match fields.as_slice() {
                [_, op, value] => (op.to_string(), value),
                [_, value] => (String::new(), value),
                _ => return None,
            };
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op,
                value: value.parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blkio_lines() {
        let entries = parse_blkio("8:0 Read 4096\n8:0 Write 0\n8:16 12\nTotal 4096\n");
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].op, "Read");
        assert_eq!(entries[0].value, 4096);
        assert_eq!(entries[2].minor, 16);
        assert_eq!(entries[2].op, "");
    }
}
