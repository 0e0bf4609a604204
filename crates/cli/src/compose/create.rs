//! A service as the Engine API's create body (Config, HostConfig, NetworkingConfig),
//! with docker compose's labels and config hash, and its image name.

use berth_compose::Project;
use serde_json::{Map, Value, json};

use super::label;
use crate::CliError;

/// The image a service runs: its `image`, or `<project>-<service>` when it is built.
pub(crate) fn image_of(p: &Project, service: &str, s: &Value) -> String {
    s["image"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}-{service}", p.name))
}

/// A stable hash of the service's configuration (SHA-256 of its canonical JSON, whose
/// keys are sorted): a changed service is recreated.
pub(crate) fn config_hash(s: &Value) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A Go duration (`1m30s`) in nanoseconds.
fn nanos(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    berth_types::time::parse_go_duration(s).map(|secs| (secs * 1e9) as i64)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// `64m`, `1g`, `512` as bytes.
fn bytes(v: &Value) -> Result<Option<i64>, CliError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_i64()),
        Value::String(s) => crate::containers::parse_bytes(s).map(Some),
        _ => Err(CliError::new(format!("invalid size {v}"))),
    }
}

/// The engine name of a top-level network or volume.
fn engine_name(section: &Map<String, Value>, key: &str) -> String {
    section
        .get(key)
        .and_then(|v| v["name"].as_str())
        .unwrap_or(key)
        .to_string()
}

