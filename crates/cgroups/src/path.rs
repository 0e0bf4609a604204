//! Turning OCI `linux.cgroupsPath` into directories.
//!
//! Pure parsing lives here (unit-tested without root): the cgroups path
//! itself, `/proc/self/cgroup` and the cgroup lines of
//! `/proc/self/mountinfo`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where the container's cgroup lives, before it is tied to a hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CgroupPath {
    /// Below each hierarchy's root (OCI absolute path). Stored without the
    /// leading slash.
    FromRoot(PathBuf),
    /// Below the calling process's own cgroup (OCI relative path).
    FromSelf(PathBuf),
}

/// Parse `linux.cgroupsPath`; `None` or empty means `/berth/<container_id>`.
pub(crate) fn parse_cgroups_path(path: Option<&str>, container_id: &str) -> Result<CgroupPath> {
    let path = match path {
        Some(p) if !p.is_empty() => p,
        _ => return default_path(container_id),
    };
    let invalid = |reason: &str| Error::InvalidPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if looks_like_systemd(path) {
        return Err(invalid(
            "systemd cgroup paths (slice:prefix:name) are not supported, use a path such as /berth/<id>",
        ));
    }
    let (absolute, rest) = match path.strip_prefix('/') {
        Some(rest) => (true, rest),
        None => (false, path),
    };
    if rest.is_empty() {
        return Err(invalid("refusing to use the root cgroup itself"));
    }
    for component in rest.split('/') {
        match component {
            "" => return Err(invalid("empty path component")),
            "." | ".." => return Err(invalid("\".\" and \"..\" are not allowed")),
            _ => {}
        }
    }
    let rel = PathBuf::from(rest);
    Ok(if absolute {
        CgroupPath::FromRoot(rel)
    } else {
        CgroupPath::FromSelf(rel)
    })
}

fn default_path(container_id: &str) -> Result<CgroupPath> {
    if container_id.is_empty()
        || container_id.contains('/')
        || container_id == "."
        || container_id == ".."
    {
        return Err(Error::InvalidPath {
            path: format!("/berth/{container_id}"),
            reason: "container id must be a non-empty name without '/'".to_string(),
        });
    }
    Ok(CgroupPath::FromRoot(Path::new("berth").join(container_id)))
}

/// systemd's form is "slice:prefix:name" and has no slash.
fn looks_like_systemd(path: &str) -> bool {
    !path.contains('/') && path.split(':').count() == 3
}

/// One line of `/proc/self/cgroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProcCgroup {
    /// Controllers of the hierarchy ("name=systemd" included); empty for v2.
    pub controllers: Vec<String>,
    /// The process's cgroup in that hierarchy, e.g. "/user.slice".
    pub path: String,
}

