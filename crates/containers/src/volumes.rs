//! Volumes in containers: the anonymous volumes and `--volumes-from` mounts resolved at
//! create, the named volumes a create makes, the copy of the image's content into a new
//! empty volume at start, and which containers use a volume.

use std::collections::{BTreeMap, HashSet};
use std::os::fd::AsFd;
use std::path::Path;

use serde_json::{Value, json};

use crate::mounts::{self, Mount};
use crate::{CONTAINERS, ContainerRecord, ContainerService, Error, Result, internal};

pub(crate) fn volume_error(e: berth_volumes::Error) -> Error {
    match e {
        berth_volumes::Error::NotFound(_) => Error::Missing(e.to_string()),
        berth_volumes::Error::InvalidInput(m) => Error::InvalidInput(m),
        berth_volumes::Error::Conflict(m) => Error::Conflict(m),
        berth_volumes::Error::Internal(m) => Error::Internal(m),
    }
}

fn string_map(m: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
    m.iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect()
}

/// Whether a stored mount is an anonymous volume made for its container.
fn is_own_anonymous(v: &Value) -> bool {
    v["Anonymous"].as_bool() == Some(true)
}

/// A volume event about container `container`, as dockerd's mount and unmount.
fn volume_event(action: &str, volume: &str, container: &str) -> berth_events::Event {
    berth_events::Event::new(berth_events::kind::VOLUME, action, volume)
        .attr("container", container)
        .attr("driver", "local")
}

impl ContainerService {
    /// The mounts a create resolves once: `--volumes-from` (the other container's binds
    /// and volumes, `:ro`/`:rw` overriding their mode), then an anonymous volume for each
    /// `--mount type=volume` without a source and each `Config.Volumes` target (the
    /// image's `VOLUME`s and `-v /path`) that nothing else mounts.
    pub(crate) fn extra_mounts(&self, config: &Value, host: &Value) -> Result<Vec<Value>> {
        let explicit = mounts::from_host_config(host)?;
        let mut taken: HashSet<String> = explicit
            .iter()
            .filter(|m| !(m.kind == "volume" && m.name.is_empty()))
            .map(|m| m.target.trim_end_matches('/').to_string())
            .collect();
        let mut out = Vec::new();
        for spec in host["VolumesFrom"].as_array().into_iter().flatten() {
            let spec = spec.as_str().unwrap_or("");
            let (name, mode) = spec.split_once(':').unwrap_or((spec, ""));
            let read_only = match mode {
                "" => None,
                "ro" => Some(true),
                "rw" => Some(false),
                other => {
                    return Err(Error::InvalidInput(format!(
                        "invalid mode for volumes-from: {other}"
                    )));
                }
            };
            let source = self.get(name).map_err(|_| {
                Error::InvalidInput(format!("No such container: {name} (in --volumes-from)"))
            })?;
            for mut m in self.all_mounts(&source)? {
                if m.kind == "tmpfs" || !taken.insert(m.target.trim_end_matches('/').to_string()) {
                    continue;
                }
                if let Some(ro) = read_only {
                    m.read_only = ro;
                }
                out.push(m.stored());
            }
        }
        let anonymous_targets = explicit
            .iter()
            .filter(|m| m.kind == "volume" && m.name.is_empty())
            .map(|m| m.target.clone())
            .chain(
                config["Volumes"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(t, _)| t.clone()),
            );
        for target in anonymous_targets {
            if !target.starts_with('/') {
                return Err(Error::InvalidInput(format!(
                    "invalid volume: {target}: the path must be absolute"
                )));
            }
            if !taken.insert(target.trim_end_matches('/').to_string()) {
                continue;
            }
            let name = berth_types::id::random_hex(32).map_err(internal)?;
            let mut v = Mount::volume(&name, &target, false).stored();
            v["Anonymous"] = json!(true);
            out.push(v);
        }
        Ok(out)
    }

    /// Every mount of a container, volumes resolved to their directories.
    pub(crate) fn all_mounts(&self, rec: &ContainerRecord) -> Result<Vec<Mount>> {
        let mut out = mounts::from_host_config(&rec.host_config)?;
        let extra: Vec<Mount> = rec
            .extra_mounts
            .iter()
            .filter_map(Mount::from_stored)
            .collect();
        for m in out
            .iter_mut()
            .filter(|m| m.kind == "volume" && m.name.is_empty())
        {
            if let Some(e) = extra.iter().find(|e| e.target == m.target) {
                m.name = e.name.clone();
            }
        }
        for e in extra {
            if !out
                .iter()
                .any(|m| m.target.trim_end_matches('/') == e.target.trim_end_matches('/'))
            {
                out.push(e);
            }
        }
        for m in out.iter_mut().filter(|m| m.kind == "volume") {
            let mut dir = self.volumes.mountpoint(&m.name);
            if !m.subpath.is_empty() {
                dir.push(&m.subpath);
            }
            m.source = dir.display().to_string();
        }
        Ok(out)
    }

    /// Makes the volumes a new container names: named ones that do not exist yet (with
    /// `--mount`'s volume labels and options) and its anonymous ones.
    pub(crate) fn create_volumes(&self, rec: &ContainerRecord) -> Result<()> {
        let own: HashSet<&str> = rec
            .extra_mounts
            .iter()
            .filter(|v| is_own_anonymous(v))
            .filter_map(|v| v["Name"].as_str())
            .collect();
        for m in self.all_mounts(rec)? {
            if m.kind != "volume" || m.name.is_empty() {
                continue;
            }
            if own.contains(m.name.as_str()) {
                let mut labels = BTreeMap::new();
                labels.insert(berth_volumes::ANONYMOUS_LABEL.to_string(), String::new());
                self.volumes
                    .create(
                        Some(&m.name),
                        "local",
                        string_map(&m.volume_options),
                        labels,
                    )
                    .map_err(volume_error)?;
            } else if self.volumes.get(&m.name).is_err() {
                self.volumes
                    .create(
                        Some(&m.name),
                        "local",
                        string_map(&m.volume_options),
                        string_map(&m.volume_labels),
                    )
                    .map_err(volume_error)?;
            }
        }
        Ok(())
    }

