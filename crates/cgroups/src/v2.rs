//! cgroup v2: one directory in the unified hierarchy.
//!
//! Controllers must be enabled top-down in each ancestor's
//! `cgroup.subtree_control` before their files appear in the container's
//! directory; device rules are an eBPF program instead of files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use crate::Version;
use crate::convert;
use crate::devices;
use crate::error::{Error, Result};
use crate::fs;
use crate::path::{self, CgroupPath};
use crate::validate::HostCaps;

/// How long `freeze` / `thaw` wait for cgroup.events to agree.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(3);

/// The container's cgroup in the unified hierarchy.
#[derive(Clone, Debug)]
pub(crate) struct V2 {
    /// Mount point of the unified hierarchy.
    root: PathBuf,
    /// The container's directory.
    dir: PathBuf,
    /// Controllers the root offers (its `cgroup.controllers`).
    available: BTreeSet<String>,
}

impl V2 {
    /// Resolve the container's directory under the cgroup2 mount at `root`.
    pub(crate) fn discover(root: &Path, cgroup_path: &CgroupPath) -> Result<V2> {
        let controllers =
            fs::read_optional(root, "cgroup.controllers")?.ok_or_else(|| Error::NoHierarchy {
                kind: "v2",
                root: root.to_path_buf(),
            })?;
        let own_text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let own = path::own_cgroup(&path::parse_proc_cgroup(&own_text), "");
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mount_root = path::parse_cgroup_mounts(&mountinfo)
            .into_iter()
            .find(|m| m.unified && m.mount_point == root)
            .map_or_else(|| "/".to_string(), |m| m.root);
        let dir = path::resolve(root, &mount_root, own.as_deref(), cgroup_path)?;
        Ok(V2 {
            root: root.to_path_buf(),
            dir,
            available: controllers.split_whitespace().map(str::to_string).collect(),
        })
    }

    /// The container's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// mkdir -p and enable every available controller from the root down to
    /// the container's parent, so the container's directory gets all the
    /// interface files.
    pub(crate) fn create(&self, created: &mut Vec<PathBuf>) -> Result<()> {
        created.extend(fs::create_dir_all_tracked(&self.dir)?);
        let Ok(below) = self.dir.strip_prefix(&self.root) else {
            return Ok(());
        };
        let mut ancestor = self.root.clone();
        let levels = below.components().count();
        for component in below.components().take(levels.saturating_sub(1)) {
            enable_controllers(&ancestor)?;
            ancestor.push(component);
        }
        enable_controllers(&ancestor)
    }

    /// Join `pid` to the cgroup.
    pub(crate) fn add_process(&self, pid: i32) -> Result<()> {
        fs::write(&self.dir, "cgroup.procs", &pid.to_string())
    }

    /// Write every set field of `res`; `unified` last so it can override.
    pub(crate) fn apply(&self, res: &LinuxResources) -> Result<()> {
        let dir = &self.dir;
        if let Some(cpu) = res.cpu() {
            apply_cpuset(dir, cpu)?;
        }
        if let Some(memory) = res.memory() {
            apply_memory(dir, memory)?;
        }
        if let Some(cpu) = res.cpu() {
            apply_cpu(dir, cpu)?;
        }
        if let Some(pids) = res.pids() {
            fs::write(dir, "pids.max", &crate::v1::pids_max_text(pids.limit()))?;
        }
        if let Some(blkio) = res.block_io() {
            apply_io(dir, blkio)?;
        }
        for limit in res.hugepage_limits().iter().flatten() {
            let kb = convert::hugepage_size_kb(limit.page_size()).unwrap_or_default();
            let file = format!("hugetlb.{}.max", convert::hugepage_file_name(kb));
            fs::write(dir, &file, &limit.limit().to_string())?;
        }
        if let Some(rules) = res.devices() {
            let rules = devices::parse_rules(rules)?;
            crate::bpf::replace_device_program(dir, &devices::bpf_program(&rules))?;
        }
        for (device, limit) in res.rdma().iter().flatten() {
            fs::write(dir, "rdma.max", &convert::rdma_line(device, limit))?;
        }
        // Sorted, so the write order does not depend on HashMap order.
        let unified: std::collections::BTreeMap<_, _> = res.unified().iter().flatten().collect();
        for (file, value) in unified {
            fs::write(dir, file, value)?;
        }
        Ok(())
    }

