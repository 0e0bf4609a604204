//! Docker's `HostConfig` as dockerd stores it: every field a client may read back is
//! present with dockerd's default (clients index into them: docker-py reads
//! `HostConfig.LogConfig.Type` after every `run`).

use serde_json::{Value, json};

/// dockerd's defaults for a container created without the field.
fn defaults() -> Value {
    serde_json::from_str(DEFAULTS).expect("the defaults are valid JSON")
}

const DEFAULTS: &str = r#"{
        "Binds": null, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": false, "VolumeDriver": "", "VolumesFrom": null, "ConsoleSize": [0, 0],
        "Annotations": null, "CapAdd": null, "CapDrop": null, "CgroupnsMode": "", "Dns": null,
        "DnsOptions": null, "DnsSearch": null, "ExtraHosts": null, "GroupAdd": null, "IpcMode": "private",
        "Cgroup": "", "Links": null, "OomScoreAdj": 0, "PidMode": "", "Privileged": false,
        "PublishAllPorts": false, "ReadonlyRootfs": false, "SecurityOpt": null, "UTSMode": "",
        "UsernsMode": "", "ShmSize": 67108864, "Runtime": "runc", "Isolation": "", "CpuShares": 0,
        "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
        "DeviceCgroupRules": null, "DeviceRequests": null, "MemoryReservation": 0, "MemorySwap": 0,
        "MemorySwappiness": null, "OomKillDisable": null, "PidsLimit": null, "Ulimits": [],
        "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "Init": null, "MaskedPaths": null, "ReadonlyPaths": null
    }"#;

/// Config keys as dockerd spells them.
const CONFIG_KEYS: &[&str] = &[
    "Hostname",
    "Domainname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Image",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "NetworkDisabled",
    "MacAddress",
    "OnBuild",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "Shell",
    "HostConfig",
    "NetworkingConfig",
];

/// A create body with its keys spelled as dockerd spells them: Go's JSON decoding
/// matches field names case-insensitively, so clients send `CPURealtimeRuntime` for
/// `CpuRealtimeRuntime` (docker-py) and dockerd takes it.
pub fn canonical_keys(body: &Value) -> Value {
    fn respell(v: &Value, known: &[String]) -> Value {
        let Some(obj) = v.as_object() else {
            return v.clone();
        };
        obj.iter()
            .map(|(k, v)| {
                let key = known
                    .iter()
                    .find(|c| c.eq_ignore_ascii_case(k))
                    .cloned()
                    .unwrap_or_else(|| k.clone());
                (key, v.clone())
            })
            .collect()
    }
    let config_keys: Vec<String> = CONFIG_KEYS.iter().map(|k| k.to_string()).collect();
    let host_keys: Vec<String> = defaults()
        .as_object()
        .map(|m| {
            m.keys()
                .cloned()
                .chain([
                    "Mounts".to_string(),
                    "Tmpfs".to_string(),
                    "Sysctls".to_string(),
                    "StorageOpt".to_string(),
                    "HealthOnFailure".to_string(),
                ])
                .collect()
        })
        .unwrap_or_default();
    let mut out = respell(body, &config_keys);
    if out["HostConfig"].is_object() {
        out["HostConfig"] = respell(&out["HostConfig"], &host_keys);
    }
    if let Some(h) = out.get_mut("Healthcheck").and_then(Value::as_object_mut) {
        // dockerd leaves unset (zero) fields out of what it stores.
        h.retain(|_, v| !v.is_null());
    }
    out
}

/// `HostConfig.Runtime` and `Isolation` as dockerd checks them on Linux.
pub fn validate(host: &Value) -> crate::Result<()> {
    let runtime = host["Runtime"].as_str().unwrap_or("");
    if !["", "runc", "berth", "io.containerd.runc.v2"].contains(&runtime) {
        return Err(crate::Error::InvalidInput(format!(
            "Unknown runtime specified {runtime}"
        )));
    }
    let isolation = host["Isolation"].as_str().unwrap_or("");
    if !isolation.is_empty() && !isolation.eq_ignore_ascii_case("default") {
        return Err(crate::Error::InvalidInput(format!(
            "Invalid isolation: \"{isolation}\" - linux only supports 'default'"
        )));
    }
    Ok(())
}

/// The request's HostConfig over dockerd's defaults. An empty log driver means the
/// daemon's default driver, keeping the options the client gave.
pub fn normalize(requested: &Value, default_log_driver: &str) -> Value {
    let mut host = defaults();
    if let Some(obj) = requested.as_object() {
        for (k, v) in obj {
            if !v.is_null() {
                host[k] = v.clone();
            }
        }
    }
    if host["LogConfig"]["Type"].as_str().unwrap_or("").is_empty() {
        host["LogConfig"]["Type"] = json!(default_log_driver);
    }
    if host["LogConfig"]["Config"].is_null() {
        host["LogConfig"]["Config"] = json!({});
    }
    if host["RestartPolicy"]["Name"]
        .as_str()
        .unwrap_or("")
        .is_empty()
    {
        host["RestartPolicy"]["Name"] = json!("no");
    }
    if host["NetworkMode"].as_str().unwrap_or("").is_empty() {
        host["NetworkMode"] = json!("default");
    }
    host
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_get_dockerd_defaults() {
        let h = normalize(&json!(null), "json-file");
        assert_eq!(h["LogConfig"]["Type"], "json-file");
        assert_eq!(h["RestartPolicy"]["Name"], "no");
        assert_eq!(h["Runtime"], "runc");
        let h = normalize(
            &json!({"LogConfig": {"Type": "", "Config": {"max-file": "10"}}, "Memory": 1024}),
            "json-file",
        );
        assert_eq!(
            h["LogConfig"],
            json!({"Type": "json-file", "Config": {"max-file": "10"}})
        );
        assert_eq!(h["Memory"], 1024);
    }
}
