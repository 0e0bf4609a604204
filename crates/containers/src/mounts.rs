//! Host directories and tmpfs in a container: `HostConfig.Binds` (`-v /host:/ctr[:opts]`),
//! `HostConfig.Mounts` of type `bind` and `tmpfs` (`--mount`), and `HostConfig.Tmpfs`
//! (`--tmpfs`). Named volumes are not here yet: they are refused with a message saying so.

use serde_json::{Value, json};

use crate::{Error, Result};

/// One mount as the container gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `bind` or `tmpfs`.
    pub kind: &'static str,
    /// Host path for a bind; empty for tmpfs.
    pub source: String,
    /// Absolute path in the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// Bind propagation (`rprivate` unless asked).
    pub propagation: String,
    /// Extra mount options (tmpfs size and mode).
    pub options: Vec<String>,
    /// `-v` creates a missing host directory; `--mount` refuses one.
    pub create_source: bool,
}

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

fn bad(msg: String) -> Error {
    Error::InvalidInput(msg)
}

fn absolute(target: &str, what: &str) -> Result<()> {
    if target.starts_with('/') && target != "/" {
        Ok(())
    } else {
        Err(bad(format!(
            "invalid mount config for {what}: mount path must be absolute (and not /): {target}"
        )))
    }
}

/// `-v SOURCE:TARGET[:OPTIONS]` with a host path as source.
fn parse_bind(spec: &str) -> Result<Mount> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, opts) = match parts.as_slice() {
        [s, t] => (*s, *t, ""),
        [s, t, o] => (*s, *t, *o),
        _ => return Err(bad(format!("invalid volume specification: '{spec}'"))),
    };
    if !source.starts_with('/') {
        return Err(bad(format!(
            "invalid volume specification '{spec}': named volumes are not supported by berthd yet; use an absolute host path"
        )));
    }
    absolute(target, "type bind")?;
    let mut m = Mount {
        kind: "bind",
        source: source.to_string(),
        target: target.to_string(),
        read_only: false,
        propagation: "rprivate".into(),
        options: Vec::new(),
        create_source: true,
    };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => m.read_only = true,
            "rw" => m.read_only = false,
            // SELinux relabelling and copy modes: nothing to do on this host.
            "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated" => {}
            p if PROPAGATIONS.contains(&p) => m.propagation = p.to_string(),
            other => {
                return Err(bad(format!(
                    "invalid mode: {other} in volume specification '{spec}'"
                )));
            }
        }
    }
    Ok(m)
}

/// One entry of `HostConfig.Mounts` (`--mount type=...`).
fn parse_mount(v: &Value) -> Result<Mount> {
    let kind = v["Type"].as_str().unwrap_or("");
    let target = v["Target"].as_str().unwrap_or("");
    absolute(target, &format!("type {kind}"))?;
    let read_only = v["ReadOnly"].as_bool().unwrap_or(false);
    match kind {
        "bind" => {
            let source = v["Source"].as_str().unwrap_or("");
            if !source.starts_with('/') {
                return Err(bad(format!(
                    "invalid mount config for type \"bind\": invalid mount path: '{source}' mount path must be absolute"
                )));
            }
            if !std::path::Path::new(source).exists() {
                return Err(bad(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {source}"
                )));
            }
            let propagation = v["BindOptions"]["Propagation"]
                .as_str()
                .filter(|p| !p.is_empty())
                .unwrap_or("rprivate");
            if !PROPAGATIONS.contains(&propagation) {
                return Err(bad(format!("invalid propagation mode: {propagation}")));
            }
            Ok(Mount {
                kind: "bind",
                source: source.into(),
                target: target.into(),
                read_only,
                propagation: propagation.into(),
                options: Vec::new(),
                create_source: false,
            })
        }
        "tmpfs" => {
            let mut options = Vec::new();
            if let Some(size) = v["TmpfsOptions"]["SizeBytes"].as_i64().filter(|s| *s > 0) {
                options.push(format!("size={size}"));
            }
            if let Some(mode) = v["TmpfsOptions"]["Mode"].as_u64().filter(|m| *m > 0) {
                options.push(format!("mode={mode:o}"));
            }
            Ok(tmpfs(target, read_only, options))
        }
        "volume" => Err(bad(
            "named volumes are not supported by berthd yet: use type=bind with a host path or type=tmpfs".into(),
        )),
        other => Err(bad(format!("invalid mount config: mount type unknown: \"{other}\""))),
    }
}