/// The create body for container `number` of `service`.
pub(crate) fn body(
    p: &Project,
    service: &str,
    number: u32,
    oneoff: bool,
) -> Result<Value, CliError> {
    let s = &p.services[service];
    let mut labels = s["labels"].as_object().cloned().unwrap_or_default();
    for (k, v) in [
        (label::PROJECT, p.name.clone()),
        (label::SERVICE, service.to_string()),
        (label::NUMBER, number.to_string()),
        (
            label::ONEOFF,
            if oneoff { "True" } else { "False" }.to_string(),
        ),
        (label::HASH, config_hash(s)),
        (label::WORKING_DIR, p.dir.display().to_string()),
        (
            label::CONFIG_FILES,
            p.files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        (label::VERSION, super::COMPOSE_VERSION.to_string()),
        (
            label::DEPENDS_ON,
            s["depends_on"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(d, c)| format!("{d}:{}:{}", c["condition"].as_str().unwrap_or(""), false))
                .collect::<Vec<_>>()
                .join(","),
        ),
    ] {
        labels.insert(k.to_string(), json!(v));
    }
    let env: Vec<String> = s["environment"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
        .collect();
    let mut config = json!({
        "Image": image_of(p, service, s),
        "Labels": labels,
        "Env": env,
        "Tty": s["tty"].as_bool().unwrap_or(false),
        "OpenStdin": s["stdin_open"].as_bool().unwrap_or(false),
    });
    for (key, api) in [("command", "Cmd"), ("entrypoint", "Entrypoint")] {
        if s[key].is_array() {
            config[api] = s[key].clone();
        }
    }
    for (key, api) in [
        ("working_dir", "WorkingDir"),
        ("user", "User"),
        ("hostname", "Hostname"),
        ("domainname", "Domainname"),
        ("stop_signal", "StopSignal"),
        ("mac_address", "MacAddress"),
    ] {
        if let Some(v) = s[key].as_str() {
            config[api] = json!(v);
        }
    }
    if let Some(g) = nanos(&s["stop_grace_period"]) {
        config["StopTimeout"] = json!(g / 1_000_000_000);
    }
    let expose: Map<String, Value> = s["expose"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str())
        .map(|e| {
            let e = if e.contains('/') {
                e.to_string()
            } else {
                format!("{e}/tcp")
            };
            (e, json!({}))
        })
        .collect();
    if !expose.is_empty() {
        config["ExposedPorts"] = Value::Object(expose);
    }
    if let Some(h) = s["healthcheck"].as_object() {
        let mut hc = Map::new();
        if h.get("disable").and_then(Value::as_bool) == Some(true) {
            hc.insert("Test".into(), json!(["NONE"]));
        } else if let Some(t) = h.get("test") {
            hc.insert("Test".into(), t.clone());
        }
        for (key, api) in [
            ("interval", "Interval"),
            ("timeout", "Timeout"),
            ("start_period", "StartPeriod"),
            ("start_interval", "StartInterval"),
        ] {
            if let Some(n) = h.get(key).and_then(nanos) {
                hc.insert(api.into(), json!(n));
            }
        }
        if let Some(r) = h.get("retries") {
            hc.insert("Retries".into(), r.clone());
        }
        config["Healthcheck"] = Value::Object(hc);
    }
    let host = host_config(p, s)?;
    config["HostConfig"] = host;
    // The first network at create; the others are connected after it.
    let nets = networks(p, service);
    if let Some((name, endpoint)) = nets.first() {
        if s["network_mode"].is_null() {
            config["HostConfig"]["NetworkMode"] = json!(name);
        }
        config["NetworkingConfig"] = json!({"EndpointsConfig": {name.clone(): endpoint}});
    }
    Ok(config)
}

/// The service's networks by engine name, each with its endpoint settings (aliases:
/// the service name and the ones the file adds), in a stable order.
pub(crate) fn networks(p: &Project, service: &str) -> Vec<(String, Value)> {
    let s = &p.services[service];
    if s["network_mode"].is_string() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (key, cfg) in s["networks"].as_object().into_iter().flatten() {
        let mut aliases = vec![json!(service)];
        aliases.extend(cfg["aliases"].as_array().cloned().unwrap_or_default());
        let mut endpoint = json!({"Aliases": aliases});
        if let Some(ip) = cfg["ipv4_address"].as_str() {
            endpoint["IPAMConfig"] = json!({"IPv4Address": ip});
        }
        out.push((engine_name(&p.networks, key), endpoint));
    }
    out
}

/// One `secrets:` or `configs:` entry of a service: what it refers to and where it goes.
struct FileRef<'a> {
    kind: &'static str,
    source: String,
    target: String,
    /// The top-level declaration (`file`, `environment`, `content`).
    decl: &'a Value,
    /// The service's entry (long syntax: `uid`, `gid`, `mode`).
    entry: &'a Value,
}

/// The service's secrets and configs with their targets: a secret at
/// `/run/secrets/<target>`, a config at its `target` (default `/<name>`), as docker
/// compose places them without swarm.
fn file_refs<'a>(p: &'a Project, s: &'a Value) -> Result<Vec<FileRef<'a>>, CliError> {
    let mut out = Vec::new();
    for (kind, declared) in [("secrets", &p.secrets), ("configs", &p.configs)] {
        for entry in s[kind].as_array().into_iter().flatten() {
            let (source, target) = match entry {
                Value::String(name) => (name.clone(), None),
                Value::Object(m) => (
                    m.get("source")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    m.get("target").and_then(Value::as_str).map(str::to_string),
                ),
                _ => continue,
            };
            let decl = declared.get(&source).ok_or_else(|| {
                CliError::new(format!(
                    "service refers to undefined {} {source}",
                    &kind[..kind.len() - 1]
                ))
            })?;
            let target = match (kind, target) {
                ("secrets", Some(t)) if t.starts_with('/') => t,
                ("secrets", t) => format!("/run/secrets/{}", t.unwrap_or_else(|| source.clone())),
                (_, Some(t)) if t.starts_with('/') => t,
                (_, Some(t)) => format!("/{t}"),
                (_, None) => format!("/{source}"),
            };
            out.push(FileRef {
                kind,
                source,
                target,
                decl,
                entry,
            });
        }
    }
    Ok(out)
}

/// Secrets and configs given as files, as read-only binds.
fn file_mounts(p: &Project, s: &Value) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    for r in file_refs(p, s)? {
        if let Some(file) = r.decl["file"].as_str() {
            let file = berth_compose::normalize::absolute(&p.dir, file);
            out.push(format!("{file}:{}:ro", r.target));
        } else if r.decl.get("environment").is_none() && r.decl.get("content").is_none() {
            return Err(CliError::new(format!(
                "{}.{}: without swarm a {} needs file, environment or content",
                r.kind,
                r.source,
                &r.kind[..r.kind.len() - 1]
            )));
        }
    }
    Ok(out)
}

