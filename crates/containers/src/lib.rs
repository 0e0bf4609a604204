//! # berth-containers
//!
//! Containers as Docker sees them: a record (config, host config, state) in the metadata
//! store, a name, a writable overlay over the image's snapshots, an OCI bundle generated
//! from image and request, and a `berth-shim` that runs it.
//!
//! **Owns:** `data-root/containers/<id>/` (upper and work dirs, hostname, hosts,
//! resolv.conf, log) and `exec-root/containers/<id>/` (bundle, rootfs mount point, shim
//! sockets, exit record); the `containers` and `container_names` tables.
//! **Does not:** know HTTP or pull images; networks are `berth-network`'s, joined here.

mod archive;
mod attach;
pub mod changes;
pub mod error;
mod events;
mod exec;
mod filters;
mod health;
mod history;
mod hostconfig;
mod links;
mod logconfig;
mod logs;
mod monitor;
mod mounts;
mod names;
mod netconf;
mod ops;
mod resources;
mod restart;
mod seccomp;
pub mod spec;
mod stats;
mod view;
mod volumes;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_content::Store;
use berth_images::ImageStore;
use berth_metadata::{Db, PrefixMatch, Table};
use berth_snapshots::Snapshotter;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use berth_runtime::signal;
pub use error::{Error, Result};
pub use exec::ExecRecord;
pub use history::Point;
pub use logconfig::LogConfig;
pub use logs::LogOptions;

/// A container's lifecycle state, in Docker's words.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// created, running, paused, exited.
    pub status: String,
    /// Host pid of the container's init while it runs.
    pub pid: i32,
    /// Exit code once exited.
    pub exit_code: i32,
    /// RFC 3339, empty before the first start.
    pub started_at: String,
    /// RFC 3339, empty before the first exit.
    pub finished_at: String,
    /// Why the last start failed.
    pub error: String,
    /// The shim's pid while the container runs.
    #[serde(default)]
    pub shim_pid: i32,
    /// Whether the kernel's OOM killer struck in the container's cgroup during the last
    /// run.
    #[serde(default)]
    pub oom_killed: bool,
}

/// What is stored per container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// The image's id.
    pub image_id: String,
    /// Docker's Config, merged with the image's defaults.
    pub config: Value,
    /// Docker's HostConfig as sent.
    pub host_config: Value,
    /// Chain ids of the image's layers, bottom first.
    pub chain: Vec<String>,
    /// Lifecycle state.
    pub state: State,
    /// Restart policy bookkeeping.
    #[serde(default)]
    pub restart: restart::RestartState,
    /// `NetworkingConfig.EndpointsConfig` as sent at create: per network, the address,
    /// aliases and MAC address asked for.
    #[serde(default)]
    pub networking: Value,
    /// Mounts resolved at create ([`mounts::Mount::stored`]): anonymous volumes and what
    /// `--volumes-from` brought.
    #[serde(default)]
    pub extra_mounts: Vec<Value>,
    /// `.State.Health` of the current run, when the container has a healthcheck.
    #[serde(default)]
    pub health: Option<health::Health>,
}

const CONTAINERS: Table<ContainerRecord> = Table::new("containers");
const NAMES: Table<String> = Table::new("container_names");

/// The container service.
#[derive(Clone)]
pub struct ContainerService {
    db: Arc<Db>,
    images: ImageStore,
    content: Store,
    snapshots: Snapshotter,
    network: berth_network::NetworkService,
    volumes: berth_volumes::VolumeService,
    data_root: PathBuf,
    exec_root: PathBuf,
    shim: PathBuf,
    execs: Arc<std::sync::Mutex<std::collections::HashMap<String, ExecRecord>>>,
    log_defaults: LogConfig,
    monitor: Arc<monitor::Monitor>,
    /// Exit codes of containers removed lately, for waiters that saw them only running
    /// (an auto-removed container can exit and go between two looks).
    removed_exits: Arc<std::sync::Mutex<std::collections::HashMap<String, i32>>>,
    /// Bumped whenever a record changes or goes, for waiters.
    changes: Arc<Changes>,
    /// The static init binary `--init` mounts (tini).
    init_path: Option<PathBuf>,
    /// Containers being started, or having an exit recorded, now, with the thread doing
    /// it: one at a time per container (a restart by the policy and one at berthd's
    /// start, or two clients, must not run over each other, and the network of an exited
    /// run is released before a new run can set up its own).
    starting: Arc<std::sync::Mutex<std::collections::HashMap<String, std::thread::ThreadId>>>,
    events: berth_events::Events,
    /// Resource history of running containers (see [`history`]).
    history: Arc<history::History>,
}

/// Where a starting container's network namespace and /etc files are.
struct NetPlan {
    /// The namespace to join; `None` for the host's.
    netns: Option<PathBuf>,
    /// Variables its links add to its environment.
    link_env: Vec<String>,
    hostname: PathBuf,
    hosts: PathBuf,
    resolv: PathBuf,
}

/// Holds a container's place in `starting` until dropped.
struct StartGuard<'a> {
    set: &'a std::sync::Mutex<std::collections::HashMap<String, std::thread::ThreadId>>,
    id: String,
}

/// What [`ContainerService::claim_slot`] found.
enum Slot<'a> {
    /// Ours until dropped.
    Claimed(StartGuard<'a>),
    /// This thread holds it already (a start that refreshes its own record).
    Ours,
    /// Another thread holds it.
    Busy,
}

impl Drop for StartGuard<'_> {
    fn drop(&mut self) {
        self.set.lock().expect("not poisoned").remove(&self.id);
    }
}

/// A change counter with a condition variable: waiters sleep until a record changes
/// instead of polling.
#[derive(Default)]
struct Changes {
    generation: std::sync::Mutex<u64>,
    cond: std::sync::Condvar,
}

impl Changes {
    fn generation(&self) -> u64 {
        *self.generation.lock().expect("not poisoned")
    }

    fn bump(&self) {
        *self.generation.lock().expect("not poisoned") += 1;
        self.cond.notify_all();
    }

    /// Sleeps until the counter passes `seen` or `timeout` elapses.
    fn wait_past(&self, seen: u64, timeout: Duration) {
        let guard = self.generation.lock().expect("not poisoned");
        let _ = self
            .cond
            .wait_timeout_while(guard, timeout, |g| *g == seen)
            .expect("not poisoned");
    }
}

