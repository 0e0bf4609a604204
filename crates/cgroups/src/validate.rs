//! Checking `linux.resources` against the kernel's rules and this host's
//! cgroup set-up, without writing anything.
//!
//! Every error names the config field (as spelled in config.json) and the
//! value, so a user can fix the config without reading kernel docs.

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxResources,
    LinuxThrottleDevice,
};

use crate::Version;
use crate::convert::{self, parse_cpu_list};
use crate::devices;
use crate::error::{Error, Result};

/// What the host offers, as far as validation needs to know.
pub(crate) trait HostCaps {
    /// v1 or v2.
    fn version(&self) -> Version;
    /// Whether `controller` can be used (v1: mounted; v2: in the root's
    /// `cgroup.controllers`).
    fn has_controller(&self, controller: &str) -> bool;
    /// v1 only: whether the controller's root directory has `file` (optional
    /// kernel features such as `memory.memsw.limit_in_bytes`). Always true
    /// on v2, where interface files only exist below the root.
    fn has_file(&self, controller: &str, file: &str) -> bool;
}

const RES: &str = "linux.resources";

/// Validate everything that is set in `res`.
pub(crate) fn validate(res: &LinuxResources, host: &dyn HostCaps) -> Result<()> {
    if let Some(memory) = res.memory() {
        check_memory(memory, host)?;
    }
    if let Some(cpu) = res.cpu() {
        check_cpu(cpu, host)?;
    }
    if res.pids().is_some() {
        need(host, "pids", "linux.resources.pids.limit")?;
    }
    if let Some(blkio) = res.block_io() {
        check_block_io(blkio, host)?;
    }
    if let Some(limits) = res.hugepage_limits() {
        check_hugepages(limits, host)?;
    }
    if let Some(rules) = res.devices() {
        devices::parse_rules(rules)?;
        if host.version() == Version::V1 && !rules.is_empty() {
            need(host, "devices", "linux.resources.devices")?;
        }
    }
    if let Some(network) = res.network() {
        check_network(network, host)?;
    }
    if res.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        need(host, "rdma", "linux.resources.rdma")?;
    }
    if let Some(unified) = res.unified() {
        check_unified(unified.keys(), host)?;
    }
    Ok(())
}

fn need(host: &dyn HostCaps, controller: &str, field: &str) -> Result<()> {
    if host.has_controller(controller) {
        Ok(())
    } else {
        Err(Error::resource(
            field,
            format!("is set but this host has no {controller} cgroup controller"),
        ))
    }
}

fn need_file(host: &dyn HostCaps, controller: &str, file: &str, field: &str) -> Result<()> {
    if host.has_file(controller, file) {
        Ok(())
    } else {
        Err(Error::resource(
            field,
            format!("is not supported by this kernel (no {controller} file {file})"),
        ))
    }
}

/// -1 (unlimited) or positive; 0 counts as unset.
fn limit_ok(value: i64, field: &str) -> Result<()> {
    if value < -1 {
        return Err(Error::resource(
            field,
            format!("({value}) must be -1 or positive"),
        ));
    }
    Ok(())
}

fn check_memory(memory: &LinuxMemory, host: &dyn HostCaps) -> Result<()> {
    let f = |name: &str| format!("{RES}.memory.{name}");
    let set = memory.limit().is_some_and(|v| v != 0)
        || memory.reservation().is_some_and(|v| v != 0)
        || memory.swap().is_some_and(|v| v != 0)
        || memory.swappiness().is_some()
        || memory.disable_oom_killer() == Some(true);
    if set {
        need(host, "memory", &format!("{RES}.memory"))?;
    }
    if let Some(limit) = memory.limit() {
        limit_ok(limit, &f("limit"))?;
    }
    if let Some(reservation) = memory.reservation() {
        limit_ok(reservation, &f("reservation"))?;
    }
    // The same rules apply to v1 memsw and v2 swap.max.
    convert::swap_to_v2(memory.swap(), memory.limit())
        .map_err(|p| Error::resource(f("swap"), p))?;
    if memory.swap().is_some_and(|s| s != 0) {
        need_file(host, "memory", "memory.memsw.limit_in_bytes", &f("swap"))?;
    }
    if let Some(swappiness) = memory.swappiness() {
        if swappiness > 100 {
            return Err(Error::resource(
                f("swappiness"),
                format!("({swappiness}) must be between 0 and 100"),
            ));
        }
        need_file(host, "memory", "memory.swappiness", &f("swappiness"))?;
    }
    if memory.disable_oom_killer() == Some(true) {
        need_file(host, "memory", "memory.oom_control", &f("disableOOMKiller"))?;
    }
    Ok(())
}