/// A secret or config given by `content` or `environment`: written into the container
/// between its create and its start, as docker compose does.
pub(crate) struct Injected {
    pub target: String,
    pub content: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// A `uid`/`gid` given as a string or a number.
fn id_of(v: &Value, what: &str) -> Result<u64, CliError> {
    match v {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| CliError::new(format!("invalid {what} {n}"))),
        Value::String(s) => s
            .parse()
            .map_err(|_| CliError::new(format!("invalid {what} {s:?}: want a number"))),
        other => Err(CliError::new(format!("invalid {what} {other}"))),
    }
}

/// The files of the service's secrets and configs that are not host files.
pub(crate) fn injected(p: &Project, s: &Value) -> Result<Vec<Injected>, CliError> {
    let mut out = Vec::new();
    for r in file_refs(p, s)? {
        let content = if let Some(var) = r.decl["environment"].as_str() {
            p.variables.get(var).cloned().ok_or_else(|| {
                CliError::new(format!(
                    "environment variable {var:?} required by {}.{} is not set",
                    r.kind, r.source
                ))
            })?
        } else if let Some(text) = r.decl["content"].as_str() {
            text.to_string()
        } else {
            continue;
        };
        let mode = match &r.entry["mode"] {
            Value::Null => 0o444,
            Value::Number(n) => n.as_u64().unwrap_or(0o444) as u32,
            Value::String(m) => u32::from_str_radix(m, 8)
                .map_err(|_| CliError::new(format!("invalid mode {m:?}: want octal")))?,
            other => return Err(CliError::new(format!("invalid mode {other}"))),
        };
        out.push(Injected {
            target: r.target,
            content: content.into_bytes(),
            mode,
            uid: id_of(&r.entry["uid"], "uid")?,
            gid: id_of(&r.entry["gid"], "gid")?,
        });
    }
    Ok(out)
}

/// The injected files as one tar for `PUT /containers/{id}/archive?path=/`.
pub(crate) fn injected_tar(files: &[Injected]) -> std::io::Result<Vec<u8>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut b = tar::Builder::new(Vec::new());
    for f in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(f.content.len() as u64);
        h.set_mode(f.mode);
        h.set_uid(f.uid);
        h.set_gid(f.gid);
        h.set_mtime(now);
        b.append_data(
            &mut h,
            f.target.trim_start_matches('/'),
            f.content.as_slice(),
        )?;
    }
    b.into_inner()
}

/// The engine's name for a compose restart condition (`restart:` or
/// `deploy.restart_policy.condition`).
fn restart_mode(condition: &str) -> &str {
    match condition {
        "none" | "no" | "" => "no",
        "any" => "always",
        other => other,
    }
}

/// `restart:`, or `deploy.restart_policy`, which wins as in docker compose (its
/// condition defaults to `any`, as the Compose Specification says).
fn restart_policy(s: &Value) -> Value {
    let deploy = &s["deploy"]["restart_policy"];
    let (mode, retries) = if deploy.is_object() {
        (
            restart_mode(deploy["condition"].as_str().unwrap_or("any")),
            deploy["max_attempts"].as_i64().unwrap_or(0),
        )
    } else {
        let restart = s["restart"].as_str().unwrap_or("no");
        let (mode, retries) = restart.split_once(':').unwrap_or((restart, "0"));
        (restart_mode(mode), retries.parse().unwrap_or(0))
    };
    json!({"Name": mode, "MaximumRetryCount": retries})
}