    /// Freeze and wait until cgroup.events says "frozen 1".
    pub(crate) fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    /// Thaw and wait until cgroup.events says "frozen 0".
    pub(crate) fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let want = if frozen { "1" } else { "0" };
        fs::write(&self.dir, "cgroup.freeze", want)?;
        let done = fs::poll_until(
            FREEZE_TIMEOUT,
            || Ok(self.is_frozen()? == frozen),
            |_| Ok(()),
        )?;
        if done {
            return Ok(());
        }
        if frozen {
            // Do not leave the container half-frozen.
            fs::write(&self.dir, "cgroup.freeze", "0")?;
        }
        Err(Error::Timeout {
            path: self.dir.join("cgroup.events"),
            expected: format!("frozen {want}"),
        })
    }

    /// The kernel's view ("frozen" in cgroup.events), not just the request.
    pub(crate) fn is_frozen(&self) -> Result<bool> {
        let events = fs::read(&self.dir, "cgroup.events")?;
        Ok(fs::flat_keyed_value(&events, "frozen") == Some(1))
    }

    /// Processes in the cgroup and its children.
    pub(crate) fn pids(&self) -> Result<Vec<i32>> {
        fs::procs_recursive(&self.dir)
    }

    /// SIGKILL through cgroup.kill when the kernel has it (5.14+): it cannot
    /// miss processes forked meanwhile. Returns false if not usable.
    pub(crate) fn kill_via_cgroup_kill(&self, signal: i32) -> Result<bool> {
        if signal != libc::SIGKILL || !fs::exists(&self.dir, "cgroup.kill") {
            return Ok(false);
        }
        fs::write(&self.dir, "cgroup.kill", "1")?;
        Ok(true)
    }

    /// Whether cgroup.freeze exists (kernel 5.2+, not the root).
    pub(crate) fn has_freezer(&self) -> bool {
        fs::exists(&self.dir, "cgroup.freeze")
    }

    /// Remove the directory (and child cgroups), then the parents that
    /// `create` made if nothing else uses them.
    pub(crate) fn destroy(&self, created: &[PathBuf]) -> Result<()> {
        fs::remove_cgroup_tree(&self.dir)?;
        fs::remove_created_parents(created, &[self.dir.as_path()])
    }
}

impl HostCaps for V2 {
    fn version(&self) -> Version {
        Version::V2
    }

    fn has_controller(&self, controller: &str) -> bool {
        self.available.contains(controller)
    }

    fn has_file(&self, _controller: &str, _file: &str) -> bool {
        true
    }
}

