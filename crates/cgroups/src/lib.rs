//! Control groups for Berth containers, on cgroup v1 and v2.
//!
//! # What this crate owns
//!
//! One container's cgroup: creating its directories (in every v1 hierarchy,
//! or in the unified v2 hierarchy with controllers enabled on the way
//! down), moving processes into it, writing OCI `linux.resources` into the
//! controller files (and, on v2, the device-filter eBPF program), freezing
//! and thawing it, listing its processes, reading its usage statistics in
//! runc's `events --stats` shape, signalling everything in it and removing
//! it again.
//!
//! # What it must not touch
//!
//! Nothing outside the container's own cgroup directories, except the
//! parents it creates and the ancestors' `cgroup.subtree_control` (v2),
//! and `cpuset.cpus`/`cpuset.mems` of the parents it fills in (v1). It does
//! not know about containers beyond an id and a path: no namespaces, no
//! processes it did not get a pid for, no HTTP, no CLI, no systemd (systemd
//! "slice:prefix:name" paths are rejected).
//!
//! # Who calls it
//!
//! The OCI runtime library (`berth-runtime`), from a single-threaded
//! process:
//!
//! - [`Manager::new`], [`Manager::validate`], [`Manager::create`],
//!   [`Manager::apply`] and [`Manager::add_process`] before the container's
//!   init runs;
//! - [`Manager::freeze`] / [`Manager::thaw`] for pause / resume;
//! - [`Manager::pids`] for `ps`, [`Manager::stats`] for `events --stats`;
//! - [`Manager::kill_all`] and [`Manager::destroy`] on delete.
//!
//! The version is detected at run time ([`detect`]): pure cgroup v2 when
//! `/sys/fs/cgroup/cgroup.controllers` exists, otherwise v1 (hybrid hosts
//! included, whose v2 mount is left alone).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use oci_spec::runtime::LinuxResources;

mod bpf;
pub mod convert;
mod devices;
mod error;
mod fs;
mod path;
mod stats;
mod stats_v1;
mod stats_v2;
mod v1;
mod v2;
mod validate;

pub use error::{Error, Result};
pub use stats::{
    Blkio, BlkioEntry, Cpu, CpuSet, CpuUsage, Hugetlb, IntelRdt, Memory, MemoryEntry,
    NetworkInterface, Pids, PsiData, PsiStats, Stats, Throttling,
};

/// Where cgroup file systems are mounted on a normal host.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup interface in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// One hierarchy per controller (also hybrid hosts).
    V1,
    /// The single unified hierarchy.
    V2,
}

/// V2 iff `/sys/fs/cgroup/cgroup.controllers` exists (a pure unified
/// host); hybrid hosts, which mount v2 at `/sys/fs/cgroup/unified`, are V1.
pub fn detect() -> Version {
    if Path::new(DEFAULT_ROOT).join("cgroup.controllers").exists() {
        Version::V2
    } else {
        Version::V1
    }
}

/// One container's cgroup. Cheap to clone; clones share the record of
/// which parent directories [`Manager::create`] made.
#[derive(Clone, Debug)]
pub struct Manager {
    backend: Backend,
    /// Directories made by `create` in this process, so `destroy` removes
    /// exactly those parents. A Manager rebuilt in another process (e.g.
    /// `delete` after `create`) only removes the container's own
    /// directories, leaving shared parents such as `/berth` in place.
    created: Arc<Mutex<Vec<PathBuf>>>,
}

#[derive(Clone, Debug)]
enum Backend {
    V1(v1::V1),
    V2(v2::V2),
}

