//! What a container mounts: `HostConfig.Binds` (`-v /host:/ctr[:opts]`, `-v name:/ctr`),
//! `HostConfig.Mounts` (`--mount type=bind|volume|tmpfs`), `HostConfig.Tmpfs` (`--tmpfs`),
//! and the mounts resolved at create and kept with the record: anonymous volumes (image
//! `VOLUME`s, `-v /ctr`, `--mount type=volume` without a source) and `--volumes-from`.

use serde_json::{Value, json};

use crate::{Error, Result};

/// One mount as the container gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: &'static str,
    /// Host path for a bind, the volume's directory once resolved; empty for tmpfs.
    pub source: String,
    /// The volume's name (volumes only).
    pub name: String,
    /// Do not copy the image's content into a new volume (`volume-nocopy`, `:nocopy`).
    pub nocopy: bool,
    /// A directory inside the volume to mount instead of its root (`volume-subpath`).
    pub subpath: String,
    /// Labels for a volume this mount creates (`volume-label`).
    pub volume_labels: serde_json::Map<String, Value>,
    /// Driver options for a volume this mount creates (`volume-opt`).
    pub volume_options: serde_json::Map<String, Value>,
    /// Docker's `Mode` in inspect (`z` for `-v name:/path`, the options given for binds).
    pub mode: String,
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
    /// Left out of inspect's `Mounts` (dockerd does not list `HostConfig.Tmpfs`).
    pub unlisted: bool,
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

/// Docker's rule for volume names.
pub fn valid_volume_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Mount {
    /// A mount with every optional part empty.
    fn new(kind: &'static str, source: &str, target: &str) -> Self {
        Mount {
            kind,
            source: source.into(),
            name: String::new(),
            nocopy: false,
            subpath: String::new(),
            volume_labels: serde_json::Map::new(),
            volume_options: serde_json::Map::new(),
            mode: String::new(),
            target: target.into(),
            read_only: false,
            propagation: String::new(),
            options: Vec::new(),
            create_source: false,
            unlisted: false,
        }
    }

    /// A named (or, with an empty name, anonymous) volume at `target`.
    pub fn volume(name: &str, target: &str, read_only: bool) -> Self {
        let mut m = Mount::new("volume", "", target);
        m.name = name.into();
        m.read_only = read_only;
        m
    }
}

/// `-v SOURCE:TARGET[:OPTIONS]`: a host path or a volume name as source.
fn parse_bind(spec: &str) -> Result<Mount> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, opts) = match parts.as_slice() {
        [s, t] => (*s, *t, ""),
        [s, t, o] => (*s, *t, *o),
        _ => return Err(bad(format!("invalid volume specification: '{spec}'"))),
    };
    let mut m = if source.starts_with('/') {
        absolute(target, "type bind")?;
        let mut m = Mount::new("bind", source, target);
        m.propagation = "rprivate".into();
        m.create_source = true;
        m.mode = opts.to_string();
        m
    } else {
        if !valid_volume_name(source) {
            return Err(bad(format!(
                "create {source}: \"{source}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )));
        }
        absolute(target, "type volume")?;
        let mut m = Mount::volume(source, target, false);
        m.mode = if opts.is_empty() {
            "z".into()
        } else {
            opts.to_string()
        };
        m
    };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => m.read_only = true,
            "rw" => m.read_only = false,
            "nocopy" => m.nocopy = true,
            // SELinux relabelling and consistency modes: nothing to do on this host.
            "z" | "Z" | "consistent" | "cached" | "delegated" => {}
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
            let mut m = Mount::new("bind", source, target);
            m.read_only = read_only;
            m.propagation = propagation.into();
            Ok(m)
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
        "volume" => {
            let name = v["Source"].as_str().unwrap_or("");
            if !name.is_empty() && !valid_volume_name(name) {
                return Err(bad(format!(
                    "invalid mount config for type \"volume\": invalid volume name: {name:?}"
                )));
            }
            let mut m = Mount::volume(name, target, read_only);
            let opts = &v["VolumeOptions"];
            m.nocopy = opts["NoCopy"].as_bool().unwrap_or(false);
            m.subpath = opts["Subpath"].as_str().unwrap_or("").to_string();
            let escapes = std::path::Path::new(&m.subpath)
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)));
            if !m.subpath.is_empty() && escapes {
                return Err(bad(format!(
                    "invalid mount config for type \"volume\": subpath must be a relative path inside the volume: {:?}",
                    m.subpath
                )));
            }
            m.volume_labels = opts["Labels"].as_object().cloned().unwrap_or_default();
            m.volume_options = opts["DriverConfig"]["Options"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            Ok(m)
        }
        other => Err(bad(format!(
            "invalid mount config: mount type unknown: \"{other}\""
        ))),
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
    let mut m = Mount::new("tmpfs", "", target);
    m.read_only = read_only;
    m.options = options;
    m
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
        let mut m = tmpfs(target, read_only, options);
        m.unlisted = true;
        out.push(m);
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
        let propagation = if self.propagation.is_empty() {
            "rprivate"
        } else {
            &self.propagation
        };
        json!({"destination": self.target, "type": "bind", "source": self.source,
               "options": ["rbind", rw, propagation]})
    }

    /// Docker's `.Mounts` entry in inspect.
    pub fn inspect(&self) -> Value {
        let mut v = json!({
            "Type": self.kind,
            "Source": self.source,
            "Destination": self.target,
            "Mode": self.mode,
            "RW": !self.read_only,
            "Propagation": self.propagation,
        });
        if self.kind == "volume" {
            v["Name"] = json!(self.name);
            v["Driver"] = json!("local");
        }
        v
    }

    /// What is kept with the container record.
    pub fn stored(&self) -> Value {
        json!({"Type": self.kind, "Name": self.name, "Source": self.source,
               "Target": self.target, "ReadOnly": self.read_only, "Mode": self.mode})
    }

    /// The mount a [`Mount::stored`] value describes.
    pub fn from_stored(v: &Value) -> Option<Mount> {
        let target = v["Target"].as_str()?;
        let mut m = match v["Type"].as_str()? {
            "volume" => Mount::volume(v["Name"].as_str()?, target, false),
            "bind" => {
                let mut m = Mount::new("bind", v["Source"].as_str()?, target);
                m.propagation = "rprivate".into();
                m
            }
            _ => return None,
        };
        m.read_only = v["ReadOnly"].as_bool().unwrap_or(false);
        m.mode = v["Mode"].as_str().unwrap_or("").to_string();
        Some(m)
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
        let v = parse_bind("data:/data:ro,nocopy").unwrap();
        assert_eq!(
            (v.kind, v.name.as_str(), v.read_only, v.nocopy),
            ("volume", "data", true, true)
        );
        assert!(parse_bind("bad name:/data").is_err());
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
