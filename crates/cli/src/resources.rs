//! The resource flags of `run`/`create` (memory, swap, CPU, cpusets, pids, block I/O,
//! ulimits, devices, sysctls, `/dev/shm`, OOM settings) as HostConfig fields, and the
//! seccomp profile file the docker CLI reads for `--security-opt seccomp=<file>`.

use serde_json::{Value, json};

use crate::CliError;
use crate::containers::parse_bytes;

/// The limits `run`/`create` and `update` share (`update` changes them live).
#[derive(clap::Args, Default)]
pub struct LimitArgs {
    /// Memory limit
    #[arg(short = 'm', long = "memory")]
    memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap")]
    memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long = "cpus")]
    cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    cpu_period: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
}

/// The resource flags of `run`/`create`.
#[derive(clap::Args, Default)]
pub struct ResourceArgs {
    #[command(flatten)]
    limits: LimitArgs,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long = "memory-swappiness", allow_hyphen_values = true)]
    memory_swappiness: Option<i64>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    oom_score_adj: Option<i64>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long = "device-read-bps")]
    device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long = "device-write-bps")]
    device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device
    #[arg(long = "device-read-iops")]
    device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long = "device-write-iops")]
    device_write_iops: Vec<String>,
    /// Ulimit options
    #[arg(long = "ulimit")]
    ulimit: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    shm_size: Option<String>,
    /// Add a host device to the container
    #[arg(long = "device")]
    device: Vec<String>,
    /// Sysctl options
    #[arg(long = "sysctl")]
    sysctl: Vec<String>,
}

fn usage_error(message: String) -> CliError {
    CliError {
        message: format!("berth: {message}\n\nRun 'berth run --help' for more information"),
        code: 125,
    }
}

/// `--ulimit nofile=1024[:2048]` as Docker's `{"Name", "Soft", "Hard"}`.
fn ulimit(s: &str) -> Result<Value, CliError> {
    let bad = || {
        usage_error(format!(
            "invalid argument {s:?} for \"--ulimit\" flag: invalid ulimit argument: {s}"
        ))
    };
    let (name, limits) = s.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let (soft, hard): (i64, i64) = (
        soft.parse().map_err(|_| bad())?,
        hard.parse().map_err(|_| bad())?,
    );
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

/// `--device /dev/x[:/dev/y][:rwm]` as Docker's device mapping.
fn device(s: &str) -> Result<Value, CliError> {
    let parts: Vec<&str> = s.split(':').collect();
    let is_mode = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let (host, inside, mode) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, m] if is_mode(m) => (*h, *h, *m),
        [h, c] => (*h, *c, "rwm"),
        [h, c, m] if is_mode(m) => (*h, *c, *m),
        _ => {
            return Err(usage_error(format!(
                "invalid argument {s:?} for \"--device\" flag: invalid device specification: {s}"
            )));
        }
    };
    Ok(json!({"PathOnHost": host, "PathInContainer": inside, "CgroupPermissions": mode}))
}

/// `--device-read-bps /dev/sda:1mb` as `{"Path", "Rate"}`.
fn throttle(flag: &str, s: &str, bytes: bool) -> Result<Value, CliError> {
    let bad = || {
        usage_error(format!(
            "invalid argument {s:?} for \"--{flag}\" flag: bad format: {s}"
        ))
    };
    let (path, rate) = s.rsplit_once(':').ok_or_else(bad)?;
    let rate = if bytes {
        parse_bytes(rate).map_err(|_| bad())?
    } else {
        rate.parse().map_err(|_| bad())?
    };
    Ok(json!({"Path": path, "Rate": rate}))
}

/// Writes the limit flags into `target` (a HostConfig, or an update request, whose keys
/// are the same).
pub fn apply_limits(a: &LimitArgs, target: &mut Value) -> Result<(), CliError> {
    for (key, v) in [
        ("Memory", &a.memory),
        ("MemoryReservation", &a.memory_reservation),
    ] {
        if let Some(v) = v {
            target[key] = json!(parse_bytes(v)?);
        }
    }
    if let Some(m) = &a.memory_swap {
        target["MemorySwap"] = json!(if m == "-1" { -1 } else { parse_bytes(m)? });
    }
    if let Some(c) = a.cpus {
        target["NanoCpus"] = json!((c * 1e9) as i64);
    }
    for (key, v) in [
        ("CpuShares", a.cpu_shares),
        ("CpuQuota", a.cpu_quota),
        ("CpuPeriod", a.cpu_period),
        ("PidsLimit", a.pids_limit),
        ("BlkioWeight", a.blkio_weight.map(i64::from)),
    ] {
        if let Some(v) = v {
            target[key] = json!(v);
        }
    }
    for (key, v) in [
        ("CpusetCpus", &a.cpuset_cpus),
        ("CpusetMems", &a.cpuset_mems),
    ] {
        if let Some(v) = v {
            target[key] = json!(v);
        }
    }
    Ok(())
}