    /// At start: every volume ready (driver options mounted), and an empty one filled
    /// with the image's content at its path unless `nocopy`. Returns all mounts.
    pub(crate) fn prepare_volumes(
        &self,
        rec: &ContainerRecord,
        rootfs: &Path,
    ) -> Result<Vec<Mount>> {
        let mut all = self.all_mounts(rec)?;
        for (n, m) in all
            .iter_mut()
            .enumerate()
            .filter(|(_, m)| m.kind == "volume")
        {
            let dir = self.volumes.prepare(&m.name).map_err(volume_error)?;
            self.events.emit(
                volume_event("mount", &m.name, &rec.id)
                    .attr("destination", &m.target)
                    .attr("propagation", &m.propagation)
                    .attr("read/write", (!m.read_only).to_string()),
            );
            if !m.subpath.is_empty() {
                m.source = self.stage_subpath(&rec.id, n, &dir, m)?;
                continue;
            }
            if m.nocopy || !self.volumes.is_empty(&m.name) {
                continue;
            }
            // The image path is resolved inside the rootfs: a symlink in the image must
            // not lead the copy to the host's files.
            let root = std::fs::File::open(rootfs).map_err(internal)?;
            let inside = Path::new(m.target.trim_start_matches('/'));
            let Ok(src) = berth_sys::inroot::open_path(root.as_fd(), inside) else {
                continue;
            };
            let src = berth_sys::inroot::fd_path(&src);
            berth_volumes::copy_tree(&src, &dir).map_err(|e| {
                Error::Internal(format!(
                    "copy the image's {} into volume {}: {e}",
                    m.target, m.name
                ))
            })?;
        }
        Ok(all)
    }

    /// After an exit: volumes mounted by their driver options that no other running
    /// container uses are unmounted.
    pub(crate) fn release_volumes(&self, rec: &ContainerRecord) {
        let Ok(mine) = self.all_mounts(rec) else {
            return;
        };
        let Ok(recs) = self.db.read(|tx| tx.list(&CONTAINERS)) else {
            return;
        };
        for m in mine.iter().filter(|m| m.kind == "volume") {
            self.events.emit(volume_event("unmount", &m.name, &rec.id));
            let in_use = recs.iter().any(|(id, r)| {
                *id != rec.id
                    && matches!(r.state.status.as_str(), "running" | "paused")
                    && self
                        .all_mounts(r)
                        .is_ok_and(|ms| ms.iter().any(|o| o.kind == "volume" && o.name == m.name))
            });
            if !in_use {
                self.volumes.release(&m.name);
            }
        }
    }

    /// Binds the volume's subpath, resolved inside the volume, at a private staging
    /// directory and returns it: the runtime mounts that, so no symlink the volume holds
    /// (or gets later) can turn the subpath into a host path.
    fn stage_subpath(&self, id: &str, n: usize, volume_dir: &Path, m: &Mount) -> Result<String> {
        let vol = std::fs::File::open(volume_dir).map_err(internal)?;
        let sub = berth_sys::inroot::open_path(vol.as_fd(), Path::new(&m.subpath));
        let sub = sub.ok().filter(|fd| {
            rustix::fs::fstat(fd).is_ok_and(|st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
            })
        });
        let Some(sub) = sub else {
            return Err(Error::InvalidInput(format!(
                "cannot mount volume {} at {}: its subpath {:?} is not a directory in it",
                m.name, m.target, m.subpath
            )));
        };
        let staging = self.run_dir(id).join("subpaths").join(n.to_string());
        std::fs::create_dir_all(&staging).map_err(internal)?;
        rustix::mount::mount_bind(berth_sys::inroot::fd_path(&sub), &staging)
            .map_err(|e| Error::Internal(format!("stage subpath {}: {e}", m.subpath)))?;
        Ok(staging.display().to_string())
    }

    /// Unmounts what [`ContainerService::stage_subpath`] bound for a run.
    pub(crate) fn unstage_subpaths(&self, id: &str) {
        let dir = self.run_dir(id).join("subpaths");
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let _ = rustix::mount::unmount(e.path(), rustix::mount::UnmountFlags::DETACH);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The containers (any state) that mount volume `name`.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        let recs = self.db.read(|tx| tx.list(&CONTAINERS))?;
        Ok(recs
            .into_iter()
            .filter(|(_, r)| {
                self.all_mounts(r)
                    .unwrap_or_default()
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == name)
            })
            .map(|(id, _)| id)
            .collect())
    }

    /// After a removal with `-v` (or of a `--rm` container): its own anonymous volumes go,
    /// unless another container mounts them (`--volumes-from`).
    pub(crate) fn remove_anonymous_volumes(&self, rec: &ContainerRecord) {
        for v in rec.extra_mounts.iter().filter(|v| is_own_anonymous(v)) {
            let Some(name) = v["Name"].as_str() else {
                continue;
            };
            if self.volume_users(name).is_ok_and(|u| u.is_empty())
                && let Err(e) = self.volumes.remove(name)
            {
                tracing::warn!(volume = name, "remove an anonymous volume: {e}");
            }
        }
    }
}