fn tmpfs(target: &str, read_only: bool, mut options: Vec<String>) -> Mount {
    options.splice(
        0..0,
        [
            "nosuid".to_string(),
            "nodev".to_string(),
            "noexec".to_string(),
        ],
    );
    Mount {
        kind: "tmpfs",
        source: String::new(),
        target: target.into(),
        read_only,
        propagation: String::new(),
        options,
        create_source: false,
    }
}

/// Every mount a HostConfig asks for, validated; two on one target are refused.
pub fn from_host_config(host: &Value) -> Result<Vec<Mount>> {
    let mut out = Vec::new();
    for b in host["Binds"].as_array().into_iter().flatten() {
        out.push(parse_bind(b.as_str().unwrap_or(""))?);
    }
    for m in host["Mounts"].as_array().into_iter().flatten() {
        out.push(parse_mount(m)?);
    }
    for (target, opts) in host["Tmpfs"].as_object().into_iter().flatten() {
        absolute(target, "tmpfs")?;
        let mut options: Vec<String> = opts
            .as_str()
            .unwrap_or("")
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect();
        let read_only = options.iter().any(|o| o == "ro");
        options.retain(|o| o != "ro" && o != "rw");
        out.push(tmpfs(target, read_only, options));
    }
    let mut seen = std::collections::HashSet::new();
    for m in &out {
        if !seen.insert(m.target.trim_end_matches('/')) {
            return Err(bad(format!("Duplicate mount point: {}", m.target)));
        }
    }
    Ok(out)
}

impl Mount {
    /// The OCI mount.
    pub fn oci(&self) -> Value {
        let rw = if self.read_only { "ro" } else { "rw" };
        if self.kind == "tmpfs" {
            let mut options = self.options.clone();
            options.push(rw.into());
            return json!({"destination": self.target, "type": "tmpfs", "source": "tmpfs", "options": options});
        }
        json!({"destination": self.target, "type": "bind", "source": self.source,
               "options": ["rbind", rw, self.propagation]})
    }

    /// Docker's `.Mounts` entry in inspect.
    pub fn inspect(&self) -> Value {
        json!({
            "Type": self.kind,
            "Source": self.source,
            "Destination": self.target,
            "Mode": if self.kind == "bind" && self.create_source { if self.read_only { "ro" } else { "" } } else { "" },
            "RW": !self.read_only,
            "Propagation": self.propagation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_parse_like_dockers() {
        let m = parse_bind("/srv/data:/data:ro,rshared").unwrap();
        assert_eq!((m.read_only, m.propagation.as_str()), (true, "rshared"));
        assert_eq!(m.oci()["options"], json!(["rbind", "ro", "rshared"]));
        assert!(
            parse_bind("data:/data")
                .unwrap_err()
                .to_string()
                .contains("named volumes")
        );
        assert!(parse_bind("/a:relative").is_err());
        assert!(
            parse_bind("/a:/b:bogus")
                .unwrap_err()
                .to_string()
                .contains("invalid mode: bogus")
        );
    }

    #[test]
    fn mounts_and_tmpfs() {
        let host = json!({
            "Mounts": [{"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 448}}],
            "Tmpfs": {"/run": "size=64k,ro"}
        });
        let m = from_host_config(&host).unwrap();
        assert_eq!(
            m[0].oci()["options"],
            json!([
                "nosuid",
                "nodev",
                "noexec",
                "size=1048576",
                "mode=700",
                "rw"
            ])
        );
        assert_eq!(
            m[1].oci()["options"],
            json!(["nosuid", "nodev", "noexec", "size=64k", "ro"])
        );
        let missing =
            json!({"Mounts": [{"Type": "bind", "Source": "/no/such/dir", "Target": "/x"}]});
        assert!(
            from_host_config(&missing)
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
        let twice = json!({"Binds": ["/tmp:/x", "/tmp:/x/"]});
        assert!(
            from_host_config(&twice)
                .unwrap_err()
                .to_string()
                .contains("Duplicate mount point")
        );
    }
}