/// Writes the flags into a create body's HostConfig.
pub fn apply(a: &ResourceArgs, body: &mut Value) -> Result<(), CliError> {
    let host = &mut body["HostConfig"];
    apply_limits(&a.limits, host)?;
    if let Some(v) = &a.shm_size {
        host["ShmSize"] = json!(parse_bytes(v)?);
    }
    for (key, v) in [
        ("MemorySwappiness", a.memory_swappiness),
        ("OomScoreAdj", a.oom_score_adj),
    ] {
        if let Some(v) = v {
            host[key] = json!(v);
        }
    }
    if a.oom_kill_disable {
        host["OomKillDisable"] = json!(true);
    }
    for (key, flag, list, bytes) in [
        (
            "BlkioDeviceReadBps",
            "device-read-bps",
            &a.device_read_bps,
            true,
        ),
        (
            "BlkioDeviceWriteBps",
            "device-write-bps",
            &a.device_write_bps,
            true,
        ),
        (
            "BlkioDeviceReadIOps",
            "device-read-iops",
            &a.device_read_iops,
            false,
        ),
        (
            "BlkioDeviceWriteIOps",
            "device-write-iops",
            &a.device_write_iops,
            false,
        ),
    ] {
        if !list.is_empty() {
            host[key] = list
                .iter()
                .map(|s| throttle(flag, s, bytes))
                .collect::<Result<_, _>>()?;
        }
    }
    if !a.ulimit.is_empty() {
        host["Ulimits"] = a
            .ulimit
            .iter()
            .map(|u| ulimit(u))
            .collect::<Result<_, _>>()?;
    }
    if !a.device.is_empty() {
        host["Devices"] = a
            .device
            .iter()
            .map(|d| device(d))
            .collect::<Result<_, _>>()?;
    }
    if !a.sysctl.is_empty() {
        let mut map = serde_json::Map::new();
        for s in &a.sysctl {
            let not_allowed = || {
                usage_error(format!(
                    "invalid argument {s:?} for \"--sysctl\" flag: sysctl '{s}' is not allowed"
                ))
            };
            let (k, v) = s.split_once('=').ok_or_else(not_allowed)?;
            if berth_types::sysctl::namespace_of(k).is_none() {
                return Err(not_allowed());
            }
            map.insert(k.to_string(), json!(v));
        }
        host["Sysctls"] = Value::Object(map);
    }
    Ok(())
}

/// `--security-opt` values as sent: a seccomp profile given as a file is sent as its
/// compact JSON, as the docker CLI does.
pub fn security_opts(opts: &[String]) -> Result<Vec<String>, CliError> {
    opts.iter()
        .map(|o| {
            let Some(path) = o
                .strip_prefix("seccomp=")
                .or_else(|| o.strip_prefix("seccomp:"))
            else {
                return Ok(o.clone());
            };
            if path == "unconfined" || path == "builtin" {
                return Ok(format!("seccomp={path}"));
            }
            let text = std::fs::read_to_string(path).map_err(|e| {
                usage_error(format!("opening seccomp profile ({path}) failed: {e}"))
            })?;
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                usage_error(format!(
                    "compacting json for seccomp profile ({path}) failed: {e}"
                ))
            })?;
            Ok(format!("seccomp={v}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_like_the_docker_clis() {
        assert_eq!(
            ulimit("nofile=100:200").unwrap(),
            json!({"Name": "nofile", "Soft": 100, "Hard": 200})
        );
        assert_eq!(ulimit("nproc=50").unwrap()["Hard"], 50);
        assert!(ulimit("nofile").is_err());
        assert_eq!(
            device("/dev/null:/dev/n:r").unwrap(),
            json!({"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "r"})
        );
        assert_eq!(
            device("/dev/null:rw").unwrap()["PathInContainer"],
            "/dev/null"
        );
        assert_eq!(
            throttle("x", "/dev/sda:1mb", true).unwrap()["Rate"],
            1 << 20
        );
    }
}