fn host_config(p: &Project, s: &Value) -> Result<Value, CliError> {
    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    for v in s["volumes"].as_array().into_iter().flatten() {
        let target = v["target"].as_str().unwrap_or("");
        let ro = v["read_only"].as_bool() == Some(true);
        match v["type"].as_str().unwrap_or("volume") {
            "bind" => {
                let src = v["source"].as_str().unwrap_or("");
                binds.push(format!("{src}:{target}{}", if ro { ":ro" } else { "" }));
            }
            "volume" => {
                let mut m = json!({"Type": "volume", "Target": target, "ReadOnly": ro});
                if let Some(src) = v["source"].as_str() {
                    m["Source"] = json!(engine_name(&p.volumes, src));
                }
                if v["volume"]["nocopy"].as_bool() == Some(true) {
                    m["VolumeOptions"] = json!({"NoCopy": true});
                }
                mounts.push(m);
            }
            "tmpfs" => {
                let mut m = json!({"Type": "tmpfs", "Target": target});
                if let Some(size) = bytes(&v["tmpfs"]["size"])? {
                    m["TmpfsOptions"] = json!({"SizeBytes": size});
                }
                mounts.push(m);
            }
            other => {
                return Err(CliError::new(format!(
                    "volume type {other} is not supported"
                )));
            }
        }
    }
    binds.extend(file_mounts(p, s)?);
    let mut ports = Map::new();
    for port in s["ports"].as_array().into_iter().flatten() {
        let key = format!(
            "{}/{}",
            port["target"],
            port["protocol"].as_str().unwrap_or("tcp")
        );
        let binding = json!({
            "HostIp": port["host_ip"].as_str().unwrap_or(""),
            "HostPort": port["published"].as_str().unwrap_or(""),
        });
        ports
            .entry(key)
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("a list")
            .push(binding);
    }
    let mut host = json!({
        "Binds": binds,
        "Mounts": mounts,
        "PortBindings": ports,
        "RestartPolicy": restart_policy(s),
        "Privileged": s["privileged"].as_bool().unwrap_or(false),
        "ReadonlyRootfs": s["read_only"].as_bool().unwrap_or(false),
        "CapAdd": strings(&s["cap_add"]),
        "CapDrop": strings(&s["cap_drop"]),
        "SecurityOpt": strings(&s["security_opt"]),
        "Dns": strings(&s["dns"]),
        "DnsSearch": strings(&s["dns_search"]),
        "DnsOptions": strings(&s["dns_opt"]),
        "GroupAdd": strings(&s["group_add"]),
    });
    if let Some(mode) = s["network_mode"].as_str() {
        host["NetworkMode"] = json!(match mode.strip_prefix("service:") {
            Some(other) => format!("container:{}-{other}-1", p.name),
            None => mode.to_string(),
        });
    }
    if let Some(init) = s["init"].as_bool() {
        host["Init"] = json!(init);
    }
    let extra: Vec<String> = match &s["extra_hosts"] {
        Value::Object(m) => m
            .iter()
            .map(|(h, ip)| format!("{h}:{}", ip.as_str().unwrap_or("")))
            .collect(),
        other => strings(other)
            .iter()
            .map(|e| e.replacen('=', ":", 1))
            .collect(),
    };
    host["ExtraHosts"] = json!(extra);
    let links: Vec<String> = strings(&s["links"])
        .iter()
        .map(|l| {
            let (svc, alias) = l.split_once(':').unwrap_or((l, l));
            format!("{}-{svc}-1:{alias}", p.name)
        })
        .collect();
    if !links.is_empty() {
        host["Links"] = json!(links);
    }
    let from: Vec<String> = strings(&s["volumes_from"])
        .iter()
        .map(|v| match v.strip_prefix("container:") {
            Some(c) => c.to_string(),
            None => {
                let (svc, mode) = v.split_once(':').map_or((v.as_str(), ""), |(a, b)| (a, b));
                let name = format!("{}-{svc}-1", p.name);
                if mode.is_empty() {
                    name
                } else {
                    format!("{name}:{mode}")
                }
            }
        })
        .collect();
    if !from.is_empty() {
        host["VolumesFrom"] = json!(from);
    }
    let tmpfs: Map<String, Value> = strings(&s["tmpfs"])
        .into_iter()
        .map(|t| match t.split_once(':') {
            Some((path, opts)) => (path.to_string(), json!(opts)),
            None => (t, json!("")),
        })
        .collect();
    if !tmpfs.is_empty() {
        host["Tmpfs"] = Value::Object(tmpfs);
    }
    if let Some(sys) = s["sysctls"].as_object() {
        host["Sysctls"] = Value::Object(sys.clone());
    }
    let ulimits: Vec<Value> = s["ulimits"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, v)| match v {
            Value::Object(m) => json!({"Name": name, "Soft": m.get("soft"), "Hard": m.get("hard")}),
            n => json!({"Name": name, "Soft": n, "Hard": n}),
        })
        .collect();
    if !ulimits.is_empty() {
        host["Ulimits"] = json!(ulimits);
    }
    let devices: Vec<Value> = strings(&s["devices"])
        .iter()
        .map(|d| {
            let parts: Vec<&str> = d.split(':').collect();
            json!({
                "PathOnHost": parts[0],
                "PathInContainer": parts.get(1).unwrap_or(&parts[0]),
                "CgroupPermissions": parts.get(2).unwrap_or(&"rwm"),
            })
        })
        .collect();
    if !devices.is_empty() {
        host["Devices"] = json!(devices);
    }
    for (key, api) in [
        ("pid", "PidMode"),
        ("ipc", "IpcMode"),
        ("cgroup_parent", "CgroupParent"),
        ("userns_mode", "UsernsMode"),
    ] {
        if let Some(v) = s[key].as_str() {
            host[api] = json!(v);
        }
    }
    let limits = &s["deploy"]["resources"]["limits"];
    let reservations = &s["deploy"]["resources"]["reservations"];
    if let Some(m) = bytes(&s["mem_limit"])?.or(bytes(&limits["memory"])?) {
        host["Memory"] = json!(m);
    }
    if let Some(m) = bytes(&s["mem_reservation"])?.or(bytes(&reservations["memory"])?) {
        host["MemoryReservation"] = json!(m);
    }
    if let Some(m) = bytes(&s["memswap_limit"])? {
        host["MemorySwap"] = json!(m);
    }
    if let Some(m) = bytes(&s["shm_size"])? {
        host["ShmSize"] = json!(m);
    }
    let cpus = s["cpus"]
        .as_f64()
        .or_else(|| s["cpus"].as_str().and_then(|c| c.parse().ok()))
        .or_else(|| limits["cpus"].as_f64())
        .or_else(|| limits["cpus"].as_str().and_then(|c| c.parse().ok()));
    if let Some(c) = cpus {
        host["NanoCpus"] = json!((c * 1e9) as i64);
    }
    if let Some(pids) = s["pids_limit"].as_i64().or(limits["pids"].as_i64()) {
        host["PidsLimit"] = json!(pids);
    }
    for (key, api) in [
        ("cpu_shares", "CpuShares"),
        ("cpu_quota", "CpuQuota"),
        ("cpu_period", "CpuPeriod"),
        ("oom_score_adj", "OomScoreAdj"),
        ("mem_swappiness", "MemorySwappiness"),
    ] {
        if let Some(v) = s[key].as_i64() {
            host[api] = json!(v);
        }
    }
    if let Some(c) = s["cpuset"].as_str() {
        host["CpusetCpus"] = json!(c);
    }
    if let Some(o) = s["oom_kill_disable"].as_bool() {
        host["OomKillDisable"] = json!(o);
    }
    if let Some(l) = s["logging"].as_object() {
        host["LogConfig"] = json!({
            "Type": l.get("driver").and_then(Value::as_str).unwrap_or(""),
            "Config": l.get("options").cloned().unwrap_or(json!({})),
        });
    }
    kernel_settings(s, &mut host)?;
    Ok(host)
}

