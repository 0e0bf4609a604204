//! Loading and validating an OCI bundle's `config.json` before anything is changed on the host.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use crate::error::{Error, Result};

/// A parsed, validated bundle: the spec plus the absolute paths derived from it.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    /// The parsed config.json.
    pub spec: Spec,
}

/// Reads `config.json` from `dir` and validates it; nothing on the host is changed.
pub fn load_bundle(dir: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(dir)
        .map_err(|e| Error::InvalidConfig(format!("bundle {}: {e}", dir.display())))?;
    let spec = parse_config(&dir.join("config.json"))?;
    let rootfs = rootfs_path(&dir, &spec)?;
    validate(&spec)?;
    Ok(Bundle { dir, rootfs, spec })
}

/// Parses a config.json, naming the offending field on error (serde's own messages only
/// give a line and column).
pub fn parse_config(path: &Path) -> Result<Spec> {
    let text = std::fs::read(path)
        .map_err(|e| Error::InvalidConfig(format!("read {}: {e}", path.display())))?;
    parse_spec_json(&text)
}

/// Parses config.json text into a [`Spec`], with the field path in the error message.
pub fn parse_spec_json(text: &[u8]) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        // serde lists every allowed variant after "expected one of": too long for one line.
        let inner = e.inner().to_string();
        let inner = inner
            .split(", expected")
            .next()
            .unwrap_or(&inner)
            .to_string();
        Error::InvalidConfig(format!("{field}: {inner}"))
    })
}

fn rootfs_path(dir: &Path, spec: &Spec) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::InvalidConfig("root: missing; set root.path to the rootfs".into()))?;
    let path = dir.join(root.path());
    if !path.is_dir() {
        return Err(Error::InvalidConfig(format!(
            "root.path: {} is not a directory",
            path.display()
        )));
    }
    Ok(path)
}

/// Checks the parts of a spec that the kernel would otherwise reject half-way through setup.
pub fn validate(spec: &Spec) -> Result<()> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::InvalidConfig("process: missing".into()))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::InvalidConfig(
            "process.args: must name a program to run".into(),
        ));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::InvalidConfig(format!(
            "process.cwd: {} is not an absolute path",
            process.cwd().display()
        )));
    }
    validate_namespaces(spec)?;
    validate_id_mappings(spec)?;
    validate_sysctls(spec)?;
    if let Some(mounts) = spec.mounts() {
        mounts
            .iter()
            .enumerate()
            .try_for_each(|(i, m)| validate_mount(i, m))?;
    }
    Ok(())
}

/// The namespace types a spec asks for, new or joined.
pub fn namespace_set(spec: &Spec) -> HashSet<LinuxNamespaceType> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|ns| ns.iter().map(|n| n.typ()).collect())
        .unwrap_or_default()
}

fn validate_namespaces(spec: &Spec) -> Result<()> {
    let Some(namespaces) = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()) else {
        return Ok(());
    };
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(Error::InvalidConfig(format!(
                "linux.namespaces[{i}]: namespace type {} appears twice",
                ns.typ()
            )));
        }
        if let Some(path) = ns.path()
            && !path.exists()
        {
            return Err(Error::InvalidConfig(format!(
                "linux.namespaces[{i}].path: {} does not exist",
                path.display()
            )));
        }
    }
    if !seen.contains(&LinuxNamespaceType::Mount)
        && spec.root().as_ref().and_then(|r| r.readonly()) == Some(true)
    {
        return Err(Error::InvalidConfig(
            "root.readonly: a read-only root needs a mount namespace in linux.namespaces".into(),
        ));
    }
    let has_uts = seen.contains(&LinuxNamespaceType::Uts);
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has_uts {
        return Err(Error::InvalidConfig(
            "hostname: setting a hostname needs a uts namespace in linux.namespaces".into(),
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has_uts {
        return Err(Error::InvalidConfig(
            "domainname: setting a domainname needs a uts namespace in linux.namespaces".into(),
        ));
    }
    Ok(())
}

fn validate_id_mappings(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let user_ns = linux
        .namespaces()
        .as_ref()
        .and_then(|ns| ns.iter().find(|n| n.typ() == LinuxNamespaceType::User));
    let new_user_ns = user_ns.is_some_and(|n| n.path().is_none());
    for (field, maps) in [
        ("uidMappings", linux.uid_mappings()),
        ("gidMappings", linux.gid_mappings()),
    ] {
        let maps = maps.as_deref().unwrap_or_default();
        if new_user_ns && maps.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "linux.{field}: a new user namespace needs at least one mapping"
            )));
        }
        if user_ns.is_none() && !maps.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "linux.{field}: mappings need a user namespace in linux.namespaces"
            )));
        }
        for (i, m) in maps.iter().enumerate() {
            if m.size() == 0 {
                return Err(Error::InvalidConfig(format!(
                    "linux.{field}[{i}].size: must be > 0"
                )));
            }
        }
    }
    Ok(())
}

