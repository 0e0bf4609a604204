//! `update`: new resource limits for a live container, from `-r` JSON or runc's flags.

use std::path::PathBuf;

use anyhow::{Context, Result};
use berth_runtime::{Container, StateRoot};
use oci_spec::runtime::LinuxResources;
use serde_json::{Map, Value, json};

/// Flags of `update`.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// JSON file with linux.resources ("-" for stdin)
    #[arg(short, long)]
    resources: Option<PathBuf>,
    /// Block IO weight (10-1000)
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds
    #[arg(long = "cpu-quota")]
    cpu_quota: Option<i64>,
    /// CPU realtime period in microseconds
    #[arg(long = "cpu-rt-period")]
    cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds
    #[arg(long = "cpu-rt-runtime")]
    cpu_rt_runtime: Option<i64>,
    /// CPU shares
    #[arg(long = "cpu-share")]
    cpu_share: Option<u64>,
    /// CPUs to use (e.g. 0-2,4)
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes to use
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with k/m/g suffix)
    #[arg(long)]
    memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<String>,
    /// Memory plus swap limit (-1 for unlimited)
    #[arg(long = "memory-swap")]
    memory_swap: Option<String>,
    /// Maximum number of pids (-1 for unlimited)
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    /// Container id
    id: String,
}

/// Parses "512", "64k", "100m", "1g" (binary units, as runc's RAMInBytes) or "-1".
pub fn parse_bytes(s: &str) -> Result<i64> {
    let lower = s.trim().to_ascii_lowercase();
    if lower == "-1" {
        return Ok(-1);
    }
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let n: f64 = num.parse().with_context(|| format!("invalid size {s:?}"))?;
    let mult: f64 = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0f64.powi(4),
        _ => anyhow::bail!("invalid size {s:?}: use a number with an optional k, m, g or t suffix"),
    };
    Ok((n * mult) as i64)
}

fn set(map: &mut Map<String, Value>, section: &str, key: &str, v: Value) {
    let entry = map.entry(section).or_insert_with(|| json!({}));
    entry
        .as_object_mut()
        .expect("sections are objects")
        .insert(key.to_string(), v);
}

fn from_flags(a: &UpdateArgs) -> Result<Value> {
    let mut r = Map::new();
    if let Some(v) = a.blkio_weight {
        set(&mut r, "blockIO", "weight", json!(v));
    }
    let cpu = [
        ("period", a.cpu_period.map(|v| json!(v))),
        ("quota", a.cpu_quota.map(|v| json!(v))),
        ("realtimePeriod", a.cpu_rt_period.map(|v| json!(v))),
        ("realtimeRuntime", a.cpu_rt_runtime.map(|v| json!(v))),
        ("shares", a.cpu_share.map(|v| json!(v))),
        ("cpus", a.cpuset_cpus.clone().map(Value::from)),
        ("mems", a.cpuset_mems.clone().map(Value::from)),
    ];
    for (k, v) in cpu {
        if let Some(v) = v {
            set(&mut r, "cpu", k, v);
        }
    }
    for (k, v) in [
        ("limit", &a.memory),
        ("reservation", &a.memory_reservation),
        ("swap", &a.memory_swap),
    ] {
        if let Some(v) = v {
            set(&mut r, "memory", k, json!(parse_bytes(v)?));
        }
    }
    if let Some(v) = a.pids_limit {
        set(&mut r, "pids", "limit", json!(v));
    }
    Ok(Value::Object(r))
}

/// `update`.
pub fn update(root: &StateRoot, a: UpdateArgs) -> Result<()> {
    let value = match &a.resources {
        Some(p) if p.as_os_str() == "-" => {
            serde_json::from_reader(std::io::stdin()).context("parse resources from stdin")?
        }
        Some(p) => {
            let text = std::fs::read(p).with_context(|| format!("read {}", p.display()))?;
            serde_json::from_slice(&text).with_context(|| format!("parse {}", p.display()))?
        }
        None => from_flags(&a)?,
    };
    let res: LinuxResources = serde_json::from_value(value).context("invalid resources")?;
    Ok(Container::load(root, &a.id)?.update(&res)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert_eq!(parse_bytes("64k").unwrap(), 65536);
        assert_eq!(parse_bytes("100M").unwrap(), 100 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("12q").is_err());
    }
}