impl Manager {
    /// Resolve the container's cgroup under `/sys/fs/cgroup` for the
    /// detected version.
    ///
    /// `cgroups_path` is OCI `linux.cgroupsPath`: absolute (`/a/b`) is below
    /// each hierarchy's root, relative (`a/b`) below this process's own
    /// cgroup, `None` (or empty) means `/berth/<container_id>`. `..`, empty
    /// components and systemd `slice:prefix:name` paths are rejected.
    /// Nothing is created yet.
    pub fn new(cgroups_path: Option<&str>, container_id: &str) -> Result<Manager> {
        Manager::with_root(
            Path::new(DEFAULT_ROOT),
            detect(),
            cgroups_path,
            container_id,
        )
    }

    /// Like [`Manager::new`] with an explicit cgroup root and version: for
    /// v1, the directory holding the hierarchy mounts; for v2, the cgroup2
    /// mount itself (e.g. `/sys/fs/cgroup/unified` on a hybrid host).
    pub fn with_root(
        root: &Path,
        version: Version,
        cgroups_path: Option<&str>,
        container_id: &str,
    ) -> Result<Manager> {
        let cgroup_path = path::parse_cgroups_path(cgroups_path, container_id)?;
        let backend = match version {
            Version::V1 => Backend::V1(v1::V1::discover(root, &cgroup_path)?),
            Version::V2 => Backend::V2(v2::V2::discover(root, &cgroup_path)?),
        };
        let manager = Manager {
            backend,
            created: Arc::default(),
        };
        // The default parent (`/berth`) belongs to the runtime: count it as made by us in
        // every process, so the last container's destroy removes it once it is empty.
        if cgroups_path.is_none_or(str::is_empty) {
            let parents: Vec<PathBuf> = manager
                .paths()
                .values()
                .filter_map(|p| p.parent().map(Path::to_path_buf))
                .collect();
            manager
                .created
                .lock()
                .expect("not poisoned")
                .extend(parents);
        }
        Ok(manager)
    }

    /// The cgroup version this manager drives.
    pub fn version(&self) -> Version {
        match self.backend {
            Backend::V1(_) => Version::V1,
            Backend::V2(_) => Version::V2,
        }
    }

    /// Check that `res` can be applied on this host, without changing
    /// anything. The error names the config field and the value.
    pub fn validate(&self, res: &LinuxResources) -> Result<()> {
        validate::validate(res, self.caps())
    }

    /// Create the cgroup directories (see the crate docs for what else is
    /// touched). Safe to call when they already exist.
    pub fn create(&self) -> Result<()> {
        let mut made = Vec::new();
        let result = match &self.backend {
            Backend::V1(v1) => v1.create(&mut made),
            Backend::V2(v2) => v2.create(&mut made),
        };
        // Recorded even on failure, so destroy() can clean up a half-made tree.
        self.created_dirs().extend(made);
        result
    }

    /// Validate, then write `res` into the cgroup. Fields left unset (or 0
    /// where OCI uses 0 for "unset") are not touched, so this also serves
    /// `update`. A write the kernel refuses names the file and value.
    pub fn apply(&self, res: &LinuxResources) -> Result<()> {
        self.validate(res)?;
        match &self.backend {
            Backend::V1(v1) => v1.apply(res),
            Backend::V2(v2) => v2.apply(res),
        }
    }

    /// Move process `pid` into the cgroup (every hierarchy on v1).
    pub fn add_process(&self, pid: i32) -> Result<()> {
        match &self.backend {
            Backend::V1(v1) => v1.add_process(pid),
            Backend::V2(v2) => v2.add_process(pid),
        }
    }

    /// Freeze every process and wait until the kernel says it is done.
    pub fn freeze(&self) -> Result<()> {
        match &self.backend {
            Backend::V1(v1) => v1.freeze(),
            Backend::V2(v2) => v2.freeze(),
        }
    }

    /// Undo [`Manager::freeze`] and wait until the kernel says it is done.
    pub fn thaw(&self) -> Result<()> {
        match &self.backend {
            Backend::V1(v1) => v1.thaw(),
            Backend::V2(v2) => v2.thaw(),
        }
    }

