//! A container's resources as Docker's HostConfig asks for them: cgroup limits (memory,
//! swap, CPU, cpusets, pids, block I/O), devices, rlimits, sysctls, `/dev/shm`'s size and
//! the OOM score, checked at create with dockerd's messages and turned into the OCI
//! spec's fields at start.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use serde_json::{Value, json};

use crate::{Error, Result};

/// The smallest memory limit dockerd accepts (6 MiB).
const MIN_MEMORY: i64 = 6 << 20;

fn int(host: &Value, key: &str) -> i64 {
    host[key].as_i64().unwrap_or(0)
}

/// Checks the HostConfig's resources as dockerd does at create, and adapts it to the
/// host as dockerd does: what the kernel cannot do is discarded with a warning rather
/// than refused. Returns the HostConfig to store and the warnings for the client.
pub fn adapt(host: &Value) -> Result<(Value, Vec<String>)> {
    let mut host = host.clone();
    let mut warnings = Vec::new();
    let bad = |m: String| Err(Error::InvalidInput(m));
    let (memory, swap) = (int(&host, "Memory"), int(&host, "MemorySwap"));
    if memory > 0 && memory < MIN_MEMORY {
        return bad("Minimum memory limit allowed is 6MB".into());
    }
    if swap > 0 && memory == 0 {
        return bad(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        );
    }
    if swap > 0 && swap < memory {
        return bad(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        );
    }
    let reservation = int(&host, "MemoryReservation");
    if reservation > 0 && memory > 0 && memory < reservation {
        return bad(
            "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
        );
    }
    if let Some(s) = host["MemorySwappiness"].as_i64()
        && s != -1
        && !(0..=100).contains(&s)
    {
        return bad(format!(
            "Invalid value: {s}, valid memory swappiness range is 0-100"
        ));
    }
    if host["OomKillDisable"].as_bool() == Some(true) && memory == 0 {
        warnings.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".into());
    }
    let adj = int(&host, "OomScoreAdj");
    if !(-1000..=1000).contains(&adj) {
        return bad(format!(
            "Invalid value {adj}, range for oom score adj is [-1000, 1000]"
        ));
    }
    check_cpus(&host)?;
    let weight = int(&host, "BlkioWeight");
    if weight > 0 && !(10..=1000).contains(&weight) {
        return bad("Range of blkio weight is from 10 to 1000".into());
    }
    if weight > 0 && !host_has_blkio_weight() {
        warnings.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".into());
        host["BlkioWeight"] = json!(0);
    }
    if swap != 0 && memory > 0 && !host_has_swap_limit() {
        warnings.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".into());
        host["MemorySwap"] = json!(-1);
    }
    rlimits(&host)?;
    devices(&host)?;
    check_sysctls(&host)?;
    if int(&host, "ShmSize") < 0 {
        return bad("SHM size can not be less than 0".into());
    }
    Ok((host, warnings))
}

fn check_cpus(host: &Value) -> Result<()> {
    let nano = int(host, "NanoCpus");
    if nano > 0 && (int(host, "CpuPeriod") > 0 || int(host, "CpuQuota") > 0) {
        return Err(Error::InvalidInput(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
        ));
    }
    let online = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    if nano < 0 || nano > online * 1_000_000_000 {
        return Err(Error::InvalidInput(format!(
            "Range of CPUs is from 0.01 to {online}.00, as there are only {online} CPUs available"
        )));
    }
    for (key, file, what) in [
        ("CpusetCpus", "/sys/devices/system/cpu/online", "CPUs"),
        (
            "CpusetMems",
            "/sys/devices/system/node/online",
            "memory nodes",
        ),
    ] {
        let Some(want) = host[key].as_str().filter(|s| !s.is_empty()) else {
            continue;
        };
        let available = std::fs::read_to_string(file).unwrap_or_else(|_| "0".into());
        let (Some(w), Some(a)) = (parse_list(want), parse_list(available.trim())) else {
            return Err(Error::InvalidInput(format!(
                "Invalid value {want} for cpuset {}",
                &key[6..].to_ascii_lowercase()
            )));
        };
        if !w.iter().all(|n| a.contains(n)) {
            return Err(Error::InvalidInput(format!(
                "Requested {what} are not available - requested {want}, available: {}",
                available.trim()
            )));
        }
    }
    Ok(())
}