/// A duration in microseconds: a number is taken as microseconds, a string as a Go
/// duration (`400ms`).
fn micros(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => berth_types::time::parse_go_duration(s).map(|secs| (secs * 1e6) as i64),
        _ => None,
    }
}

/// Block I/O, namespaces, runtime and storage settings.
fn kernel_settings(s: &Value, host: &mut Value) -> Result<(), CliError> {
    let blkio = &s["blkio_config"];
    if let Some(w) = blkio["weight"].as_i64() {
        host["BlkioWeight"] = json!(w);
    }
    let weights: Vec<Value> = blkio["weight_device"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| json!({"Path": d["path"], "Weight": d["weight"]}))
        .collect();
    if !weights.is_empty() {
        host["BlkioWeightDevice"] = json!(weights);
    }
    for (key, api, is_bytes) in [
        ("device_read_bps", "BlkioDeviceReadBps", true),
        ("device_write_bps", "BlkioDeviceWriteBps", true),
        ("device_read_iops", "BlkioDeviceReadIOps", false),
        ("device_write_iops", "BlkioDeviceWriteIOps", false),
    ] {
        let mut list = Vec::new();
        for d in blkio[key].as_array().into_iter().flatten() {
            let rate = if is_bytes {
                bytes(&d["rate"])?
            } else {
                d["rate"].as_i64()
            };
            list.push(json!({"Path": d["path"], "Rate": rate.unwrap_or(0)}));
        }
        if !list.is_empty() {
            host[api] = json!(list);
        }
    }
    for (key, api) in [
        ("cgroup", "CgroupnsMode"),
        ("uts", "UTSMode"),
        ("runtime", "Runtime"),
    ] {
        if let Some(v) = s[key].as_str() {
            host[api] = json!(v);
        }
    }
    if let Some(o) = s["storage_opt"].as_object() {
        host["StorageOpt"] = json!(o);
    }
    for (key, api) in [
        ("cpu_rt_period", "CpuRealtimePeriod"),
        ("cpu_rt_runtime", "CpuRealtimeRuntime"),
    ] {
        if let Some(v) = micros(&s[key]) {
            host[api] = json!(v);
        }
    }
    for (key, api) in [("cpu_count", "CpuCount"), ("cpu_percent", "CpuPercent")] {
        if let Some(v) = s[key].as_i64() {
            host[api] = json!(v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A project from one compose file's text (and a label file beside it).
    fn project(text: &str) -> Project {
        let dir = std::env::temp_dir().join(format!(
            "berth-compose-create-{}",
            berth_types::id::random_hex(8).unwrap()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("compose.yaml"), text).unwrap();
        std::fs::write(dir.join("labels.env"), "team=a\nowner=x\n").unwrap();
        let opts = berth_compose::Options {
            working_dir: dir.clone(),
            ..Default::default()
        };
        let p = berth_compose::load(&opts).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        p
    }

    #[test]
    fn kernel_settings_and_label_files_reach_the_create_body() {
        let p = project(
            r#"services:
  app:
    image: busybox
    label_file: labels.env
    labels: {owner: y}
    cgroup: private
    uts: host
    runtime: runc
    storage_opt: {size: 1G}
    cpu_rt_runtime: 400ms
    cpu_rt_period: 1000000
    blkio_config:
      weight: 300
      weight_device: [{path: /dev/sda, weight: 400}]
      device_read_bps: [{path: /dev/sdb, rate: 12mb}]
      device_write_iops: [{path: /dev/sdb, rate: 30}]
    deploy:
      restart_policy: {condition: any}
"#,
        );
        let b = body(&p, "app", 1, false).unwrap();
        let h = &b["HostConfig"];
        assert_eq!(b["Labels"]["team"], "a");
        assert_eq!(b["Labels"]["owner"], "y");
        assert_eq!(h["CgroupnsMode"], "private");
        assert_eq!(h["UTSMode"], "host");
        assert_eq!(h["Runtime"], "runc");
        assert_eq!(h["StorageOpt"], json!({"size": "1G"}));
        assert_eq!(h["CpuRealtimeRuntime"], 400_000);
        assert_eq!(h["CpuRealtimePeriod"], 1_000_000);
        assert_eq!(h["BlkioWeight"], 300);
        assert_eq!(
            h["BlkioWeightDevice"],
            json!([{"Path": "/dev/sda", "Weight": 400}])
        );
        assert_eq!(
            h["BlkioDeviceReadBps"],
            json!([{"Path": "/dev/sdb", "Rate": 12 * 1024 * 1024}])
        );
        assert_eq!(
            h["BlkioDeviceWriteIOps"],
            json!([{"Path": "/dev/sdb", "Rate": 30}])
        );
        assert_eq!(
            h["RestartPolicy"],
            json!({"Name": "always", "MaximumRetryCount": 0})
        );
    }
}