/// Parse `/proc/<pid>/cgroup` ("id:controllers:path" per line).
pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<ProcCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(ProcCgroup {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// The calling process's cgroup in the hierarchy holding `controller`
/// (`""` = the v2 hierarchy).
pub(crate) fn own_cgroup(entries: &[ProcCgroup], controller: &str) -> Option<String> {
    entries
        .iter()
        .find(|e| {
            if controller.is_empty() {
                e.controllers.is_empty()
            } else {
                e.controllers.iter().any(|c| c == controller)
            }
        })
        .map(|e| e.path.clone())
}

/// A cgroup file system mount from `/proc/self/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Which cgroup of the hierarchy is the mount's top (usually "/").
    pub root: String,
    /// True for cgroup2.
    pub unified: bool,
    /// Super options, which name the v1 controllers ("cpu", "name=systemd").
    pub options: Vec<String>,
}

/// Parse the cgroup and cgroup2 mounts out of mountinfo text.
pub(crate) fn parse_cgroup_mounts(text: &str) -> Vec<CgroupMount> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<CgroupMount> {
    // "id parent maj:min root mountpoint opts [optional...] - fstype source superopts"
    let (before, after) = line.split_once(" - ")?;
    let fields: Vec<&str> = before.split(' ').collect();
    let after: Vec<&str> = after.split(' ').collect();
    let fs_type = *after.first()?;
    let unified = match fs_type {
        "cgroup2" => true,
        "cgroup" => false,
        _ => return None,
    };
    Some(CgroupMount {
        mount_point: PathBuf::from(unescape_octal(fields.get(4)?)),
        root: unescape_octal(fields.get(3)?),
        unified,
        options: after
            .get(2)
            .map(|o| o.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 4);
        if bytes[i] == b'\\'
            && let Some(digits) = digits.filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)))
        {
            let value = digits
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            out.push(value as u8);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directory of the container's cgroup in one hierarchy.
///
/// `mount_root` is the hierarchy cgroup mounted at `mount_point` and
/// `own` the calling process's cgroup in that hierarchy (only needed for
/// relative paths).
pub(crate) fn resolve(
    mount_point: &Path,
    mount_root: &str,
    own: Option<&str>,
    path: &CgroupPath,
) -> Result<PathBuf> {
    match path {
        CgroupPath::FromRoot(rel) => Ok(mount_point.join(rel)),
        CgroupPath::FromSelf(rel) => {
            let own = own.ok_or_else(|| Error::InvalidPath {
                path: rel.display().to_string(),
                reason: format!(
                    "relative path but this process has no cgroup under {}",
                    mount_point.display()
                ),
            })?;
            Ok(mount_point
                .join(strip_mount_root(own, mount_root))
                .join(rel))
        }
    }
}

/// Make a hierarchy path ("/a/b") relative to the mount's top cgroup, so it
/// can be joined to the mount point (matters inside containers, where only a
/// sub-tree is mounted).
fn strip_mount_root<'a>(own: &'a str, mount_root: &str) -> &'a str {
    let root = mount_root.trim_end_matches('/');
    let inside = match own.strip_prefix(root) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => own,
    };
    inside.trim_start_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_uses_container_id() {
        assert_eq!(
            parse_cgroups_path(None, "abc").unwrap(),
            CgroupPath::FromRoot("berth/abc".into())
        );
        assert_eq!(
            parse_cgroups_path(Some(""), "abc").unwrap(),
            CgroupPath::FromRoot("berth/abc".into())
        );
        assert!(parse_cgroups_path(None, "a/b").is_err());
        assert!(parse_cgroups_path(None, "..").is_err());
    }

    #[test]
    fn absolute_and_relative_paths() {
        assert_eq!(
            parse_cgroups_path(Some("/a/b"), "x").unwrap(),
            CgroupPath::FromRoot("a/b".into())
        );
        assert_eq!(
            parse_cgroups_path(Some("a/b"), "x").unwrap(),
            CgroupPath::FromSelf("a/b".into())
        );
    }

    #[test]
    fn rejects_bad_paths() {
        for bad in ["/", "/a/../b", "a//b", "/a/b/", "./a", "a/."] {
            let err = parse_cgroups_path(Some(bad), "x").unwrap_err();
            assert!(err.to_string().contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn rejects_systemd_paths() {
        let err = parse_cgroups_path(Some("system.slice:berth:abc"), "x").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("systemd cgroup paths"), "{text}");
        assert!(text.contains("use a path"), "{text}");
    }

    #[test]
    fn parses_proc_self_cgroup() {
        let text = "12:cpu,cpuacct:/user.slice\n1:name=systemd:/init.scope\n0::/x/y\n";
        let entries = parse_proc_cgroup(text);
        assert_eq!(
            own_cgroup(&entries, "cpuacct").as_deref(),
            Some("/user.slice")
        );
        assert_eq!(
            own_cgroup(&entries, "name=systemd").as_deref(),
            Some("/init.scope")
        );
        assert_eq!(own_cgroup(&entries, "").as_deref(), Some("/x/y"));
        assert_eq!(own_cgroup(&entries, "memory"), None);
    }

    #[test]
    fn parses_mountinfo_cgroup_lines() {
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
41 31 0:38 /docker/1 /sys/fs/cgroup/un\\040ified rw - cgroup2 cgroup2 rw,nsdelegate
";
        let mounts = parse_cgroup_mounts(text);
        assert_eq!(mounts.len(), 2);
        assert_eq!(
            mounts[0].mount_point,
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert!(!mounts[0].unified);
        assert!(mounts[0].options.contains(&"cpuacct".to_string()));
        assert_eq!(mounts[1].mount_point, Path::new("/sys/fs/cgroup/un ified"));
        assert_eq!(mounts[1].root, "/docker/1");
        assert!(mounts[1].unified);
    }

    #[test]
    fn resolves_against_root_or_own_cgroup() {
        let mp = Path::new("/sys/fs/cgroup/memory");
        let abs = CgroupPath::FromRoot("berth/c1".into());
        assert_eq!(
            resolve(mp, "/", Some("/user"), &abs).unwrap(),
            Path::new("/sys/fs/cgroup/memory/berth/c1")
        );
        let rel = CgroupPath::FromSelf("c1".into());
        assert_eq!(
            resolve(mp, "/", Some("/user/s1"), &rel).unwrap(),
            Path::new("/sys/fs/cgroup/memory/user/s1/c1")
        );
        // Inside a container only /docker/abc is mounted at the mount point.
        assert_eq!(
            resolve(mp, "/docker/abc", Some("/docker/abc/sub"), &rel).unwrap(),
            Path::new("/sys/fs/cgroup/memory/sub/c1")
        );
        assert!(resolve(mp, "/", None, &rel).is_err());
    }
}