/// Docker's conflict for a name another container holds.
fn name_in_use(name: &str, other: &str) -> Error {
    Error::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

fn random_hex(bytes: usize) -> Result<String> {
    berth_types::id::random_hex(bytes).map_err(internal)
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// The services containers are made from.
pub struct Parts {
    /// The metadata store.
    pub db: Arc<Db>,
    /// Images.
    pub images: ImageStore,
    /// Blobs.
    pub content: Store,
    /// Networks.
    pub network: berth_network::NetworkService,
    /// Volumes.
    pub volumes: berth_volumes::VolumeService,
    /// The event bus.
    pub events: berth_events::Events,
}

impl ContainerService {
    /// A service over the shared stores; `shim` is the path of the `berth-shim` binary.
    pub fn new(parts: Parts, data_root: &Path, exec_root: &Path, shim: PathBuf) -> Result<Self> {
        let snapshots = Snapshotter::open(data_root.join("snapshots")).map_err(internal)?;
        let Parts {
            db,
            images,
            content,
            network,
            volumes,
            events,
        } = parts;
        Ok(ContainerService {
            db,
            images,
            content,
            snapshots,
            network,
            volumes,
            data_root: data_root.into(),
            exec_root: exec_root.into(),
            shim,
            execs: Arc::default(),
            log_defaults: LogConfig::default(),
            monitor: Arc::new(monitor::Monitor::new().map_err(internal)?),
            removed_exits: Arc::default(),
            changes: Arc::default(),
            init_path: None,
            starting: Arc::default(),
            events,
            history: Arc::default(),
        })
    }

    /// Sets the init binary `--init` uses (a static tini, as Docker's docker-init is).
    pub fn with_init_path(mut self, path: Option<PathBuf>) -> Self {
        self.init_path = path;
        self
    }

    /// Sets the logging defaults containers get when their LogConfig names none.
    pub fn with_log_defaults(mut self, defaults: LogConfig) -> Self {
        self.log_defaults = defaults;
        self
    }

    fn data_dir(&self, id: &str) -> PathBuf {
        self.data_root.join("containers").join(id)
    }

    fn run_dir(&self, id: &str) -> PathBuf {
        self.exec_root.join("containers").join(id)
    }

    fn runtime_root(&self) -> PathBuf {
        self.exec_root.join("runtime")
    }

    /// The shim's attach socket of a running container.
    pub fn attach_socket(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("attach.sock")
    }

    /// Finds a container by full id, name, or unique id prefix, with its state refreshed.
    pub fn get(&self, name: &str) -> Result<ContainerRecord> {
        let rec = self.lookup(name)?;
        self.refresh(rec)
    }

    fn lookup(&self, name: &str) -> Result<ContainerRecord> {
        let key = name.strip_prefix('/').unwrap_or(name);
        self.db.read(|tx| -> Result<ContainerRecord> {
            if let Some(rec) = tx.get(&CONTAINERS, key)? {
                return Ok(rec);
            }
            if let Some(id) = tx.get(&NAMES, key)?
                && let Some(rec) = tx.get(&CONTAINERS, &id)?
            {
                return Ok(rec);
            }
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::NotFound(name.into()));
            }
            match tx.by_unique_prefix(&CONTAINERS, key)? {
                PrefixMatch::One(rec) => Ok(rec),
                PrefixMatch::Many => Err(Error::NotFound(format!(
                    "{name} (ambiguous: give more of the id)"
                ))),
                PrefixMatch::None => Err(Error::NotFound(name.into())),
            }
        })
    }

    /// Changes a stored record in one transaction, reading it afresh so concurrent
    /// changes to other fields survive; a record removed meanwhile stays removed.
    fn modify(&self, id: &str, f: impl FnOnce(&mut ContainerRecord)) -> Result<ContainerRecord> {
        self.db
            .write(|tx| -> Result<ContainerRecord> {
                let Some(mut rec) = tx.get(&CONTAINERS, id)? else {
                    return Err(Error::NotFound(id.to_string()));
                };
                f(&mut rec);
                tx.put(&CONTAINERS, id, &rec)?;
                Ok(rec)
            })
            .inspect(|_| self.changes.bump())
    }

    /// Brings a running record up to date with the shim's exit record and the runtime.
    fn refresh(&self, mut rec: ContainerRecord) -> Result<ContainerRecord> {
        if rec.state.status != "running" && rec.state.status != "paused" {
            return Ok(rec);
        }
        // The shim's liveness is looked at before its exit record: a shim writes the
        // record and then exits, so a shim seen dead has written all it ever will.
        // (In the other order, a record missing at the first look and a shim gone at
        // the second made a clean exit look like a lost one: 255, seen in CI.)
        let supervised = rec.state.shim_pid > 0 && shim_alive(rec.state.shim_pid, &rec.id);
        let exit_file = self.run_dir(&rec.id).join("exit.json");
        let read_exit = || -> Option<Value> {
            std::fs::read(&exit_file)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
        };
        let mut exited = read_exit();
        // Held while an orphan is looked at: two refreshes must not both decide about
        // it (the second would find the runtime's state already gone and say 255).
        let mut _orphan_slot = None;
        if exited.is_none() && !supervised {
            _orphan_slot = Some(self.wait_for_slot(&rec.id));
            // Another refresh may have ended it while this one waited.
            exited = read_exit().or_else(|| Some(self.end_orphan(&rec.id, &exit_file)));
        } else if exited.is_none() {
            // Supervised: the recorded status stands (pause and unpause record theirs).
            // This is the common case and costs two small reads under /proc.
            return Ok(rec);
        }
        if let Some(e) = exited {
            rec.state.status = "exited".into();
            rec.state.exit_code = e["ExitCode"].as_i64().unwrap_or(255) as i32;
            rec.state.oom_killed = e["OOMKilled"].as_bool().unwrap_or(false);
            rec.state.finished_at = e["FinishedAt"].as_str().unwrap_or("").to_string();
            if let Some(err) = e["Error"].as_str() {
                rec.state.error = err.to_string();
            }
        }
        rec.state.pid = 0;
        self.unmount_rootfs(&rec.id);
        // The network goes before the exit is seen (`docker stop` then `run -p` of the
        // same port must work), and before a new run can make its own.
        let slot = self.wait_for_slot(&rec.id);
        let still_this_run = self
            .db
            .read(|tx| tx.get(&CONTAINERS, &rec.id))?
            .is_some_and(|r| {
                matches!(r.state.status.as_str(), "running" | "paused")
                    && r.state.started_at == rec.state.started_at
            });
        if still_this_run {
            self.network.release(&rec.id);
            self.release_volumes(&rec);
        }
        // Recorded once: concurrent refreshes (the exit monitor, a waiter, a `ps`) race
        // here, and only the one that still finds the run it saw records the exit and
        // acts on it (restart policy, auto-remove).
        let state = rec.state.clone();
        let seen_start = rec.state.started_at.clone();
        let mut recorded = false;
        let rec = self.modify(&rec.id, |r| {
            let same_run = matches!(r.state.status.as_str(), "running" | "paused")
                && r.state.started_at == seen_start;
            if same_run {
                r.state = state;
                recorded = true;
                // In the same transaction: nobody may see it `exited` (and remove it
                // without force) when the policy is about to restart it.
                restart::mark_restarting(r);
            }
        })?;
        drop(slot);
        if !recorded {
            return Ok(rec);
        }
        if rec.state.oom_killed {
            self.emit(&rec, "oom");
        }
        self.events.emit(
            self.event(&rec, "die")
                .attr("exitCode", rec.state.exit_code.to_string()),
        );
        let rec = self.after_exit(rec);
        if rec.host_config["AutoRemove"].as_bool() == Some(true) {
            // `--rm` takes the container's anonymous volumes too, as Docker does.
            match self.remove_with_volumes(&rec.id, true, true) {
                // Someone else (the exit monitor, a waiter) removed it first.
                Ok(()) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(rec)
    }

    /// `POST /containers/create` without its warnings (see [`Self::create_with_warnings`]).
    pub fn create(&self, name: Option<&str>, body: &Value) -> Result<String> {
        self.create_with_warnings(name, body).map(|(id, _)| id)
    }

    /// `POST /containers/create`: validates, resolves the image, reserves the name and
    /// stores the record; nothing runs yet. Returns the id and dockerd's warnings (limits
    /// the kernel cannot enforce are discarded with one).
    pub fn create_with_warnings(
        &self,
        name: Option<&str>,
        body: &Value,
    ) -> Result<(String, Vec<String>)> {
        let body = &hostconfig::canonical_keys(body);
        let image_name = body["Image"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::InvalidInput("config.Image: an image is required".into()))?;
        if let Some(n) = name.filter(|n| !n.is_empty())
            && !names::valid(n)
        {
            return Err(Error::InvalidInput(format!(
                "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let image = self.images.inspect(image_name)?;
        let image_id = image["Id"].as_str().unwrap_or_default().to_string();
        let id = random_hex(32)?;
        let mut config = merge_config(&image["Config"], body, &id, image_name);
        let hostname_given = body["Hostname"].as_str().is_some_and(|h| !h.is_empty());
        if netconf::mode(&body["HostConfig"]) == netconf::Mode::Host && !hostname_given {
            // On the host's network a container carries the host's name, as in Docker.
            let uname = rustix::system::uname();
            config["Hostname"] = json!(uname.nodename().to_string_lossy());
        }
        spec::argv(&config)?;
        spec::capabilities(&body["HostConfig"])?;
        hostconfig::validate(&body["HostConfig"])?;
        let (host_config, warnings) = resources::adapt(&body["HostConfig"])?;
        LogConfig::for_container(&body["HostConfig"], &self.log_defaults)?;
        mounts::from_host_config(&body["HostConfig"])?;
        restart::validate(&body["HostConfig"])?;
        health::validate(&config, &body["HostConfig"])?;
        netconf::validate(&self.network, &config, &body["HostConfig"])?;
        netconf::validate_endpoints(
            &body["HostConfig"],
            &body["NetworkingConfig"]["EndpointsConfig"],
        )?;
        for l in links::parse(&body["HostConfig"])? {
            self.lookup(&l.target).map_err(|_| {
                Error::InvalidInput(format!(
                    "could not get container for {}: no such container",
                    l.target
                ))
            })?;
        }
        if let netconf::Mode::Container(other) = netconf::mode(&body["HostConfig"]) {
            self.lookup(&other)?;
        }
        let diff_ids: Vec<String> = image["RootFS"]["Layers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let chain = berth_snapshots::chain_ids(&diff_ids);
        self.ensure_snapshots(&diff_ids, &chain)?;
        let extra_mounts = self.extra_mounts(&config, &body["HostConfig"])?;
        let rec = ContainerRecord {
            id: id.clone(),
            name: String::new(),
            created: berth_types::time::now_rfc3339(),
            image: image_name.to_string(),
            image_id,
            config,
            host_config: hostconfig::normalize(
                &host_config,
                if self.log_defaults.enabled {
                    "json-file"
                } else {
                    "none"
                },
            ),
            chain,
            state: State {
                status: "created".into(),
                ..Default::default()
            },
            restart: Default::default(),
            health: None,
            networking: body["NetworkingConfig"]["EndpointsConfig"].clone(),
            extra_mounts,
        };
        let wanted = name
            .filter(|n| !n.is_empty())
            .map(|n| n.trim_start_matches('/').to_string());
        if let Some(n) = &wanted
            && let Some(other) = self.db.read(|tx| tx.get(&NAMES, n))?
        {
            return Err(name_in_use(n, &other));
        }
        // Directories and volumes first, the record last: a crash in between leaves
        // directories without a record, which berthd removes when it starts, and at
        // worst an unused anonymous volume (`volume prune` takes it); never a record
        // without its parts.
        let made = ["diff", "work"]
            .iter()
            .try_for_each(|d| std::fs::create_dir_all(self.data_dir(&id).join(d)))
            .map_err(|e| Error::Internal(format!("create the container's directories: {e}")))
            .and_then(|()| self.create_volumes(&rec));
        let stored = made.and_then(|()| {
            self.db.write(|tx| -> Result<()> {
                let name = match &wanted {
                    Some(n) => {
                        if let Some(other) = tx.get(&NAMES, n)? {
                            return Err(name_in_use(n, &other));
                        }
                        n.clone()
                    }
                    None => {
                        let mut n = names::generate(id.as_bytes());
                        let mut salt = 0u8;
                        while tx.get(&NAMES, &n)?.is_some() {
                            salt = salt.wrapping_add(1);
                            n = names::generate(&[
                                id.as_bytes()[0].wrapping_add(salt),
                                id.as_bytes()[1].wrapping_mul(salt | 1),
                            ]);
                            if salt == 255 {
                                n = format!("{n}_{}", &id[..6]);
                            }
                        }
                        n
                    }
                };
                let mut rec = rec.clone();
                rec.name = name.clone();
                tx.put(&NAMES, &name, &id)?;
                tx.put(&CONTAINERS, &id, &rec)?;
                Ok(())
            })
        });
        if let Err(e) = stored {
            // A failed create leaves nothing: no directory, no volume made for it.
            let _ = std::fs::remove_dir_all(self.data_dir(&id));
            self.remove_anonymous_volumes(&rec);
            return Err(e);
        }
        self.changes.bump();
        if let Ok(rec) = self.get(&id) {
            self.emit(&rec, "create");
        }
        Ok((id, warnings))
    }

    /// Removes the snapshots neither an image (by its layers, `images`) nor a container
    /// uses; returns how many went. One a pull is about to use again is unpacked anew
    /// from its stored layer when a container needs it.
    pub fn remove_unused_snapshots(&self, images: &[Vec<String>]) -> Result<usize> {
        let mut keep: std::collections::HashSet<String> = images
            .iter()
            .flat_map(|layers| berth_snapshots::chain_ids(layers))
            .collect();
        keep.extend(self.all()?.into_iter().flat_map(|c| c.chain));
        let mut removed = 0;
        for chain in self.snapshots.list() {
            if !keep.contains(&chain) {
                self.snapshots.remove(&chain).map_err(internal)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn ensure_snapshots(&self, diff_ids: &[String], chain: &[String]) -> Result<()> {
        for (diff, chain_id) in diff_ids.iter().zip(chain) {
            if self.snapshots.exists(chain_id) {
                continue;
            }
            let digest: berth_content::Digest = diff.parse().map_err(internal)?;
            let blob = self.content.open_blob(&digest).map_err(internal)?;
            self.snapshots.unpack(chain_id, blob).map_err(internal)?;
        }
        Ok(())
    }

    fn rootfs(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("rootfs")
    }

    fn mount_rootfs(&self, rec: &ContainerRecord) -> Result<PathBuf> {
        let target = self.rootfs(&rec.id);
        self.unmount_rootfs(&rec.id);
        std::fs::create_dir_all(&target).map_err(internal)?;
        let lower: Vec<String> = self
            .snapshots
            .lowerdirs(&rec.chain)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let data = self.data_dir(&rec.id);
        // An image without layers (`FROM scratch`) still needs a lower directory.
        let lower = if lower.is_empty() {
            let empty = data.join("empty-lower");
            std::fs::create_dir_all(&empty).map_err(internal)?;
            vec![empty.display().to_string()]
        } else {
            lower
        };
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            data.join("diff").display(),
            data.join("work").display()
        );
        berth_runtime::sys::mount(
            Some(Path::new("overlay")),
            &target,
            Some("overlay"),
            0,
            Some(&opts),
        )
        .map_err(|e| Error::Internal(format!("mount the container's rootfs: {e}")))?;
        Ok(target)
    }

    fn unmount_rootfs(&self, id: &str) {
        let target = self.rootfs(id);
        let _ = berth_runtime::sys::umount2(&target, libc::MNT_DETACH);
        self.unstage_subpaths(id);
    }

    /// Puts the container on its network (a prepared namespace with its veths, another
    /// container's namespace, or the host's) and writes the /etc files it will see.
    fn join_network(&self, rec: &ContainerRecord) -> Result<NetPlan> {
        let data = self.data_dir(&rec.id);
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let mut plan = NetPlan {
            netns: None,
            link_env: Vec::new(),
            hostname: data.join("hostname"),
            hosts: data.join("hosts"),
            resolv: data.join("resolv.conf"),
        };
        let (hosts, resolv) = match netconf::mode(&rec.host_config) {
            netconf::Mode::Container(other) => {
                let o = self.get(&other)?;
                if o.state.status != "running" && o.state.status != "paused" {
                    return Err(Error::Conflict(format!(
                        "cannot join network namespace of a non running container: {}",
                        o.id
                    )));
                }
                let od = self.data_dir(&o.id);
                return Ok(NetPlan {
                    netns: Some(PathBuf::from(format!("/proc/{}/ns/net", o.state.pid))),
                    link_env: Vec::new(),
                    hostname: od.join("hostname"),
                    hosts: od.join("hosts"),
                    resolv: od.join("resolv.conf"),
                });
            }
            netconf::Mode::Host => {
                let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
                hosts.push_str(
                    &netconf::hosts_file(rec, None, self.default_gateway())?
                        .lines()
                        .skip(6)
                        .map(|l| format!("{l}\n"))
                        .collect::<String>(),
                );
                let resolv = if rec.host_config["Dns"]
                    .as_array()
                    .is_some_and(|d| !d.is_empty())
                {
                    netconf::resolv_conf(&host_resolv, &rec.host_config)
                } else {
                    host_resolv
                };
                (hosts, resolv)
            }
            netconf::Mode::Loopback => {
                let sb = self
                    .network
                    .prepare(&rec.id, &[], &[], &[])
                    .map_err(netconf::net_error)?;
                plan.netns = Some(sb.netns);
                (
                    netconf::hosts_file(rec, None, self.default_gateway())?,
                    netconf::resolv_conf(&host_resolv, &rec.host_config),
                )
            }
            netconf::Mode::Network(_) => {
                let wanted = netconf::networks_to_join(rec)
                    .iter()
                    .map(|n| netconf::attachment(rec, n))
                    .collect::<Result<Vec<_>>>()?;
                let ports = netconf::port_requests(&rec.config, &rec.host_config)?;
                let upstream = netconf::dns_upstream(&host_resolv, &rec.host_config);
                let sb = self
                    .network
                    .prepare(&rec.id, &wanted, &ports, &upstream)
                    .map_err(netconf::net_error)?;
                let ip = sb.endpoints.first().map(|(_, e)| e.ip);
                let ip6 = sb.endpoints.iter().find_map(|(_, e)| e.ip6);
                let embedded_dns = sb.endpoints.iter().any(|(n, _)| !n.is_default_bridge());
                // Links are a default-bridge feature; elsewhere names come from DNS.
                let on_default_bridge = sb
                    .endpoints
                    .first()
                    .is_some_and(|(n, _)| n.is_default_bridge());
                let specs = if on_default_bridge {
                    links::parse(&rec.host_config)?
                } else {
                    Vec::new()
                };
                let linked = self.resolve_links(rec, &specs)?;
                plan.link_env = linked
                    .iter()
                    .flat_map(|l| links::env(&rec.name, l))
                    .collect();
                plan.netns = Some(sb.netns);
                let resolv = if embedded_dns {
                    netconf::embedded_resolv_conf(&host_resolv, &rec.host_config)
                } else {
                    netconf::resolv_conf(&host_resolv, &rec.host_config)
                };
                let mut hosts = netconf::hosts_file(rec, ip, self.default_gateway())?;
                if let Some(v6) = ip6 {
                    // Its IPv6 address under its names too, as dockerd writes it.
                    let hostname = rec.config["Hostname"].as_str().unwrap_or("");
                    hosts.push_str(&format!("{v6}\t{hostname}\n"));
                }
                hosts.push_str(&links::hosts_lines(&linked));
                (hosts, resolv)
            }
        };
        let hostname = rec.config["Hostname"].as_str().unwrap_or("");
        std::fs::write(&plan.hostname, format!("{hostname}\n")).map_err(internal)?;
        std::fs::write(&plan.hosts, hosts).map_err(internal)?;
        std::fs::write(&plan.resolv, resolv).map_err(internal)?;
        Ok(plan)
    }

    /// `POST /networks/{id}/connect`: the container joins the network now if it runs,
    /// and at every start.
    pub fn connect(&self, name: &str, network: &str, endpoint: &Value) -> Result<()> {
        let rec = self.get(name)?;
        let n = self.network.get(network).map_err(netconf::net_error)?;
        if !matches!(netconf::mode(&rec.host_config), netconf::Mode::Network(_)) {
            return Err(Error::InvalidInput(
                "container sharing network namespace with another container or host cannot be connected to any other network".into(),
            ));
        }
        let mut probe = rec.clone();
        probe.networking[&n.name] = endpoint.clone();
        if netconf::networks_to_join(&rec).contains(&n.name) {
            return Err(Error::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, n.name
            )));
        }
        let wanted = netconf::attachment(&probe, &n.name)?;
        if matches!(rec.state.status.as_str(), "running" | "paused") {
            self.network
                .join(&rec.id, &wanted)
                .map_err(netconf::net_error)?;
        }
        self.modify(&rec.id, |r| {
            if !r.networking.is_object() {
                r.networking = json!({});
            }
            r.networking[&n.name] = endpoint.clone();
        })
        .map(drop)
    }

    /// `DELETE /containers/{linker}/{alias}?link=1`: the link goes from the linker's
    /// configuration (its running processes keep what they were given, as in Docker).
    pub fn remove_link(&self, linker: &str, alias: &str) -> Result<()> {
        let rec = self.get(linker)?;
        let specs = links::parse(&rec.host_config)?;
        if !specs.iter().any(|l| l.alias == alias) {
            return Err(Error::Missing(format!("No such link: {linker}/{alias}")));
        }
        self.modify(&rec.id, |r| {
            let kept: Vec<Value> = r.host_config["Links"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|v| {
                    let s = v.as_str().unwrap_or("");
                    let a = s.split_once(':').map_or(s, |(_, a)| a);
                    a.rsplit('/').next() != Some(alias)
                })
                .cloned()
                .collect();
            r.host_config["Links"] = json!(kept);
        })
        .map(drop)
    }

    /// `POST /networks/{id}/disconnect`.
    pub fn disconnect(&self, name: &str, network: &str) -> Result<()> {
        let rec = self.get(name)?;
        let n = self.network.get(network).map_err(netconf::net_error)?;
        if !netconf::networks_to_join(&rec).contains(&n.name) {
            return Err(Error::InvalidInput(format!(
                "container {} is not connected to network {}",
                rec.id, n.name
            )));
        }
        self.network
            .leave(&rec.id, &n.id)
            .map_err(netconf::net_error)?;
        self.modify(&rec.id, |r| {
            if !r.networking.is_object() {
                r.networking = json!({});
            }
            // null marks a network left, so the mode's own network is not joined again
            // at the next start; `network connect` puts it back.
            r.networking[&n.name] = Value::Null;
        })
        .map(drop)
    }

    /// Finds each link's container, which must be running on the default bridge.
    fn resolve_links<'a>(
        &self,
        rec: &ContainerRecord,
        specs: &'a [links::LinkSpec],
    ) -> Result<Vec<links::Linked<'a>>> {
        let mut out = Vec::new();
        for spec in specs {
            let refuse = || {
                Error::InvalidInput(format!(
                    "Cannot link to a non running container: /{} AS /{}/{}",
                    spec.target, rec.name, spec.alias
                ))
            };
            let target = self.get(&spec.target).map_err(|_| refuse())?;
            let ip = self
                .network
                .endpoints_of(&target.id)
                .map_err(netconf::net_error)?
                .into_iter()
                .find(|(n, _)| n.is_default_bridge())
                .map(|(_, e)| e.ip)
                .ok_or_else(refuse)?;
            out.push(links::Linked { spec, target, ip });
        }
        Ok(out)
    }

    /// The default bridge's gateway, what `host-gateway` stands for.
    fn default_gateway(&self) -> Option<std::net::Ipv4Addr> {
        self.network.get("bridge").ok().and_then(|n| n.gateway)
    }

    /// The network of a container as the views show it.
    fn live_network(&self, rec: &ContainerRecord) -> netconf::Live {
        let endpoints = self.network.endpoints_of(&rec.id).unwrap_or_default();
        let sandbox = matches!(rec.state.status.as_str(), "running" | "paused")
            .then(|| self.network.sandbox_path(&rec.id))
            .filter(|p| p.exists());
        netconf::Live { sandbox, endpoints }
    }

    /// `POST /containers/{id}/start`: rootfs, bundle, shim, then the runtime's start.
    /// `before_start` runs once the container exists but before its process does (attach
    /// clients connect there so they miss no output).
    pub fn start(&self, name: &str, before_start: &mut dyn FnMut(&str)) -> Result<()> {
        let rec = self.get(name)?;
        if rec.state.status != "running" && rec.state.status != "paused" {
            // Started by hand: the policy applies again, and counts afresh.
            self.modify(&rec.id, |r| {
                r.restart.manually_stopped = false;
                r.restart.count = 0;
                r.restart.delay_ms = 0;
            })?;
        }
        self.start_inner(&rec.id, before_start)
    }

    /// Takes the container's start slot if free.
    fn claim_slot(&self, id: &str) -> Slot<'_> {
        let me = std::thread::current().id();
        let mut set = self.starting.lock().expect("not poisoned");
        match set.get(id) {
            Some(t) if *t == me => Slot::Ours,
            Some(_) => Slot::Busy,
            None => {
                set.insert(id.to_string(), me);
                Slot::Claimed(StartGuard {
                    set: &self.starting,
                    id: id.to_string(),
                })
            }
        }
    }

    /// Waits for the container's start slot (starts are short).
    fn wait_for_slot(&self, id: &str) -> Slot<'_> {
        loop {
            match self.claim_slot(id) {
                Slot::Busy => std::thread::sleep(Duration::from_millis(2)),
                slot => return slot,
            }
        }
    }

    /// A start by the restart policy: keeps the restart count.
    pub(crate) fn start_by_policy(&self, id: &str) -> Result<()> {
        self.start_inner(id, &mut |_| {})
    }

    fn start_inner(&self, name: &str, before_start: &mut dyn FnMut(&str)) -> Result<()> {
        let id = self.lookup(name)?.id;
        // One at a time: a start waits for another start or for the recording of an
        // exit (a `restart` right after its stop), then looks at the state afresh.
        let Slot::Claimed(_guard) = self.wait_for_slot(&id) else {
            // This thread holds it already.
            return Ok(());
        };
        let mut rec = self.get(name)?;
        if rec.state.status == "running" || rec.state.status == "paused" {
            return Ok(());
        }
        let id = rec.id.clone();
        let result = self.launch(&mut rec, before_start);
        if let Err(e) = &result {
            self.unmount_rootfs(&id);
            self.network.release(&id);
            let message = e.to_string();
            let _ = self.modify(&id, |r| r.state.error = message);
            // `--rm` also covers a container that never ran (the docker CLI waits for it).
            if rec.host_config["AutoRemove"].as_bool() == Some(true) {
                let _ = self.remove_with_volumes(&id, true, true);
            }
        }
        result
    }

    fn launch(&self, rec: &mut ContainerRecord, before_start: &mut dyn FnMut(&str)) -> Result<()> {
        let id = rec.id.clone();
        let run = self.run_dir(&id);
        let _ = std::fs::remove_file(run.join("exit.json"));
        // A previous run whose shim died (a crash, a reboot without a fresh /run) leaves
        // the runtime's state behind; it would refuse the id.
        self.reap_orphan(&id);
        // Execs belong to one run of the container.
        let _ = std::fs::remove_dir_all(run.join("execs"));
        self.drop_execs(&id);
        std::fs::create_dir_all(&run).map_err(internal)?;
        // Normally made at create; a crash right after the record was stored skips that.
        for sub in ["diff", "work"] {
            std::fs::create_dir_all(self.data_dir(&id).join(sub)).map_err(internal)?;
        }
        let net = self.join_network(rec)?;
        // `-v /host/dir:...` makes a missing host directory, as Docker does.
        for m in mounts::from_host_config(&rec.host_config)? {
            if m.create_source && !Path::new(&m.source).exists() {
                std::fs::create_dir_all(&m.source).map_err(|e| {
                    Error::InvalidInput(format!("create bind source {}: {e}", m.source))
                })?;
            }
        }
        let rootfs = self.mount_rootfs(rec)?;
        make_working_dir(&rootfs, rec)?;
        let mounts = self.prepare_volumes(rec, &rootfs)?;
        let paths = spec::Paths {
            rootfs: &rootfs,
            hostname: &net.hostname,
            hosts: &net.hosts,
            resolv: &net.resolv,
            init: self.init_path.as_deref(),
            netns: net.netns.as_deref(),
            mounts: &mounts,
        };
        let oci = if net.link_env.is_empty() {
            spec::generate(&rec.config, &rec.host_config, &paths)?
        } else {
            let mut config = rec.config.clone();
            let mut env = config["Env"].as_array().cloned().unwrap_or_default();
            env.extend(net.link_env.iter().map(|v| json!(v)));
            config["Env"] = json!(env);
            spec::generate(&config, &rec.host_config, &paths)?
        };
        std::fs::write(
            run.join("config.json"),
            serde_json::to_vec_pretty(&oci).map_err(internal)?,
        )
        .map_err(internal)?;
        let logging = LogConfig::for_container(&rec.host_config, &self.log_defaults)?;
        let attrs = logconfig::attributes(&rec.host_config, &rec.config);
        let (pid, shim_pid) = self.spawn_shim(
            &id,
            rec.config["Tty"].as_bool().unwrap_or(false),
            rec.config["OpenStdin"].as_bool().unwrap_or(false),
            &logging,
            &attrs,
        )?;
        before_start(&id);
        let runtime = berth_runtime::StateRoot::open(self.runtime_root()).map_err(internal)?;
        berth_runtime::Container::load(&runtime, &id)
            .and_then(|c| c.start())
            .map_err(internal)?;
        self.monitor.watch(&id, shim_pid);
        let state = State {
            status: "running".into(),
            pid,
            shim_pid,
            started_at: berth_types::time::now_rfc3339(),
            // dockerd keeps the previous run's end until this one ends.
            finished_at: rec.state.finished_at.clone(),
            ..Default::default()
        };
        rec.state = state.clone();
        self.modify(&id, |r| {
            r.state = state;
            r.health = None;
        })?;
        // Before anything on this thread looks at the record again: a short-lived
        // container's exit (and `--rm`'s removal) is recorded at the next look.
        self.emit(rec, "start");
        self.watch_health(&id);
        Ok(())
    }

    /// Starts the shim; returns (container pid, shim pid).
    fn spawn_shim(
        &self,
        id: &str,
        tty: bool,
        stdin: bool,
        logging: &LogConfig,
        attrs: &serde_json::Map<String, Value>,
    ) -> Result<(i32, i32)> {
        let run = self.run_dir(id);
        let mut cmd = Command::new(&self.shim);
        cmd.args(["--id", id, "--bundle"])
            .arg(&run)
            .arg("--runtime-root")
            .arg(self.runtime_root())
            .arg("--state-dir")
            .arg(&run);
        if logging.enabled {
            cmd.arg("--log")
                .arg(self.log_path(id))
                .arg("--log-max-size")
                .arg(logging.max_size.to_string())
                .arg("--log-max-files")
                .arg(logging.max_files.to_string());
            if !attrs.is_empty() {
                cmd.arg("--log-attrs")
                    .arg(Value::Object(attrs.clone()).to_string());
            }
        }
        let mut child = cmd
            .args(["--tty", if tty { "true" } else { "false" }])
            .args(["--stdin", if stdin { "true" } else { "false" }])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::Internal(format!("start {}: {e}", self.shim.display())))?;
        let shim_pid = child.id() as i32;
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped");
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(internal)?;
        // The shim lives on in its own session; reap it whenever it exits.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        let report: Value = serde_json::from_str(&line)
            .map_err(|_| Error::Internal("berth-shim exited without reporting".into()))?;
        if let Some(pid) = report["pid"].as_i64() {
            return Ok((pid as i32, shim_pid));
        }
        let msg = report["error"]
            .as_str()
            .unwrap_or("unknown shim failure")
            .to_string();
        if msg.contains("executable file not found") || msg.contains("no such file or directory") {
            return Err(Error::InvalidInput(format!(
                "failed to create task for container: {msg}"
            )));
        }
        Err(Error::Internal(format!(
            "failed to create task for container: {msg}"
        )))
    }

    /// Where the container's json-file log is.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.data_dir(id).join(format!("{id}-json.log"))
    }

    /// Kills and deletes a container whose shim is gone.
    /// Ends a container whose shim died without an exit record and writes the record
    /// in its place, so every later look reads the same end: 137 when the runtime still
    /// knows it (the shim died under it), 255 when its state under /run is gone too (the
    /// machine restarted with everything on it).
    fn end_orphan(&self, id: &str, exit_file: &Path) -> Value {
        let known_to_runtime = self.runtime_container(id).is_ok();
        let (code, error) = if known_to_runtime {
            (137, "the container's shim died")
        } else {
            (255, "the container and its shim are gone (host restart)")
        };
        let record = json!({
            "ExitCode": code,
            "FinishedAt": berth_types::time::now_rfc3339(),
            "Error": error,
        });
        // Written before the runtime's state goes, so a look in between reads it.
        if let Some(dir) = exit_file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = berth_runtime::state::write_atomic(exit_file, record.to_string().as_bytes());
        // Nobody holds its stdio or will record its exit: end it, as containerd does
        // when a shim dies, and drop what the runtime kept of it (its cgroup too).
        self.reap_orphan(id);
        record
    }

    fn reap_orphan(&self, id: &str) {
        let Ok(c) = self.runtime_container(id) else {
            // A create that failed half-way can leave a state directory without a record;
            // no shim owns it (callers make sure of that), and it would block the id.
            if let Ok(root) = berth_runtime::StateRoot::open(self.runtime_root()) {
                let _ = root.remove(id);
            }
            return;
        };
        if let Err(e) = c.delete(true) {
            // Its processes are gone (or going): drop the runtime's record of it anyway,
            // or the id could never be created again.
            tracing::warn!(
                container = id,
                "remove the runtime state of a dead container: {e}"
            );
            if let Ok(root) = berth_runtime::StateRoot::open(self.runtime_root()) {
                let _ = root.remove(id);
            }
        }
    }

    /// Brings the store in line with the host after berthd (re)starts: every record is
    /// refreshed (containers that exited or lost their shim while berthd was away are
    /// recorded as exited, `--rm` ones removed), and what no record owns is removed —
    /// container directories and runtime states a crash left half-made.
    pub fn recover(&self) -> Result<()> {
        let recs = self.db.read(|tx| tx.list(&CONTAINERS))?;
        let known: std::collections::HashSet<String> =
            recs.iter().map(|(id, _)| id.clone()).collect();
        for (_, rec) in recs {
            match self.refresh(rec) {
                Ok(r) if r.state.status == "running" || r.state.status == "paused" => {
                    self.monitor.watch(&r.id, r.state.shim_pid);
                    self.watch_health(&r.id);
                }
                Ok(r) => self.start_on_boot(&r),
                Err(e) => tracing::warn!("recover: {e}"),
            }
        }
        for dir in [
            self.data_root.join("containers"),
            self.exec_root.join("containers"),
        ] {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !known.contains(&name) {
                    tracing::info!(
                        container = name,
                        "recover: removing leftovers of a container with no record"
                    );
                    let _ = berth_runtime::sys::umount2(&e.path().join("rootfs"), libc::MNT_DETACH);
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        if let Ok(runtime) = berth_runtime::StateRoot::open(self.runtime_root()) {
            for c in berth_runtime::list(&runtime).unwrap_or_default() {
                if !known.contains(c.id()) {
                    let _ = c.delete(true);
                }
            }
        }
        let running: std::collections::HashSet<String> = self
            .db
            .read(|tx| tx.list(&CONTAINERS))?
            .into_iter()
            .filter(|(_, r)| matches!(r.state.status.as_str(), "running" | "paused"))
            .map(|(id, _)| id)
            .collect();
        self.network
            .reconcile(&|id| running.contains(id))
            .map_err(netconf::net_error)
    }

    /// The runtime's view of a live container.
    fn runtime_container(&self, id: &str) -> Result<berth_runtime::Container> {
        let runtime = berth_runtime::StateRoot::open(self.runtime_root()).map_err(internal)?;
        berth_runtime::Container::load(&runtime, id).map_err(internal)
    }

    /// `POST /containers/{id}/kill`.
    pub fn kill(&self, name: &str, signal: i32) -> Result<()> {
        let rec = self.get(name)?;
        if rec.state.status != "running" && rec.state.status != "paused" {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let stop_signal = rec.config["StopSignal"]
            .as_str()
            .and_then(|s| berth_runtime::signal::parse(s).ok())
            .unwrap_or(libc::SIGTERM);
        if signal == libc::SIGKILL || signal == stop_signal {
            self.mark_manually_stopped(&rec.id);
        }
        let container = self.runtime_container(&rec.id)?;
        container.kill(signal, false).map_err(internal)?;
        self.events
            .emit(self.event(&rec, "kill").attr("signal", signal.to_string()));
        if signal == libc::SIGKILL && rec.state.status == "paused" {
            // A frozen process cannot die: thaw it so the SIGKILL lands.
            let _ = container.resume();
        }
        if signal == libc::SIGKILL {
            // As dockerd: a kill with SIGKILL returns once the container is down, so the
            // next request (an rm, an inspect) sees it stopped.
            self.wait(&rec.id, Some(Duration::from_secs(10)))?;
        }
        Ok(())
    }

    /// Waits until the container is not running; returns its exit code.
    pub fn wait(&self, name: &str, timeout: Option<Duration>) -> Result<i32> {
        self.wait_for(name, WaitCondition::NotRunning, timeout, &|| false)
    }

    /// Docker's wait conditions: `not-running` returns as soon as the container is not
    /// running; `next-exit` waits for the exit that follows (a created container's first
    /// run); `removed` also waits for its removal (auto-remove). `abandoned` is polled
    /// too: a waiter whose client went away stops.
    pub fn wait_for(
        &self,
        name: &str,
        cond: WaitCondition,
        timeout: Option<Duration>,
        abandoned: &dyn Fn() -> bool,
    ) -> Result<i32> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let first = self.get(name)?;
        let id = first.id.clone();
        let mut last_code = first.state.exit_code;
        loop {
            // Taken before looking, so a change right after the look still wakes us.
            let seen = self.changes.generation();
            let rec = match self.get(&id) {
                Ok(r) => r,
                Err(Error::NotFound(_))
                    if cond == WaitCondition::Removed || first.state.status != "exited" =>
                {
                    let removed = self.removed_exits.lock().expect("not poisoned");
                    return Ok(removed.get(&id).copied().unwrap_or(last_code));
                }
                Err(e) => return Err(e),
            };
            last_code = rec.state.exit_code;
            let stopped = rec.state.status != "running" && rec.state.status != "paused";
            let done = match cond {
                WaitCondition::NotRunning => stopped,
                WaitCondition::NextExit => {
                    (rec.state.status == "exited" || rec.state.status == "restarting")
                        && rec.state.finished_at != first.state.finished_at
                }
                WaitCondition::Removed => false,
            };
            if done {
                return Ok(rec.state.exit_code);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) || abandoned() {
                return Err(Error::Conflict(
                    "timed out waiting for the container to stop".into(),
                ));
            }
            // Woken by the next recorded change; the bound keeps `abandoned` and the
            // deadline checked.
            self.changes.wait_past(seen, Duration::from_millis(250));
        }
    }

    /// Connects an attach client to the shim of a running container, asking for the
    /// given streams.
    pub fn connect_attach(
        &self,
        id: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<std::os::unix::net::UnixStream> {
        attach::connect(
            &self.run_dir(id),
            berth_types::shim::attach_header(stdin, stdout, stderr),
        )
    }

    /// `POST /containers/{id}/resize`.
    pub fn resize(&self, name: &str, height: u16, width: u16) -> Result<()> {
        let rec = self.get(name)?;
        if rec.state.status != "running" && rec.state.status != "paused" {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        attach::send_resize(&self.run_dir(&rec.id), height, width)?;
        self.events.emit(
            self.event(&rec, "resize")
                .attr("height", height.to_string())
                .attr("width", width.to_string()),
        );
        Ok(())
    }

    /// `POST /containers/{id}/stop`: the stop signal, then SIGKILL after the timeout.
    pub fn stop(&self, name: &str, timeout: Option<u64>) -> Result<bool> {
        let rec = self.get(name)?;
        self.mark_manually_stopped(&rec.id);
        if rec.state.status != "running" && rec.state.status != "paused" {
            return Ok(false);
        }
        let signal = rec.config["StopSignal"]
            .as_str()
            .and_then(|s| berth_runtime::signal::parse(s).ok())
            .unwrap_or(libc::SIGTERM);
        let secs = timeout.or(rec.config["StopTimeout"].as_u64()).unwrap_or(10);
        let _ = self.kill(&rec.id, signal);
        if self.wait(&rec.id, Some(Duration::from_secs(secs))).is_err() {
            let _ = self.kill(&rec.id, libc::SIGKILL);
            self.wait(&rec.id, Some(Duration::from_secs(10)))?;
        }
        self.emit(&rec, "stop");
        Ok(true)
    }

    /// `DELETE /containers/{id}`.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        self.remove_with_volumes(name, force, false)
    }

    /// `DELETE /containers/{id}?v=1`: also the container's anonymous volumes that no
    /// other container uses.
    pub fn remove_with_volumes(&self, name: &str, force: bool, volumes: bool) -> Result<()> {
        let id = self.get(name)?.id;
        // No start may run over a removal (a restart by a healthcheck or a client): one
        // in flight finishes first, one after finds no record.
        let _slot = self.wait_for_slot(&id);
        let rec = self.get(&id)?;
        if rec.state.status == "restarting" {
            if !force {
                return Err(Error::Conflict(format!(
                    "cannot remove container \"/{}\": container is restarting: stop the container before removing or force remove",
                    rec.name
                )));
            }
            self.mark_manually_stopped(&rec.id);
        }
        if rec.state.status == "running" || rec.state.status == "paused" {
            if !force {
                return Err(Error::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    rec.name
                )));
            }
            let _ = self.kill(&rec.id, libc::SIGKILL);
            self.wait(&rec.id, Some(Duration::from_secs(10)))?;
        }
        self.unmount_rootfs(&rec.id);
        self.network.release(&rec.id);
        self.drop_execs(&rec.id);
        // Normally gone with its shim; a shim that died leaves it (and the cgroup).
        self.reap_orphan(&rec.id);
        let _ = std::fs::remove_dir_all(self.run_dir(&rec.id));
        let _ = std::fs::remove_dir_all(self.data_dir(&rec.id));
        // Noted before the record goes: a waiter that finds it gone must find the code.
        {
            let mut removed = self.removed_exits.lock().expect("not poisoned");
            if removed.len() >= 1024 {
                removed.clear();
            }
            // The exit code as a forced removal leaves it, not the one seen before.
            removed.insert(rec.id.clone(), self.lookup_exit_after_removal(&rec));
        }
        self.db.write(|tx| -> Result<()> {
            tx.delete(&CONTAINERS, &rec.id)?;
            tx.delete(&NAMES, &rec.name)?;
            Ok(())
        })?;
        self.changes.bump();
        self.emit(&rec, "destroy");
        if volumes {
            self.remove_anonymous_volumes(&rec);
        }
        Ok(())
    }

    /// The exit code to report for a removed container.
    fn lookup_exit_after_removal(&self, rec: &ContainerRecord) -> i32 {
        if rec.state.status == "running" || rec.state.status == "paused" {
            137
        } else {
            rec.state.exit_code
        }
    }

    /// Every container, refreshed, newest first.
    pub fn all(&self) -> Result<Vec<ContainerRecord>> {
        let recs = self.db.read(|tx| tx.list(&CONTAINERS))?;
        let mut out: Vec<ContainerRecord> = Vec::with_capacity(recs.len());
        for (_, r) in recs {
            let r = match self.refresh(r) {
                Ok(r) => r,
                // Removed while we looked (an auto-remove container that just exited).
                Err(Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            // Refreshing an exited `--rm` container removes it.
            let removed = r.state.status == "exited" && r.host_config["AutoRemove"] == true;
            if !removed {
                out.push(r);
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// `GET /containers/json`: `all` includes stopped containers, `limit` shows the n
    /// newest of every state, `filters` is Docker's filter JSON, `size` adds SizeRw and
    /// SizeRootFs.
    pub fn list(
        &self,
        all: bool,
        limit: Option<usize>,
        filters: &str,
        size: bool,
    ) -> Result<Vec<Value>> {
        let recs = self.all()?;
        let networks = self.network.list().map_err(netconf::net_error)?;
        let lookup = |name: &str| -> Result<String> {
            self.lookup(name)
                .map(|r| r.created)
                .map_err(|_| Error::NotFound(name.to_string()))
        };
        let image_id = |r: &str| {
            self.images
                .inspect(r)
                .ok()
                .and_then(|i| i["Id"].as_str().map(str::to_string))
        };
        let filter = filters::ListFilter::new(filters, &lookup, &image_id)?;
        let all = all || limit.is_some() || filter.implies_all();
        let shown = recs.iter().filter(|r| {
            (all || matches!(r.state.status.as_str(), "running" | "paused" | "restarting"))
                && filter.matches(r)
        });
        let shown: Vec<&ContainerRecord> = match limit {
            Some(n) => shown.take(n).collect(),
            None => shown.collect(),
        };
        Ok(shown
            .into_iter()
            .map(|r| {
                let mounts = self.all_mounts(r).unwrap_or_default();
                let mut v = view::summary(r, &self.live_network(r), &networks, &mounts);
                if size {
                    let rw = berth_volumes::dir_size(&self.data_dir(&r.id).join("diff"));
                    let image = self
                        .images
                        .inspect(&r.image_id)
                        .ok()
                        .and_then(|i| i["Size"].as_u64())
                        .unwrap_or(0);
                    v["SizeRw"] = json!(rw);
                    v["SizeRootFs"] = json!(rw + image);
                }
                v
            })
            .collect())
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, name: &str) -> Result<Value> {
        let rec = self.get(name)?;
        let networks = self.network.list().map_err(netconf::net_error)?;
        let mounts = self.all_mounts(&rec)?;
        let mut v = view::inspect(
            &rec,
            &self.log_path(&rec.id),
            &self.data_dir(&rec.id),
            &mounts,
        );
        v["NetworkSettings"] = netconf::settings(&rec, &self.live_network(&rec), &networks);
        if let Ok(specs) = links::parse(&rec.host_config)
            && !specs.is_empty()
        {
            // dockerd shows links as /target:/linker/alias.
            let shown: Vec<String> = specs
                .iter()
                .map(|l| format!("/{}:/{}/{}", l.target, rec.name, l.alias))
                .collect();
            v["HostConfig"]["Links"] = json!(shown);
        }
        Ok(v)
    }

    /// `GET /containers/{id}/logs` as one buffer of Docker stream frames, and whether the
    /// container has a terminal (raw text).
    pub fn logs(&self, name: &str, opts: &LogOptions) -> Result<(Vec<u8>, bool)> {
        let rec = self.readable_logs(name)?;
        let tty = rec.config["Tty"].as_bool().unwrap_or(false);
        let (data, _) = logs::read(&self.log_path(&rec.id), opts, tty)?;
        Ok((data, tty))
    }

    /// The container, if its logging driver keeps something to read.
    fn readable_logs(&self, name: &str) -> Result<ContainerRecord> {
        let rec = self.get(name)?;
        if !LogConfig::for_container(&rec.host_config, &self.log_defaults)?.enabled {
            return Err(Error::InvalidInput(
                "configured logging driver does not support reading".into(),
            ));
        }
        Ok(rec)
    }

    /// `logs -f`: hands the selected entries to `sink`, then new ones as they are written,
    /// until the container stops (or `until` passes) or `sink` returns false.
    pub fn follow_logs(
        &self,
        name: &str,
        opts: &LogOptions,
        sink: &mut dyn FnMut(Vec<u8>) -> bool,
    ) -> Result<()> {
        let rec = self.readable_logs(name)?;
        let tty = rec.config["Tty"].as_bool().unwrap_or(false);
        let (data, mut follower) = logs::read(&self.log_path(&rec.id), opts, tty)?;
        if !data.is_empty() && !sink(data) {
            return Ok(());
        }
        let now_nanos = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i128)
        };
        loop {
            let running = self
                .get(&rec.id)
                .is_ok_and(|r| r.state.status == "running" || r.state.status == "paused");
            // One more read after the exit: the shim wrote its last lines before exiting.
            let chunk = follower.poll(opts, tty);
            if !chunk.is_empty() && !sink(chunk) {
                return Ok(());
            }
            if !running || opts.until.is_some_and(|u| now_nanos() >= u) {
                return Ok(());
            }
            // An empty chunk checks that the client is still there.
            if !sink(Vec::new()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET /containers/{id}/changes`: what the container changed in its filesystem,
    /// as (path, kind) sorted by path.
    pub fn changes(&self, name: &str) -> Result<Vec<(String, changes::Kind)>> {
        let rec = self.get(name)?;
        let lower = self.snapshots.lowerdirs(&rec.chain);
        Ok(changes::changes(
            &self.data_dir(&rec.id).join("diff"),
            &lower,
        ))
    }

    /// Counts for `/info`: (total, running, paused, stopped).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let all = self.all().unwrap_or_default();
        let n = |s: &str| all.iter().filter(|r| r.state.status == s).count();
        (
            all.len(),
            n("running"),
            n("paused"),
            all.len() - n("running") - n("paused"),
        )
    }
}

/// What `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Not running (now or later).
    NotRunning,
    /// The next exit.
    NextExit,
    /// Removal.
    Removed,
}

impl std::str::FromStr for WaitCondition {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(Error::InvalidInput(format!(
                "invalid condition: \"{other}\""
            ))),
        }
    }
}

/// Whether the shim of container `id` still runs: the pid is alive (a zombie does not
/// count) and is a shim for this container (pids are reused, e.g. after a reboot).
fn shim_alive(pid: i32, id: &str) -> bool {
    let running = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
        })
        == Some(true);
    running
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == id.as_bytes()))
}

/// Creates the working directory in the root filesystem if it is missing, as dockerd
/// does before every start (`run -w /new`, a build's WORKDIR), confined to the root.
fn make_working_dir(rootfs: &Path, rec: &ContainerRecord) -> Result<()> {
    let Some(dir) = rec.config["WorkingDir"]
        .as_str()
        .filter(|d| !d.is_empty() && *d != "/")
    else {
        return Ok(());
    };
    let root = std::fs::File::open(rootfs).map_err(internal)?;
    use std::os::fd::AsFd;
    berth_sys::inroot::mkdir_all(root.as_fd(), Path::new(dir), 0o755)
        .map(drop)
        .map_err(|e| Error::InvalidInput(format!("Cannot mkdir: {dir}: {e}")))
}

/// Docker's Config for the container: the request over the image's defaults.
fn merge_config(image: &Value, body: &Value, id: &str, image_name: &str) -> Value {
    let mut c = json!({
        "Hostname": &id[..12], "Domainname": "", "User": "", "AttachStdin": false, "AttachStdout": false,
        "AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": [],
        "Cmd": null, "Image": image_name, "Volumes": null, "WorkingDir": "", "Entrypoint": null,
        "OnBuild": null, "Labels": {}
    });
    for key in [
        "User",
        "Env",
        "Cmd",
        "WorkingDir",
        "Entrypoint",
        "Labels",
        "StopSignal",
        "Volumes",
        "ExposedPorts",
        "Healthcheck",
        "OnBuild",
        "Shell",
        "ArgsEscaped",
    ] {
        if !image[key].is_null() {
            c[key] = image[key].clone();
        }
    }
    let present = |k: &str| !body[k].is_null() && body[k] != json!("") && body[k] != json!([]);
    // A request that sets an entrypoint resets the image's cmd, as docker does.
    if present("Entrypoint") && !present("Cmd") {
        c["Cmd"] = Value::Null;
    }
    for key in [
        "Hostname",
        "Domainname",
        "User",
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
        "Tty",
        "OpenStdin",
        "StdinOnce",
        "Cmd",
        "WorkingDir",
        "Entrypoint",
        "StopSignal",
        "StopTimeout",
        "Healthcheck",
        "MacAddress",
        "NetworkDisabled",
        "Shell",
    ] {
        if present(key) {
            c[key] = body[key].clone();
        }
    }
    // `--entrypoint ""` arrives as `[""]`: no entrypoint at all, as with docker.
    if body["Entrypoint"] == json!([""]) {
        c["Entrypoint"] = Value::Null;
    }
    // Volumes and exposed ports add to the image's.
    for key in ["Volumes", "ExposedPorts"] {
        if let Some(extra) = body[key].as_object().filter(|o| !o.is_empty()) {
            if !c[key].is_object() {
                c[key] = json!({});
            }
            for (k, v) in extra {
                c[key][k] = v.clone();
            }
        }
    }
    if let Some(env) = body["Env"].as_array() {
        let mut merged: Vec<Value> = c["Env"].as_array().cloned().unwrap_or_default();
        for e in env {
            let k = e.as_str().and_then(|s| s.split('=').next()).unwrap_or("");
            merged.retain(|m| m.as_str().and_then(|s| s.split('=').next()) != Some(k));
            merged.push(e.clone());
        }
        c["Env"] = Value::Array(merged);
    }
    if let Some(labels) = body["Labels"].as_object() {
        for (k, v) in labels {
            c["Labels"][k] = v.clone();
        }
    }
    c
}
