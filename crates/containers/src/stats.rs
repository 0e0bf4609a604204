//! `GET /containers/{id}/stats`: Docker's stats JSON from the container's cgroup, the
//! host's CPU time and the container's network interfaces.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::{ContainerService, Result};

/// Host CPU time in nanoseconds (the `cpu` line of /proc/stat), Docker's
/// `system_cpu_usage`.
pub(crate) fn system_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(7)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * (1_000_000_000 / hz)
}

fn online_cpus() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

pub(crate) fn host_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// The container's interfaces other than `lo`, from /proc/<pid>/net/dev (which shows
/// the network namespace of that process).
fn networks(pid: i32) -> Value {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    let mut out = serde_json::Map::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 16 {
            continue;
        }
        out.insert(
            name.to_string(),
            json!({"rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                   "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11]}),
        );
    }
    Value::Object(out)
}

/// Bytes received and sent by the container's interfaces other than `lo`.
pub(crate) fn network_totals(pid: i32) -> (u64, u64) {
    let nets = networks(pid);
    nets.as_object()
        .into_iter()
        .flatten()
        .fold((0, 0), |(rx, tx), (_, v)| {
            (
                rx + v["rx_bytes"].as_u64().unwrap_or(0),
                tx + v["tx_bytes"].as_u64().unwrap_or(0),
            )
        })
}

/// Bytes read and written, over all devices.
pub(crate) fn blkio_totals(s: &berth_cgroups::Stats) -> (u64, u64) {
    s.blkio
        .io_service_bytes_recursive
        .iter()
        .fold((0, 0), |(r, w), e| {
            match e.op.to_ascii_lowercase().as_str() {
                "read" => (r + e.value, w),
                "write" => (r, w + e.value),
                _ => (r, w),
            }
        })
}

/// Memory in use without the page cache the kernel can drop, as the docker CLI counts
/// it.
pub(crate) fn memory_without_cache(s: &berth_cgroups::Stats) -> u64 {
    let usage = s.memory.usage.usage;
    let inactive = ["total_inactive_file", "inactive_file"]
        .iter()
        .find_map(|k| s.memory.raw.get(*k).copied())
        .unwrap_or(0);
    if inactive < usage {
        usage - inactive
    } else {
        usage
    }
}

/// The memory limit as `stats` reports it: the host's memory (`host_memory`) when
/// unlimited.
pub(crate) fn memory_limit(s: &berth_cgroups::Stats, host_memory: u64) -> u64 {
    match s.memory.usage.limit {
        0 => host_memory,
        l if l >= u64::MAX / 2 || l >= host_memory && host_memory > 0 => host_memory,
        l => l,
    }
}

fn cpu_json(s: Option<&berth_cgroups::Stats>) -> Value {
    let Some(s) = s else {
        return json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                      "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}});
    };
    let u = &s.cpu.usage;
    let mut usage = json!({"total_usage": u.total, "usage_in_kernelmode": u.kernel, "usage_in_usermode": u.user});
    if !u.percpu.is_empty() {
        usage["percpu_usage"] = json!(u.percpu);
    }
    json!({
        "cpu_usage": usage,
        "system_cpu_usage": system_cpu_ns(),
        "online_cpus": online_cpus(),
        "throttling_data": {"periods": s.cpu.throttling.periods,
            "throttled_periods": s.cpu.throttling.throttled_periods,
            "throttled_time": s.cpu.throttling.throttled_time}
    })
}

fn memory_json(s: &berth_cgroups::Stats) -> Value {
    let m = &s.memory;
    // No limit reads as a huge number: Docker shows the host's memory then.
    let limit = memory_limit(s, host_memory());
    json!({"usage": m.usage.usage, "max_usage": m.usage.max, "failcnt": m.usage.failcnt,
           "limit": limit, "stats": m.raw})
}