fn check_cpu(cpu: &LinuxCpu, host: &dyn HostCaps) -> Result<()> {
    let f = |name: &str| format!("{RES}.cpu.{name}");
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        need(host, "cpu", &f("shares"))?;
        if !(2..=262_144).contains(&shares) {
            return Err(Error::resource(
                f("shares"),
                format!("({shares}) must be between 2 and 262144"),
            ));
        }
    }
    if let Some(quota) = cpu.quota().filter(|q| *q != 0) {
        need(host, "cpu", &f("quota"))?;
        if quota != -1 && quota < 1000 {
            return Err(Error::resource(
                f("quota"),
                format!("({quota}) must be -1 or at least 1000 (microseconds)"),
            ));
        }
    }
    if let Some(period) = cpu.period().filter(|p| *p != 0) {
        need(host, "cpu", &f("period"))?;
        if !(1000..=1_000_000).contains(&period) {
            return Err(Error::resource(
                f("period"),
                format!("({period}) must be between 1000 and 1000000 (microseconds)"),
            ));
        }
    }
    if cpu.burst().is_some() {
        need(host, "cpu", &f("burst"))?;
        need_file(host, "cpu", "cpu.cfs_burst_us", &f("burst"))?;
    }
    check_realtime(cpu, host)?;
    if let Some(idle) = cpu.idle() {
        if !(0..=1).contains(&idle) {
            return Err(Error::resource(
                f("idle"),
                format!("({idle}) must be 0 or 1"),
            ));
        }
        need(host, "cpu", &f("idle"))?;
        need_file(host, "cpu", "cpu.idle", &f("idle"))?;
    }
    if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
        need(host, "cpuset", &f("cpus"))?;
        check_list_subset(cpus, "/sys/devices/system/cpu/online", &f("cpus"), "cpus")?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
        need(host, "cpuset", &f("mems"))?;
        check_list_subset(
            mems,
            "/sys/devices/system/node/online",
            &f("mems"),
            "memory nodes",
        )?;
    }
    Ok(())
}

fn check_realtime(cpu: &LinuxCpu, host: &dyn HostCaps) -> Result<()> {
    let f = |name: &str| format!("{RES}.cpu.{name}");
    let runtime = cpu.realtime_runtime().filter(|r| *r != 0);
    let period = cpu.realtime_period().filter(|p| *p != 0);
    if runtime.is_none() && period.is_none() {
        return Ok(());
    }
    let field = if runtime.is_some() {
        f("realtimeRuntime")
    } else {
        f("realtimePeriod")
    };
    if host.version() == Version::V2 {
        return Err(Error::resource(
            field,
            "is not supported on cgroup v2 (no realtime group scheduling)",
        ));
    }
    need_file(host, "cpu", "cpu.rt_runtime_us", &field)?;
    if let Some(runtime) = runtime.filter(|r| *r < -1) {
        return Err(Error::resource(
            f("realtimeRuntime"),
            format!("({runtime}) must be -1 or positive"),
        ));
    }
    if let (Some(runtime), Some(period)) = (runtime, period)
        && runtime > 0
        && runtime as u64 > period
    {
        return Err(Error::resource(
            f("realtimeRuntime"),
            format!("({runtime}) must be <= {RES}.cpu.realtimePeriod ({period})"),
        ));
    }
    Ok(())
}

/// A cpuset list must parse and only name CPUs / nodes this host has.
fn check_list_subset(list: &str, online_file: &str, field: &str, what: &str) -> Result<()> {
    let wanted = parse_cpu_list(list)
        .ok_or_else(|| Error::resource(field, format!("({list}) is not a list like \"0-3,7\"")))?;
    // Hosts without NUMA have no node directory: node 0 is all there is.
    let online_text = std::fs::read_to_string(online_file).unwrap_or_else(|_| "0".to_string());
    let online = parse_cpu_list(&online_text).unwrap_or_default();
    if let Some(missing) = wanted.iter().find(|n| !online.contains(n)) {
        return Err(Error::resource(
            field,
            format!(
                "({list}) names {what} {missing}, not online on this host (online: {})",
                online_text.trim()
            ),
        ));
    }
    Ok(())
}

fn check_weight(weight: u16, field: &str) -> Result<()> {
    if weight != 0 && !(10..=1000).contains(&weight) {
        return Err(Error::resource(
            field,
            format!("({weight}) must be between 10 and 1000"),
        ));
    }
    Ok(())
}