/// A cpuset list (`0-2,4`) as numbers; `None` when malformed.
fn parse_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if a > b {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    Some(out)
}

fn host_has_blkio_weight() -> bool {
    [
        "/sys/fs/cgroup/blkio/blkio.weight",
        "/sys/fs/cgroup/blkio/blkio.bfq.weight",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
        || (std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
            && std::fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control")
                .is_ok_and(|c| c.split_whitespace().any(|x| x == "io")))
}

fn host_has_swap_limit() -> bool {
    std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The OCI resources (cgroup limits) the HostConfig asks for.
pub fn resources(host: &Value) -> Value {
    let rules = devices(host).map(|(_, rules)| rules).unwrap_or_default();
    resources_with(host, rules)
}

/// [`resources`] with the cgroup rules of `--device` already looked up (the spec needs
/// the device nodes from the same lookup).
pub(crate) fn resources_with(host: &Value, device_rules: Vec<Value>) -> Value {
    let mut r = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if host["Privileged"].as_bool() == Some(true) {
        r["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    let pos = |k: &str| host[k].as_i64().filter(|v| *v > 0);
    let mut memory = serde_json::Map::new();
    if let Some(m) = pos("Memory") {
        memory.insert("limit".into(), json!(m));
        if let Some(s) = host["MemorySwap"].as_i64().filter(|v| *v != 0) {
            memory.insert("swap".into(), json!(s));
        }
    }
    if let Some(m) = pos("MemoryReservation") {
        memory.insert("reservation".into(), json!(m));
    }
    if let Some(s) = host["MemorySwappiness"].as_i64().filter(|s| *s >= 0) {
        memory.insert("swappiness".into(), json!(s));
    }
    if host["OomKillDisable"].as_bool() == Some(true) {
        memory.insert("disableOOMKiller".into(), json!(true));
    }
    if !memory.is_empty() {
        r["memory"] = Value::Object(memory);
    }
    if let Some(p) = host["PidsLimit"].as_i64().filter(|v| *v != 0) {
        r["pids"] = json!({"limit": p});
    }
    let mut cpu = serde_json::Map::new();
    if let Some(s) = pos("CpuShares") {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(n) = pos("NanoCpus") {
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!(n / 10_000));
    }
    if let Some(q) = pos("CpuQuota") {
        cpu.insert("quota".into(), json!(q));
    }
    if let Some(p) = pos("CpuPeriod") {
        cpu.insert("period".into(), json!(p));
    }
    for (key, field) in [("CpusetCpus", "cpus"), ("CpusetMems", "mems")] {
        if let Some(c) = host[key].as_str().filter(|s| !s.is_empty()) {
            cpu.insert(field.into(), json!(c));
        }
    }
    if !cpu.is_empty() {
        r["cpu"] = Value::Object(cpu);
    }
    let block_io = block_io(host);
    if !block_io.as_object().is_some_and(|o| o.is_empty()) {
        r["blockIO"] = block_io;
    }
    r["devices"]
        .as_array_mut()
        .expect("devices is a list")
        .extend(device_rules);
    r
}

/// Block I/O weight and throttles; devices named by path become major:minor.
fn block_io(host: &Value) -> Value {
    let mut b = serde_json::Map::new();
    if let Some(w) = host["BlkioWeight"].as_i64().filter(|w| *w > 0) {
        b.insert("weight".into(), json!(w));
    }
    let per_device = |key: &str, field: &str| -> Vec<Value> {
        host[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| {
                let (major, minor, _) = device_numbers(d["Path"].as_str()?).ok()?;
                let mut v = json!({"major": major, "minor": minor});
                v[field] = d[if field == "weight" { "Weight" } else { "Rate" }].clone();
                Some(v)
            })
            .collect()
    };
    for (key, oci, field) in [
        ("BlkioWeightDevice", "weightDevice", "weight"),
        ("BlkioDeviceReadBps", "throttleReadBpsDevice", "rate"),
        ("BlkioDeviceWriteBps", "throttleWriteBpsDevice", "rate"),
        ("BlkioDeviceReadIOps", "throttleReadIOPSDevice", "rate"),
        ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice", "rate"),
    ] {
        let list = per_device(key, field);
        if !list.is_empty() {
            b.insert(oci.into(), Value::Array(list));
        }
    }
    Value::Object(b)
}

/// (major, minor, "c" or "b") of a device node on the host.
fn device_numbers(path: &str) -> std::io::Result<(u32, u32, &'static str)> {
    let meta = std::fs::metadata(path)?;
    let kind = if meta.file_type().is_char_device() {
        "c"
    } else if meta.file_type().is_block_device() {
        "b"
    } else {
        return Err(std::io::Error::other("not a device node"));
    };
    let dev = meta.rdev();
    Ok((rustix::fs::major(dev), rustix::fs::minor(dev), kind))
}

/// `--device host[:container][:rwm]` as OCI `linux.devices` and cgroup rules.
pub fn devices(host: &Value) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut nodes = Vec::new();
    let mut rules = Vec::new();
    for d in host["Devices"].as_array().into_iter().flatten() {
        let on_host = d["PathOnHost"].as_str().unwrap_or("");
        let inside = d["PathInContainer"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or(on_host);
        let access = d["CgroupPermissions"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("rwm");
        if !access.chars().all(|c| "rwm".contains(c)) {
            return Err(Error::InvalidInput(format!(
                "invalid device mode: {access}"
            )));
        }
        let gathering = |e: std::io::Error| {
            Error::InvalidInput(format!(
                "error gathering device information while adding custom device \"{on_host}\": {e}"
            ))
        };
        let (major, minor, kind) = device_numbers(on_host).map_err(gathering)?;
        let meta = std::fs::metadata(on_host).map_err(gathering)?;
        nodes.push(json!({
            "path": inside, "type": kind, "major": major, "minor": minor,
            "fileMode": meta.mode() & 0o777, "uid": meta.uid(), "gid": meta.gid()
        }));
        rules.push(
            json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": access}),
        );
    }
    Ok((nodes, rules))
}

/// `--ulimit name=soft[:hard]` as OCI `process.rlimits`.
pub fn rlimits(host: &Value) -> Result<Vec<Value>> {
    const NAMES: &[&str] = &[
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    let mut out = Vec::new();
    for u in host["Ulimits"].as_array().into_iter().flatten() {
        let name = u["Name"].as_str().unwrap_or("");
        if !NAMES.contains(&name) {
            return Err(Error::InvalidInput(format!("invalid ulimit type: {name}")));
        }
        let (soft, hard) = (
            u["Soft"].as_i64().unwrap_or(0),
            u["Hard"].as_i64().unwrap_or(0),
        );
        if soft > hard {
            return Err(Error::InvalidInput(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )));
        }
        // -1 is "unlimited" (RLIM_INFINITY).
        let limit = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
        out.push(json!({
            "type": format!("RLIMIT_{}", name.to_ascii_uppercase()),
            "soft": limit(soft),
            "hard": limit(hard),
        }));
    }
    Ok(out)
}

/// Sysctls that live in the container's own namespaces, as dockerd allows them.
fn check_sysctls(host: &Value) -> Result<()> {
    use berth_types::sysctl::{Namespace, namespace_of};
    let host_net = host["NetworkMode"].as_str() == Some("host");
    for key in host["Sysctls"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        match namespace_of(key) {
            Some(Namespace::Network) if host_net => {
                return Err(Error::InvalidInput(format!(
                    "sysctl {key:?} not allowed in host network namespace"
                )));
            }
            Some(_) => {}
            None => {
                return Err(Error::InvalidInput(format!(
                    "sysctl {key:?} is not in a separate kernel namespace"
                )));
            }
        }
    }
    Ok(())
}

/// `--sysctl` as OCI `linux.sysctl`.
pub fn sysctls(host: &Value) -> Value {
    let map: serde_json::Map<String, Value> = host["Sysctls"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), json!(v))))
        .collect();
    Value::Object(map)
}

/// `/dev/shm`'s size: `--shm-size`, or Docker's 64 MiB.
pub fn shm_size(host: &Value) -> i64 {
    host["ShmSize"]
        .as_i64()
        .filter(|s| *s > 0)
        .unwrap_or(64 << 20)
}

/// `--security-opt no-new-privileges[:true|=true]`.
pub fn no_new_privileges(host: &Value) -> bool {
    host["SecurityOpt"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|o| {
            o == "no-new-privileges"
                || o == "no-new-privileges:true"
                || o == "no-new-privileges=true"
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_map_to_oci_resources() {
        let r = resources(&json!({
            "Memory": 64 << 20, "MemorySwap": 128 << 20, "MemoryReservation": 32 << 20,
            "MemorySwappiness": 10, "OomKillDisable": true, "CpuShares": 512,
            "CpusetCpus": "0", "CpusetMems": "0", "PidsLimit": 20, "BlkioWeight": 300,
            "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/nothing", "CgroupPermissions": "rw"}]
        }));
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["memory"]["swap"], 128 << 20);
        assert_eq!(r["memory"]["reservation"], 32 << 20);
        assert_eq!(r["memory"]["swappiness"], 10);
        assert_eq!(r["memory"]["disableOOMKiller"], true);
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["cpu"]["mems"], "0");
        assert_eq!(r["pids"]["limit"], 20);
        assert_eq!(r["blockIO"]["weight"], 300);
        assert_eq!(
            r["devices"][1],
            json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"})
        );
    }

    #[test]
    fn bad_values_get_dockerds_messages() {
        let err = |h: Value| adapt(&h).unwrap_err().to_string();
        assert!(err(json!({"Memory": 1024})).contains("Minimum memory limit allowed is 6MB"));
        assert!(
            err(json!({"Memory": 64 << 20, "MemorySwap": 32 << 20}))
                .contains("memoryswap limit should be larger")
        );
        assert!(err(json!({"OomScoreAdj": 1001})).contains("range for oom score adj"));
        assert!(err(json!({"CpusetCpus": "0-64"})).contains("Requested CPUs are not available"));
        assert!(
            err(json!({"NanoCpus": 1_000_000_000i64, "CpuQuota": 50000})).contains("Conflicting")
        );
        assert!(
            err(json!({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]}))
                .contains("soft limit")
        );
        assert!(err(json!({"Ulimits": [{"Name": "bogus"}]})).contains("invalid ulimit type"));
        assert!(err(json!({"Devices": [{"PathOnHost": "/dev/nope"}]})).contains("/dev/nope"));
        assert!(err(json!({"Sysctls": {"vm.swappiness": "1"}})).contains("not in a separate"));
        assert!(
            err(json!({"Sysctls": {"net.ipv4.ip_forward": "1"}, "NetworkMode": "host"}))
                .contains("host network namespace")
        );
        assert!(
            adapt(&json!({"Sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1"}})).is_ok()
        );
    }

    #[test]
    fn rlimits_and_lists() {
        assert_eq!(
            rlimits(&json!({"Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}]})).unwrap(),
            [json!({"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200})]
        );
        assert_eq!(parse_list("0-2,4"), Some(vec![0, 1, 2, 4]));
        assert_eq!(parse_list("2-1"), None);
    }
}