    /// Whether the cgroup is (completely) frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        match &self.backend {
            Backend::V1(v1) => v1.is_frozen(),
            Backend::V2(v2) => v2.is_frozen(),
        }
    }

    /// Every process in the cgroup and its child cgroups, sorted.
    pub fn pids(&self) -> Result<Vec<i32>> {
        match &self.backend {
            Backend::V1(v1) => v1.pids(),
            Backend::V2(v2) => v2.pids(),
        }
    }

    /// Usage statistics, serializing like runc's `events --stats` data.
    pub fn stats(&self) -> Result<Stats> {
        match &self.backend {
            Backend::V1(v1) => stats_v1::collect(v1),
            Backend::V2(v2) => stats_v2::collect(v2.dir()),
        }
    }

    /// How many processes the kernel's OOM killer has killed in the cgroup
    /// (`oom_kill` of v1's `memory.oom_control`, kernel 4.13+, or v2's
    /// `memory.events`); 0 when unknown.
    pub fn oom_kills(&self) -> u64 {
        let (dir, file) = match &self.backend {
            Backend::V1(v1) => match v1.paths().get("memory") {
                Some(d) => (d.clone(), "memory.oom_control"),
                None => return 0,
            },
            Backend::V2(v2) => (v2.dir().to_path_buf(), "memory.events"),
        };
        std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|text| {
                text.lines().find_map(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse().ok())
                })
            })
            .unwrap_or(0)
    }

    /// Send `signal` to every process in the cgroup.
    ///
    /// On v2 with SIGKILL, `cgroup.kill` does it atomically. Otherwise the
    /// cgroup is frozen first (when a freezer exists) so nothing can fork
    /// past the signal, every pid is signalled, and the cgroup is thawed so
    /// the signals are delivered.
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        if let Backend::V2(v2) = &self.backend
            && v2.kill_via_cgroup_kill(signal)?
        {
            return Ok(());
        }
        let has_freezer = match &self.backend {
            Backend::V1(v1) => v1.has_freezer(),
            Backend::V2(v2) => v2.has_freezer(),
        };
        // A freeze that times out thaws again; signalling still goes ahead.
        let frozen = has_freezer && self.freeze().is_ok();
        let signalled = match self.pids() {
            Ok(pids) => pids
                .into_iter()
                .try_for_each(|pid| fs::send_signal(pid, signal)),
            // No cgroup (already destroyed): nothing left to signal.
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        };
        if frozen {
            self.thaw()?;
        }
        signalled
    }

    /// Remove the cgroup (child cgroups included; retried for up to about a
    /// second while the kernel reports it busy) and the parent directories
    /// that [`Manager::create`] made, unless another cgroup now uses them.
    /// Directories that are already gone are fine. Kill the processes first.
    pub fn destroy(&self) -> Result<()> {
        let mut created = self.created_dirs();
        match &self.backend {
            Backend::V1(v1) => v1.destroy(&created)?,
            Backend::V2(v2) => v2.destroy(&created)?,
        }
        // Parents still in use by another cgroup stay on the list, so a
        // later destroy() (e.g. of this container again) can retry them.
        created.retain(|dir| dir.exists());
        Ok(())
    }

    /// Controller -> the container's directory (v1; co-mounted controllers
    /// share one), or `"" -> directory` on v2.
    pub fn paths(&self) -> BTreeMap<String, PathBuf> {
        match &self.backend {
            Backend::V1(v1) => v1.paths().clone(),
            Backend::V2(v2) => BTreeMap::from([(String::new(), v2.dir().to_path_buf())]),
        }
    }

    fn caps(&self) -> &dyn validate::HostCaps {
        match &self.backend {
            Backend::V1(v1) => v1,
            Backend::V2(v2) => v2,
        }
    }

    fn created_dirs(&self) -> std::sync::MutexGuard<'_, Vec<PathBuf>> {
        // The list stays consistent even if a panic poisoned the lock.
        self.created.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