/// Which namespace a sysctl belongs to, as runc decides it; `None` for host-wide knobs.
fn sysctl_namespace(name: &str) -> Option<LinuxNamespaceType> {
    use berth_types::sysctl::Namespace;
    Some(match berth_types::sysctl::namespace_of(name)? {
        Namespace::Ipc => LinuxNamespaceType::Ipc,
        Namespace::Network => LinuxNamespaceType::Network,
        Namespace::Uts => LinuxNamespaceType::Uts,
    })
}

fn validate_sysctls(spec: &Spec) -> Result<()> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    let namespaces = namespace_set(spec);
    for name in sysctl.keys() {
        match sysctl_namespace(name) {
            Some(ns) if namespaces.contains(&ns) => {}
            Some(ns) => {
                return Err(Error::InvalidConfig(format!(
                    "linux.sysctl.{name}: needs a {ns} namespace in linux.namespaces"
                )));
            }
            None => {
                return Err(Error::InvalidConfig(format!(
                    "linux.sysctl.{name}: not namespaced, so it would change the host; remove it"
                )));
            }
        }
    }
    Ok(())
}

fn validate_mount(i: usize, m: &Mount) -> Result<()> {
    if !m.destination().is_absolute() {
        return Err(Error::InvalidConfig(format!(
            "mounts[{i}].destination: {} is not an absolute path",
            m.destination().display()
        )));
    }
    let is_bind = m.typ().as_deref() == Some("bind")
        || m.options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"));
    if is_bind {
        let Some(src) = m.source() else {
            return Err(Error::InvalidConfig(format!(
                "mounts[{i}].source: a bind mount needs a source"
            )));
        };
        if std::fs::symlink_metadata(src).is_err() {
            return Err(Error::InvalidConfig(format!(
                "mounts[{i}].source: {} does not exist",
                src.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> Result<Spec> {
        let process = if extra.contains(r#""process""#) {
            ""
        } else {
            r#","process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}}"#
        };
        let text =
            format!(r#"{{"ociVersion":"1.2.0","root":{{"path":"rootfs"}}{process}{extra}}}"#);
        parse_spec_json(text.as_bytes()).and_then(|s| validate(&s).map(|_| s))
    }

    #[test]
    fn unknown_namespace_is_named() {
        let err = spec(r#","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}"#).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("linux.namespaces[1].type"), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn unknown_capability_is_named() {
        let err = spec(r#","process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_NOPE"]}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("process.capabilities.bounding") && err.contains("CAP_NOPE"),
            "{err}"
        );
    }

    #[test]
    fn user_namespace_needs_mappings() {
        let err = spec(r#","linux":{"namespaces":[{"type":"user"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux.uidMappings"), "{err}");
    }

    #[test]
    fn hostname_needs_uts() {
        let err = spec(r#","hostname":"x","linux":{"namespaces":[{"type":"pid"}]}"#).unwrap_err();
        assert!(err.to_string().contains("hostname"));
    }

    #[test]
    fn host_sysctl_is_refused() {
        let err = spec(r#","linux":{"sysctl":{"vm.swappiness":"1"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux.sysctl.vm.swappiness"), "{err}");
        spec(
            r#","linux":{"namespaces":[{"type":"network"}],"sysctl":{"net.ipv4.ip_forward":"1"}}"#,
        )
        .unwrap();
    }

    #[test]
    fn empty_args_are_refused() {
        let text =
            r#"{"ociVersion":"1.2.0","process":{"args":[],"cwd":"/","user":{"uid":0,"gid":0}}}"#;
        let s = parse_spec_json(text.as_bytes()).unwrap();
        assert!(
            validate(&s)
                .unwrap_err()
                .to_string()
                .contains("process.args")
        );
    }
}
