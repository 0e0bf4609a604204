//! Host facts for `/version` and `/info`, read from the live system.

use berth_api::{SystemBackend, VersionInfo};
use serde_json::json;

use crate::config::Config;

/// The system backend of a running daemon.
pub struct HostSystem {
    images: berth_images::ImageStore,
    containers: berth_containers::ContainerService,
    volumes: berth_volumes::VolumeService,
    data_root: String,
    kernel: String,
    hostname: String,
}

impl HostSystem {
    /// Reads the facts that do not change while the daemon runs.
    pub fn new(
        config: &Config,
        images: berth_images::ImageStore,
        containers: berth_containers::ContainerService,
        volumes: berth_volumes::VolumeService,
    ) -> Self {
        let uname = rustix::system::uname();
        HostSystem {
            images,
            containers,
            volumes,
            data_root: config.data_root.display().to_string(),
            kernel: uname.release().to_string_lossy().into_owned(),
            hostname: uname.nodename().to_string_lossy().into_owned(),
        }
    }
}

fn meminfo_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn operating_system() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

impl SystemBackend for HostSystem {
    fn version(&self) -> VersionInfo {
        VersionInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: String::new(),
            go_version: "rust".to_string(),
            kernel_version: self.kernel.clone(),
            build_time: String::new(),
        }
    }

    fn df(&self) -> Result<serde_json::Value, berth_api::ApiError> {
        let containers = self
            .containers
            .list(true, None, "", true)
            .map_err(crate::containers::api_error)?;
        let mut images = self
            .images
            .list(&berth_images::Filters::default(), true)
            .map_err(crate::images::api_error)?;
        let mut layers_size = 0u64;
        for img in &mut images {
            let id = img["Id"].as_str().unwrap_or("").to_string();
            let users = containers
                .iter()
                .filter(|c| c["ImageID"] == id.as_str())
                .count();
            img["Containers"] = serde_json::json!(users);
            // Layers shared between images are counted once per image here.
            img["SharedSize"] = serde_json::json!(0);
            layers_size += img["Size"].as_u64().unwrap_or(0);
        }
        let mut volumes = Vec::new();
        for v in self.volumes.list().map_err(crate::volumes::api_error)? {
            let users = self
                .containers
                .volume_users(&v.name)
                .map_err(crate::containers::api_error)?;
            let mut j = self.volumes.inspect_json(&v);
            j["UsageData"] = serde_json::json!({
                "Size": berth_volumes::dir_size(&self.volumes.mountpoint(&v.name)),
                "RefCount": users.len(),
            });
            volumes.push(j);
        }
        Ok(serde_json::json!({
            "LayersSize": layers_size,
            "Images": images,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": [],
        }))
    }

    fn info(&self) -> serde_json::Value {
        let cgroup_version = match berth_cgroups::detect() {
            berth_cgroups::Version::V1 => "1",
            berth_cgroups::Version::V2 => "2",
        };
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (total, running, paused, stopped) = self.containers.counts();
        json!({
            "ID": "",
            "Containers": total, "ContainersRunning": running, "ContainersPaused": paused, "ContainersStopped": stopped,
            "Images": self.images.count().unwrap_or(0),
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", ""]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Authorization": null,
                        "Log": ["json-file"]},
            "MemoryLimit": true, "SwapLimit": true, "CpuCfsPeriod": true, "CpuCfsQuota": true,
            "CPUShares": true, "CPUSet": true, "PidsLimit": true, "IPv4Forwarding": true,
            "Debug": false, "NFd": 0, "OomKillDisable": cgroup_version == "1", "NGoroutines": 0,
            "SystemTime": "",
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version,
            "NEventsListener": 0,
            "KernelVersion": self.kernel,
            "OperatingSystem": operating_system(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}, "Mirrors": []},
            "NCPU": ncpu,
            "MemTotal": meminfo_total(),
            "DockerRootDir": self.data_root,
            "Name": self.hostname,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            // `runc` is what clients name (HostConfig.Runtime's default); Berth's runtime
            // answers to it.
            "Runtimes": {"berth": {"path": "berth-runtime"}, "runc": {"path": "berth-runtime"}},
            "DefaultRuntime": "berth",
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false,
                      "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Warnings": []
        })
    }
}
