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
        "Annotations": null, "CapAdd": null, "CapDrop": null, "CgroupnsMode": "", "Dns": [],
        "DnsOptions": [], "DnsSearch": [], "ExtraHosts": null, "GroupAdd": null, "IpcMode": "private",
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
