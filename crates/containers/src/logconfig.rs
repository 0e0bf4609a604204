//! Logging settings of a container: the json-file driver with size-based rotation (or no
//! log at all), from `HostConfig.LogConfig` over the daemon's defaults.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{Error, Result};

/// How a container's output is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// False for the `none` driver: output goes to attached clients only.
    pub enabled: bool,
    /// Rotate past this many bytes (0: never).
    pub max_size: u64,
    /// Files kept, the live one included.
    pub max_files: u32,
}

/// The attributes `--log-opt labels=`, `labels-regex=`, `env=` and `env-regex=` pick from
/// the container's labels and environment, written with each log entry (`attrs`) and
/// shown by `logs --details`.
pub fn attributes(host: &Value, config: &Value) -> serde_json::Map<String, Value> {
    let opts = &host["LogConfig"]["Config"];
    let list = |k: &str| -> Vec<String> {
        opts[k]
            .as_str()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let regex = |k: &str| {
        opts[k]
            .as_str()
            .filter(|s| !s.is_empty())
            .and_then(|r| regex::Regex::new(r).ok())
    };
    let mut out = serde_json::Map::new();
    let labels = config["Labels"].as_object().cloned().unwrap_or_default();
    let (names, pattern) = (list("labels"), regex("labels-regex"));
    for (k, v) in &labels {
        if names.contains(k) || pattern.as_ref().is_some_and(|p| p.is_match(k)) {
            out.insert(k.clone(), v.clone());
        }
    }
    let (names, pattern) = (list("env"), regex("env-regex"));
    for e in config["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        if names.iter().any(|n| n == k) || pattern.as_ref().is_some_and(|p| p.is_match(k)) {
            out.insert(k.to_string(), Value::String(v.to_string()));
        }
    }
    out
}

impl Default for LogConfig {
    /// 10 MiB × 3 files: a chatty container cannot fill the disk.
    fn default() -> Self {
        LogConfig {
            enabled: true,
            max_size: 10 * 1024 * 1024,
            max_files: 3,
        }
    }
}

/// Docker's size notation (`RAMInBytes`): a number with an optional k, m, g, t unit
/// (powers of 1024, an optional trailing b), e.g. `10m` or `512k`.
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        't' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

impl LogConfig {
    /// A driver and its options over `defaults`; unknown drivers and bad options are
    /// refused with what to use instead.
    pub fn from_driver(
        driver: &str,
        opts: &BTreeMap<String, String>,
        defaults: &LogConfig,
    ) -> Result<Self> {
        let mut c = defaults.clone();
        match driver {
            "" | "json-file" | "local" => c.enabled = true,
            "none" => {
                c.enabled = false;
                return Ok(c);
            }
            // Docker's exact words: clients match on them. Berth has json-file and none.
            other => {
                return Err(Error::InvalidInput(format!(
                    "logger: no log driver named '{other}' is registered"
                )));
            }
        }
        for (k, v) in opts {
            match k.as_str() {
                "max-size" => {
                    c.max_size = if v == "-1" {
                        0
                    } else {
                        parse_size(v).ok_or_else(|| {
                            Error::InvalidInput(format!(
                                "invalid log opt max-size={v}: use a size such as 10m"
                            ))
                        })?
                    }
                }
                "max-file" => {
                    c.max_files = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        Error::InvalidInput(format!(
                            "invalid log opt max-file={v}: use a whole number of at least 1"
                        ))
                    })?
                }
                "compress" | "labels" | "labels-regex" | "env" | "env-regex" | "tag" | "mode"
                | "max-buffer-size" => {}
                other => {
                    return Err(Error::InvalidInput(format!(
                        "unknown log opt '{other}' for {driver} log driver"
                    )));
                }
            }
        }
        Ok(c)
    }

    /// The container's `HostConfig.LogConfig` over the daemon's defaults.
    pub fn for_container(host: &Value, defaults: &LogConfig) -> Result<Self> {
        let lc = &host["LogConfig"];
        let driver = lc["Type"].as_str().unwrap_or("");
        let opts: BTreeMap<String, String> = lc["Config"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Self::from_driver(driver, &opts, defaults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_dockers() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("1.5kb"), Some(1536));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("ten"), None);
    }

    #[test]
    fn container_options_override_the_defaults() {
        let d = LogConfig::default();
        let host = serde_json::json!({"LogConfig": {"Type": "json-file", "Config": {"max-size": "1k", "max-file": "2"}}});
        let c = LogConfig::for_container(&host, &d).unwrap();
        assert_eq!((c.max_size, c.max_files), (1024, 2));
        let none = serde_json::json!({"LogConfig": {"Type": "none"}});
        assert!(!LogConfig::for_container(&none, &d).unwrap().enabled);
        let bad = serde_json::json!({"LogConfig": {"Type": "syslog"}});
        assert!(LogConfig::for_container(&bad, &d).is_err());
        let bad = serde_json::json!({"LogConfig": {"Config": {"max-file": "0"}}});
        assert!(LogConfig::for_container(&bad, &d).is_err());
    }
}