/// Enable in `dir`'s subtree_control every controller `dir` has that is not
/// enabled yet. Some controllers can refuse (e.g. cpu while realtime tasks
/// run); those are skipped and their files will be missing, which apply()
/// reports by file name. If none could be enabled, the first error is
/// returned, since then nothing below will work.
fn enable_controllers(dir: &Path) -> Result<()> {
    let available = fs::read(dir, "cgroup.controllers")?;
    let enabled = fs::read(dir, "cgroup.subtree_control")?;
    let enabled: BTreeSet<&str> = enabled.split_whitespace().collect();
    let missing: Vec<&str> = available
        .split_whitespace()
        .filter(|c| !enabled.contains(c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if fs::write(dir, "cgroup.subtree_control", &all.join(" ")).is_ok() {
        return Ok(());
    }
    let mut first_error = None;
    let mut any_enabled = false;
    for controller in missing {
        match fs::write(dir, "cgroup.subtree_control", &format!("+{controller}")) {
            Ok(()) => any_enabled = true,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if !any_enabled => Err(e),
        _ => Ok(()),
    }
}

fn apply_cpuset(dir: &Path, cpu: &LinuxCpu) -> Result<()> {
    if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
        fs::write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
        fs::write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// `swappiness` and `disableOOMKiller` have no v2 equivalent and are
/// ignored, as runc does; `kernel` / `kernelTCP` are ignored everywhere.
fn apply_memory(dir: &Path, memory: &LinuxMemory) -> Result<()> {
    let swap = convert::swap_to_v2(memory.swap(), memory.limit())
        .map_err(|p| Error::resource("linux.resources.memory.swap", p))?;
    if let Some(swap) = swap {
        match fs::write(dir, "memory.swap.max", &swap) {
            // No swap accounting: "no limit" / "no swap" need no file.
            Err(e) if e.is_not_found() && (swap == "max" || swap == "0") => {}
            other => other?,
        }
    }
    if let Some(limit) = memory.limit().filter(|v| *v != 0) {
        fs::write(dir, "memory.max", &convert::limit_text_v2(limit))?;
    }
    if let Some(reservation) = memory.reservation().filter(|v| *v != 0) {
        fs::write(dir, "memory.low", &convert::limit_text_v2(reservation))?;
    }
    Ok(())
}

fn apply_cpu(dir: &Path, cpu: &LinuxCpu) -> Result<()> {
    if let Some(idle) = cpu.idle() {
        fs::write(dir, "cpu.idle", &idle.to_string())?;
    }
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        let weight = convert::cpu_shares_to_weight(shares);
        fs::write(dir, "cpu.weight", &weight.to_string())?;
    }
    let quota = cpu.quota().filter(|q| *q != 0);
    let period = cpu.period().filter(|p| *p != 0);
    if quota.is_some() || period.is_some() {
        let quota_text = quota
            .filter(|q| *q > 0)
            .map_or("max".to_string(), |q| q.to_string());
        let period = period.unwrap_or(100_000);
        fs::write(dir, "cpu.max", &format!("{quota_text} {period}"))?;
    }
    // After cpu.max: the kernel refuses a burst larger than the quota.
    if let Some(burst) = cpu.burst() {
        fs::write(dir, "cpu.max.burst", &burst.to_string())?;
    }
    Ok(())
}

fn apply_io(dir: &Path, blkio: &LinuxBlockIo) -> Result<()> {
    // BFQ takes the v1 weight range as is; io.weight has its own range.
    let bfq = fs::exists(dir, "io.bfq.weight");
    if let Some(weight) = blkio.weight().filter(|w| *w != 0) {
        if bfq {
            fs::write(dir, "io.bfq.weight", &weight.to_string())?;
        } else {
            let weight = convert::blkio_weight_to_io_weight(u64::from(weight));
            fs::write(dir, "io.weight", &format!("default {weight}"))?;
        }
    }
    for dev in blkio.weight_device().iter().flatten() {
        let Some(weight) = dev.weight().filter(|w| *w != 0) else {
            continue;
        };
        let id = format!("{}:{}", dev.major(), dev.minor());
        if bfq {
            fs::write(dir, "io.bfq.weight", &format!("{id} {weight}"))?;
        } else {
            let weight = convert::blkio_weight_to_io_weight(u64::from(weight));
            fs::write(dir, "io.weight", &format!("{id} {weight}"))?;
        }
    }
    let throttles = [
        ("rbps", blkio.throttle_read_bps_device()),
        ("wbps", blkio.throttle_write_bps_device()),
        ("riops", blkio.throttle_read_iops_device()),
        ("wiops", blkio.throttle_write_iops_device()),
    ];
    for (key, list) in throttles {
        for dev in list.iter().flatten() {
            let line = format!("{}:{} {key}={}", dev.major(), dev.minor(), dev.rate());
            fs::write(dir, "io.max", &line)?;
        }
    }
    Ok(())
}