fn check_block_io(blkio: &LinuxBlockIo, host: &dyn HostCaps) -> Result<()> {
    let f = |name: &str| format!("{RES}.blockIO.{name}");
    let controller = match host.version() {
        Version::V1 => "blkio",
        Version::V2 => "io",
    };
    if let Some(weight) = blkio.weight().filter(|w| *w != 0) {
        need(host, controller, &f("weight"))?;
        check_weight(weight, &f("weight"))?;
        if !host.has_file("blkio", "blkio.weight") && !host.has_file("blkio", "blkio.bfq.weight") {
            return Err(Error::resource(
                f("weight"),
                format!(
                    "({weight}) is not supported: no blkio.weight or blkio.bfq.weight (no cfq/bfq i/o scheduler)"
                ),
            ));
        }
    }
    if let Some(weight) = blkio.leaf_weight().filter(|w| *w != 0) {
        check_weight(weight, &f("leafWeight"))?;
        if host.version() == Version::V2 {
            return Err(Error::resource(
                f("leafWeight"),
                "is not supported on cgroup v2",
            ));
        }
        need_file(host, "blkio", "blkio.leaf_weight", &f("leafWeight"))?;
    }
    for (i, dev) in blkio.weight_device().iter().flatten().enumerate() {
        let field = f(&format!("weightDevice[{i}]"));
        need(host, controller, &field)?;
        check_device_numbers(dev.major(), dev.minor(), &field)?;
        check_weight(dev.weight().unwrap_or(0), &format!("{field}.weight"))?;
        check_weight(
            dev.leaf_weight().unwrap_or(0),
            &format!("{field}.leafWeight"),
        )?;
        if dev.weight().is_some_and(|w| w != 0)
            && !host.has_file("blkio", "blkio.weight_device")
            && !host.has_file("blkio", "blkio.bfq.weight")
        {
            return Err(Error::resource(
                field,
                "is not supported: no blkio.weight_device or blkio.bfq.weight",
            ));
        }
    }
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        ("throttleReadBpsDevice", blkio.throttle_read_bps_device()),
        ("throttleWriteBpsDevice", blkio.throttle_write_bps_device()),
        ("throttleReadIOPSDevice", blkio.throttle_read_iops_device()),
        (
            "throttleWriteIOPSDevice",
            blkio.throttle_write_iops_device(),
        ),
    ];
    for (name, list) in throttles {
        for (i, dev) in list.iter().flatten().enumerate() {
            let field = f(&format!("{name}[{i}]"));
            need(host, controller, &field)?;
            check_device_numbers(dev.major(), dev.minor(), &field)?;
        }
    }
    Ok(())
}

fn check_device_numbers(major: i64, minor: i64, field: &str) -> Result<()> {
    if major < 0 || minor < 0 {
        return Err(Error::resource(
            field,
            format!("({major}:{minor}) device numbers must not be negative"),
        ));
    }
    Ok(())
}

fn check_hugepages(limits: &[LinuxHugepageLimit], host: &dyn HostCaps) -> Result<()> {
    for (i, limit) in limits.iter().enumerate() {
        let field = format!("{RES}.hugepageLimits[{i}]");
        need(host, "hugetlb", &field)?;
        let size = limit.page_size();
        let kb = convert::hugepage_size_kb(size).ok_or_else(|| {
            Error::resource(
                format!("{field}.pageSize"),
                format!("({size:?}) must look like \"2MB\" or \"1GB\""),
            )
        })?;
        let sysfs = format!("/sys/kernel/mm/hugepages/hugepages-{kb}kB");
        if !std::path::Path::new(&sysfs).exists() {
            return Err(Error::resource(
                format!("{field}.pageSize"),
                format!("({size}) is not a huge page size this host supports (no {sysfs})"),
            ));
        }
        if limit.limit() < 0 {
            return Err(Error::resource(
                format!("{field}.limit"),
                format!("({}) must not be negative", limit.limit()),
            ));
        }
    }
    Ok(())
}

fn check_network(network: &LinuxNetwork, host: &dyn HostCaps) -> Result<()> {
    let f = |name: &str| format!("{RES}.network.{name}");
    let class_set = network.class_id().is_some();
    let prio_set = network.priorities().as_ref().is_some_and(|p| !p.is_empty());
    if host.version() == Version::V2 {
        if class_set || prio_set {
            let field = if class_set {
                f("classID")
            } else {
                f("priorities")
            };
            return Err(Error::resource(
                field,
                "is not supported on cgroup v2 (no net_cls/net_prio controllers)",
            ));
        }
        return Ok(());
    }
    if class_set {
        need(host, "net_cls", &f("classID"))?;
    }
    if prio_set {
        need(host, "net_prio", &f("priorities"))?;
    }
    Ok(())
}

fn check_unified<'a>(keys: impl Iterator<Item = &'a String>, host: &dyn HostCaps) -> Result<()> {
    for key in keys {
        let field = format!("{RES}.unified[{key:?}]");
        if host.version() == Version::V1 {
            return Err(Error::resource(field, "is only supported on cgroup v2"));
        }
        let controller = key.split_once('.').map(|(c, _)| c);
        if key.contains('/') || key.starts_with('.') || controller.is_none() {
            return Err(Error::resource(
                field,
                "must be a cgroup interface file name like \"memory.high\"",
            ));
        }
        let controller = controller.unwrap_or_default();
        if controller != "cgroup" {
            need(host, controller, &field)?;
        }
    }
    Ok(())
}
