//! Docker's JSON views of a container: the `ps` summary and `inspect`.

use std::path::Path;

use serde_json::{Value, json};

use crate::ContainerRecord;

use berth_types::time::human_duration;

fn ago(rfc: &str) -> i64 {
    let now = berth_types::time::unix_seconds(std::time::SystemTime::now());
    now - berth_types::time::parse_rfc3339_seconds(rfc).unwrap_or(now)
}

fn status_text(rec: &ContainerRecord) -> String {
    match rec.state.status.as_str() {
        "running" => format!(
            "Up {}{}",
            human_duration(ago(&rec.state.started_at)),
            crate::health::status_suffix(rec)
        ),
        "paused" => format!("Up {} (Paused)", human_duration(ago(&rec.state.started_at))),
        "exited" => format!(
            "Exited ({}) {} ago",
            rec.state.exit_code,
            human_duration(ago(&rec.state.finished_at))
        ),
        "created" => "Created".into(),
        "restarting" => format!(
            "Restarting ({}) {} ago",
            rec.state.exit_code,
            human_duration(ago(&rec.state.finished_at))
        ),
        other => other.to_string(),
    }
}

/// Docker's `.Mounts`.
fn mounts_json(mounts: &[crate::mounts::Mount]) -> Value {
    mounts
        .iter()
        .filter(|m| !m.unlisted)
        .map(crate::mounts::Mount::inspect)
        .collect()
}

fn command(rec: &ContainerRecord) -> String {
    crate::spec::argv(&rec.config).unwrap_or_default().join(" ")
}

/// `GET /containers/json` item.
pub fn summary(
    rec: &ContainerRecord,
    net: &crate::netconf::Live,
    networks: &[berth_network::NetworkRecord],
    mounts: &[crate::mounts::Mount],
) -> Value {
    let settings = crate::netconf::settings(rec, net, networks);
    json!({
        "Id": rec.id,
        "Names": [format!("/{}", rec.name)],
        "Image": rec.image,
        "ImageID": rec.image_id,
        "Command": command(rec),
        "Created": berth_types::time::parse_rfc3339_seconds(&rec.created).unwrap_or(0),
        "Ports": crate::netconf::summary_ports(rec, net),
        "Labels": rec.config["Labels"],
        "State": rec.state.status,
        "Status": status_text(rec),
        "HostConfig": {"NetworkMode": rec.host_config["NetworkMode"].as_str().unwrap_or("default")},
        "NetworkSettings": {"Networks": settings["Networks"]},
        "Mounts": mounts_json(mounts)
    })
}

/// `GET /containers/{id}/json`.
pub fn inspect(
    rec: &ContainerRecord,
    log: &Path,
    data_dir: &Path,
    mounts: &[crate::mounts::Mount],
) -> Value {
    let args = crate::spec::argv(&rec.config).unwrap_or_default();
    let zero = "0001-01-01T00:00:00Z";
    let or_zero = |s: &str| {
        if s.is_empty() {
            zero.to_string()
        } else {
            s.to_string()
        }
    };
    let running = rec.state.status == "running" || rec.state.status == "paused";
    let mut v = json!({
        "Id": rec.id,
        "Created": rec.created,
        "Path": args.first().cloned().unwrap_or_default(),
        "Args": args.get(1..).unwrap_or_default(),
        "State": {
            "Status": rec.state.status,
            "Running": running,
            "Paused": rec.state.status == "paused",
            "Restarting": rec.state.status == "restarting",
            "OOMKilled": rec.state.oom_killed,
            "Dead": false,
            "Pid": if running { rec.state.pid } else { 0 },
            "ExitCode": rec.state.exit_code,
            "Error": rec.state.error,
            "StartedAt": or_zero(&rec.state.started_at),
            "FinishedAt": or_zero(&rec.state.finished_at),
            "Health": rec.health
        },
        "Image": rec.image_id,
        "ResolvConfPath": data_dir.join("resolv.conf"),
        "HostnamePath": data_dir.join("hostname"),
        "HostsPath": data_dir.join("hosts"),
        "LogPath": log,
        "Name": format!("/{}", rec.name),
        "RestartCount": rec.restart.count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": rec.host_config,
        "GraphDriver": {"Name": "overlay2", "Data": {
            "UpperDir": data_dir.join("diff"), "WorkDir": data_dir.join("work")}},
        "Mounts": mounts_json(mounts),
        "Config": rec.config
    });
    if rec.health.is_none()
        && let Some(state) = v["State"].as_object_mut()
    {
        // Docker shows Health only for containers with a healthcheck.
        state.remove("Health");
    }
    v
}