fn blkio_json(s: &berth_cgroups::Stats) -> Value {
    let entries = |list: &[berth_cgroups::BlkioEntry]| -> Value {
        list.iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect()
    };
    json!({
        "io_service_bytes_recursive": entries(&s.blkio.io_service_bytes_recursive),
        "io_serviced_recursive": entries(&s.blkio.io_serviced_recursive),
        "io_queue_recursive": null, "io_service_time_recursive": null,
        "io_wait_time_recursive": null, "io_merged_recursive": null,
        "io_time_recursive": null, "sectors_recursive": null
    })
}

impl ContainerService {
    /// One sample of `stats` in Docker's shape; `previous` fills `precpu_stats` and
    /// `preread` (empty ones when none).
    fn stats_sample(&self, name: &str, previous: Option<&Value>) -> Result<Value> {
        let rec = self.get(name)?;
        let running = matches!(rec.state.status.as_str(), "running" | "paused");
        let cg = running
            .then(|| self.runtime_container(&rec.id).ok()?.stats().ok())
            .flatten();
        let zero_time = "0001-01-01T00:00:00Z";
        let mut v = json!({
            "read": if running { berth_types::time::now_rfc3339() } else { zero_time.into() },
            "preread": previous.map_or(json!(zero_time), |p| p["read"].clone()),
            "name": format!("/{}", rec.name),
            "id": rec.id,
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": cpu_json(cg.as_ref()),
            "precpu_stats": previous.map_or_else(|| cpu_json(None), |p| p["cpu_stats"].clone()),
            "pids_stats": {"current": cg.as_ref().map_or(0, |s| s.pids.current)},
            "memory_stats": cg.as_ref().map_or(json!({}), memory_json),
            "blkio_stats": cg.as_ref().map_or(json!({}), blkio_json),
        });
        if let Some(s) = &cg
            && s.pids.limit > 0
            && s.pids.limit < u64::MAX / 2
        {
            v["pids_stats"]["limit"] = json!(s.pids.limit);
        }
        if running && rec.state.pid > 0 {
            v["networks"] = networks(rec.state.pid);
        }
        Ok(v)
    }

    /// The sampler's last sample of a running container, as `precpu_stats` and
    /// `preread` need it, when it is at most two seconds old.
    fn recent_sample(&self, name: &str) -> Option<Value> {
        let rec = self.get(name).ok()?;
        let raw = self.history.last_raw(&rec.id, Duration::from_secs(2))?;
        let read = std::time::UNIX_EPOCH + Duration::from_nanos(raw.time_ns);
        Some(json!({
            "read": berth_types::time::rfc3339(read),
            "cpu_stats": {
                "cpu_usage": {"total_usage": raw.cpu_ns},
                "system_cpu_usage": raw.system_ns,
                "online_cpus": online_cpus(),
            }
        }))
    }

    /// `GET /containers/{id}/stats`: with `stream`, a sample a second to `emit` until it
    /// returns false or the container stops; else one sample whose `precpu_stats` is a
    /// moment earlier (none with `one_shot`), so clients can compute CPU use.
    pub fn stats(
        &self,
        name: &str,
        stream: bool,
        one_shot: bool,
        emit: &mut dyn FnMut(Value) -> bool,
    ) -> Result<()> {
        let mut previous = if stream || one_shot {
            None
        } else if let Some(raw) = self.recent_sample(name) {
            // The sampler's last look serves as the earlier moment: no wait.
            Some(raw)
        } else {
            let first = self.stats_sample(name, None)?;
            std::thread::sleep(Duration::from_millis(250));
            Some(first)
        };
        loop {
            let started = SystemTime::now();
            let sample = self.stats_sample(name, previous.as_ref())?;
            let stopped = sample["read"] == "0001-01-01T00:00:00Z";
            if !emit(sample.clone()) || !stream || stopped {
                return Ok(());
            }
            previous = Some(sample);
            let spent = started.elapsed().unwrap_or_default();
            std::thread::sleep(Duration::from_secs(1).saturating_sub(spent));
        }
    }
}
