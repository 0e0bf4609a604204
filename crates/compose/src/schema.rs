//! Which keys a compose file may have where: unknown ones are refused the way
//! `docker compose` refuses them (`services.web additional properties 'x' not allowed`).
//! Keys starting with `x-` are extensions and always allowed.

use serde_json::Value;

const TOP: &[&str] = &[
    "version", "name", "services", "networks", "volumes", "configs", "secrets", "include",
];

const SERVICE: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "credential_spec",
    "depends_on",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "labels",
    "label_file",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "post_start",
    "pre_stop",
    "privileged",
    "profiles",
    "pull_policy",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "user",
    "userns_mode",
    "uts",
    "volumes",
    "volumes_from",
    "working_dir",
];

const NETWORK: &[&str] = &[
    "driver",
    "driver_opts",
    "attachable",
    "enable_ipv6",
    "enable_ipv4",
    "ipam",
    "internal",
    "labels",
    "external",
    "name",
];

const VOLUME: &[&str] = &["driver", "driver_opts", "external", "labels", "name"];

const CONFIG_OR_SECRET: &[&str] = &[
    "file",
    "environment",
    "content",
    "external",
    "labels",
    "name",
    "driver",
    "driver_opts",
    "template_driver",
];

const BUILD: &[&str] = &[
    "context",
    "dockerfile",
    "dockerfile_inline",
    "args",
    "ssh",
    "cache_from",
    "cache_to",
    "additional_contexts",
    "entitlements",
    "extra_hosts",
    "isolation",
    "labels",
    "network",
    "no_cache",
    "platforms",
    "privileged",
    "pull",
    "secrets",
    "shm_size",
    "tags",
    "target",
    "ulimits",
];

const HEALTHCHECK: &[&str] = &[
    "test",
    "interval",
    "timeout",
    "retries",
    "start_period",
    "start_interval",
    "disable",
];

fn check_keys(v: &Value, allowed: &[&str], path: &str) -> Result<(), String> {
    let Some(map) = v.as_object() else {
        return Ok(());
    };
    for k in map.keys() {
        if !k.starts_with("x-") && !allowed.contains(&k.as_str()) {
            return Err(format!("{path} additional properties '{k}' not allowed"));
        }
    }
    Ok(())
}

fn must_be_mapping(v: &Value, path: &str) -> Result<(), String> {
    if v.is_object() || v.is_null() {
        Ok(())
    } else {
        Err(format!("{path} must be a mapping"))
    }
}

/// Checks one file's keys (after interpolation, before normalisation).
pub fn validate(doc: &Value) -> Result<(), String> {
    if !doc.is_object() {
        return Err("Top-level object must be a mapping".into());
    }
    check_keys(doc, TOP, "(root)")?;
    for (section, keys) in [
        ("networks", NETWORK),
        ("volumes", VOLUME),
        ("configs", CONFIG_OR_SECRET),
        ("secrets", CONFIG_OR_SECRET),
    ] {
        must_be_mapping(&doc[section], section)?;
        for (name, v) in doc[section].as_object().into_iter().flatten() {
            must_be_mapping(v, &format!("{section}.{name}"))?;
            check_keys(v, keys, &format!("{section}.{name}"))?;
        }
    }
    must_be_mapping(&doc["services"], "services")?;
    for (name, s) in doc["services"].as_object().into_iter().flatten() {
        let path = format!("services.{name}");
        if !s.is_object() {
            return Err(format!("{path} must be a mapping"));
        }
        check_keys(s, SERVICE, &path)?;
        if s["build"].is_object() {
            check_keys(&s["build"], BUILD, &format!("{path}.build"))?;
        }
        check_keys(
            &s["healthcheck"],
            HEALTHCHECK,
            &format!("{path}.healthcheck"),
        )?;
        for key in [
            "image",
            "container_name",
            "working_dir",
            "user",
            "hostname",
            "restart",
        ] {
            if !s[key].is_null() && !s[key].is_string() {
                return Err(format!("{path}.{key} must be a string"));
            }
        }
        for key in [
            "ports",
            "expose",
            "volumes",
            "dns_search",
            "cap_add",
            "cap_drop",
            "profiles",
        ] {
            let fine = s[key].is_null()
                || s[key].is_array()
                || (key == "dns_search" && s[key].is_string());
            if !fine {
                return Err(format!("{path}.{key} must be a list"));
            }
        }
    }
    Ok(())
}
