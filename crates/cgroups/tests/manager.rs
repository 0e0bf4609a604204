//! Tests against the host's real cgroups, for whichever version it runs
//! (v1 on hybrid hosts, v2 on pure unified hosts). Need root.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use berth_cgroups::{Manager, Version, detect};
use common::{CgroupGuard, is_root, read, resources, unique_path};
use serde_json::json;

/// The directory holding `controller`'s files for this cgroup.
fn controller_dir(g: &CgroupGuard, controller: &str) -> std::path::PathBuf {
    match g.mgr.version() {
        Version::V1 => g.dir(controller),
        Version::V2 => g.dir(""),
    }
}

#[test]
fn create_add_process_and_destroy() {
    if !is_root() {
        return;
    }
    let mut g = CgroupGuard::new();
    g.mgr.create().unwrap();
    for dir in g.mgr.paths().values() {
        assert!(dir.is_dir(), "{} missing after create", dir.display());
    }
    let pid = g.add_sleeper();
    assert!(g.mgr.pids().unwrap().contains(&pid));
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let dir = g.mgr.paths().values().next().unwrap().clone();
    let name = dir.file_name().unwrap().to_str().unwrap();
    assert!(own.contains(name), "{own}");

    let mut child = g.children.pop().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    g.mgr.destroy().unwrap();
    for dir in g.mgr.paths().values() {
        assert!(!dir.exists(), "{} left after destroy", dir.display());
    }
    // Destroying twice is fine.
    g.mgr.destroy().unwrap();
}

#[test]
fn memory_limit_and_swap_are_written() {
    if !is_root() {
        return;
    }
    let g = CgroupGuard::new();
    g.mgr.create().unwrap();
    let dir = controller_dir(&g, "memory");
    let limit = 64 * 1024 * 1024;
    let swap_supported = match g.mgr.version() {
        Version::V1 => dir.join("memory.memsw.limit_in_bytes").exists(),
        Version::V2 => dir.join("memory.swap.max").exists(),
    };
    let res = if swap_supported {
        resources(json!({"memory": {"limit": limit, "swap": 2 * limit, "reservation": limit / 2}}))
    } else {
        resources(json!({"memory": {"limit": limit, "reservation": limit / 2}}))
    };
    g.mgr.apply(&res).unwrap();
    match g.mgr.version() {
        Version::V1 => {
            assert_eq!(read(&dir, "memory.limit_in_bytes"), limit.to_string());
            assert_eq!(
                read(&dir, "memory.soft_limit_in_bytes"),
                (limit / 2).to_string()
            );
            if swap_supported {
                assert_eq!(
                    read(&dir, "memory.memsw.limit_in_bytes"),
                    (2 * limit).to_string()
                );
            }
        }
        Version::V2 => {
            assert_eq!(read(&dir, "memory.max"), limit.to_string());
            assert_eq!(read(&dir, "memory.low"), (limit / 2).to_string());
            if swap_supported {
                assert_eq!(read(&dir, "memory.swap.max"), limit.to_string());
            }
        }
    }
    // Shrinking below the old memsw must work too (write order matters on v1).
    let small = 32 * 1024 * 1024;
    let res = if swap_supported {
        resources(json!({"memory": {"limit": small, "swap": small}}))
    } else {
        resources(json!({"memory": {"limit": small}}))
    };
    g.mgr.apply(&res).unwrap();
    let file = match g.mgr.version() {
        Version::V1 => "memory.limit_in_bytes",
        Version::V2 => "memory.max",
    };
    assert_eq!(read(&dir, file), small.to_string());
}

#[test]
fn pids_limit_is_written() {
    if !is_root() {
        return;
    }
    let g = CgroupGuard::new();
    g.mgr.create().unwrap();
    let dir = controller_dir(&g, "pids");
    g.mgr
        .apply(&resources(json!({"pids": {"limit": 10}})))
        .unwrap();
    assert_eq!(read(&dir, "pids.max"), "10");
    g.mgr
        .apply(&resources(json!({"pids": {"limit": 0}})))
        .unwrap();
    assert_eq!(read(&dir, "pids.max"), "max");
}

#[test]
fn cpu_shares_quota_and_cpuset_are_written() {
    if !is_root() {
        return;
    }
    let g = CgroupGuard::new();
    g.mgr.create().unwrap();
    let res = resources(json!({"cpu": {
        "shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"
    }}));
    g.mgr.apply(&res).unwrap();
    let cpu = controller_dir(&g, "cpu");
    let cpuset = controller_dir(&g, "cpuset");
    match g.mgr.version() {
        Version::V1 => {
            assert_eq!(read(&cpu, "cpu.shares"), "512");
            assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
            assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
        }
        Version::V2 => {
            let weight = berth_cgroups::convert::cpu_shares_to_weight(512);
            assert_eq!(read(&cpu, "cpu.weight"), weight.to_string());
            assert_eq!(read(&cpu, "cpu.max"), "50000 100000");
        }
    }
    assert_eq!(read(&cpuset, "cpuset.cpus"), "0");
    assert_eq!(read(&cpuset, "cpuset.mems"), "0");
}

#[test]
fn freeze_and_thaw() {
    if !is_root() {
        return;
    }
    let mut g = CgroupGuard::new();
    g.mgr.create().unwrap();
    let pid = g.add_sleeper();
    assert!(!g.mgr.is_frozen().unwrap());
    g.mgr.freeze().unwrap();
    assert!(g.mgr.is_frozen().unwrap());
    match g.mgr.version() {
        Version::V1 => assert_eq!(read(&g.dir("freezer"), "freezer.state"), "FROZEN"),
        Version::V2 => assert!(read(&g.dir(""), "cgroup.events").contains("frozen 1")),
    }
    // Still there, just not running.
    assert!(g.mgr.pids().unwrap().contains(&pid));
    g.mgr.thaw().unwrap();
    assert!(!g.mgr.is_frozen().unwrap());
}

#[test]
fn stats_serialize_with_runc_keys() {
    if !is_root() {
        return;
    }
    let mut g = CgroupGuard::new();
    g.mgr.create().unwrap();
    g.mgr
        .apply(&resources(
            json!({"pids": {"limit": 50}, "memory": {"limit": 104_857_600}}),
        ))
        .unwrap();
    g.add_busy_process();
    // Wait until the busy loop has been accounted.
    let mut json = serde_json::Value::Null;
    for _ in 0..200 {
        json = serde_json::to_value(g.mgr.stats().unwrap()).unwrap();
        if json["cpu"]["usage"].get("total").is_some()
            && json["memory"]["usage"].get("usage").is_some()
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for key in [
        "cpu",
        "cpuset",
        "memory",
        "pids",
        "blkio",
        "hugetlb",
        "intel_rdt",
        "network_interfaces",
    ] {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
    assert!(json["network_interfaces"].is_null());
    for key in ["usage", "throttling"] {
        assert!(json["cpu"].get(key).is_some(), "cpu.{key} missing");
    }
    for key in ["kernel", "user"] {
        assert!(
            json["cpu"]["usage"].get(key).is_some(),
            "cpu.usage.{key} missing"
        );
    }
    for key in ["usage", "swap", "kernel", "kernelTCP", "raw"] {
        assert!(
            json["memory"].get(key).is_some(),
            "memory.{key} missing in {json}"
        );
    }
    assert_eq!(json["memory"]["usage"]["limit"], 104_857_600);
    assert!(json["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    // The busy shell forks helpers (head, tr) for a moment: one or a few tasks.
    let current = json["pids"]["current"].as_u64().unwrap();
    assert!((1..=50).contains(&current), "pids.current {current}");
    assert_eq!(json["pids"]["limit"], 50);
    assert!(
        json["cpu"]["usage"]["total"].as_u64().unwrap() > 0,
        "{json}"
    );
    assert!(!json["cpuset"]["cpus"].as_array().unwrap().is_empty());
}

#[test]
fn kill_all_kills_every_process() {
    if !is_root() {
        return;
    }
    let mut g = CgroupGuard::new();
    g.mgr.create().unwrap();
    g.add_sleeper();
    g.add_sleeper();
    g.mgr.kill_all(libc::SIGKILL).unwrap();
    for child in &mut g.children {
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
    g.children.clear();
    assert!(g.mgr.pids().unwrap().is_empty());
    // After a plain SIGTERM path too (freeze, signal, thaw).
    let pid = g.add_sleeper();
    g.mgr.kill_all(libc::SIGTERM).unwrap();
    let status = g.children[0].wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "pid {pid}");
    g.children.clear();
    assert!(!g.mgr.is_frozen().unwrap());
}

#[test]
fn validate_rejects_bad_values_and_creates_nothing() {
    if !is_root() {
        return;
    }
    let g = CgroupGuard::new();
    let cases = [
        (
            json!({"memory": {"limit": 200, "swap": 100}}),
            "linux.resources.memory.swap (100) must be >= linux.resources.memory.limit (200)",
        ),
        (
            json!({"memory": {"limit": -5}}),
            "linux.resources.memory.limit (-5)",
        ),
        (
            json!({"memory": {"swappiness": 101}}),
            "linux.resources.memory.swappiness (101)",
        ),
        (
            json!({"cpu": {"shares": 1}}),
            "linux.resources.cpu.shares (1)",
        ),
        (
            json!({"cpu": {"quota": 10}}),
            "linux.resources.cpu.quota (10)",
        ),
        (
            json!({"cpu": {"cpus": "0-x"}}),
            "linux.resources.cpu.cpus (0-x)",
        ),
        (
            json!({"cpu": {"cpus": "0-4095"}}),
            "linux.resources.cpu.cpus (0-4095)",
        ),
        (json!({"cpu": {"idle": 5}}), "linux.resources.cpu.idle (5)"),
        (
            json!({"blockIO": {"weight": 5}}),
            "linux.resources.blockIO.weight (5)",
        ),
        (
            json!({"hugepageLimits": [{"pageSize": "3XB", "limit": 1}]}),
            "linux.resources.hugepageLimits[0]",
        ),
        (
            json!({"devices": [{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwz"}]}),
            "linux.resources.devices[0].access",
        ),
    ];
    for (json, expected) in cases {
        let err = g.mgr.validate(&resources(json.clone())).unwrap_err();
        assert!(err.to_string().contains(expected), "{json}: got {err}");
        // apply() validates first, so nothing is written either.
        assert!(g.mgr.apply(&resources(json)).is_err());
    }
    // Host-dependent refusals.
    let err = match g.mgr.version() {
        Version::V1 => g
            .mgr
            .validate(&resources(json!({"unified": {"memory.high": "100"}}))),
        Version::V2 => g
            .mgr
            .validate(&resources(json!({"cpu": {"realtimeRuntime": 1000}}))),
    }
    .unwrap_err();
    assert!(err.to_string().starts_with("linux.resources."), "{err}");
    for dir in g.mgr.paths().values() {
        assert!(!dir.exists(), "validate created {}", dir.display());
    }
    // Good values pass.
    g.mgr
        .validate(&resources(
            json!({"memory": {"limit": 1_000_000}, "pids": {"limit": 5}}),
        ))
        .unwrap();
}

#[test]
fn destroy_removes_parents_it_created_but_not_shared_ones() {
    if !is_root() {
        return;
    }
    let top = unique_path();
    let first = CgroupGuard::from(Manager::new(Some(&format!("{top}/mid/a")), "x").unwrap());
    let second = CgroupGuard::from(Manager::new(Some(&format!("{top}/mid/b")), "x").unwrap());
    first.mgr.create().unwrap();
    second.mgr.create().unwrap();
    let top_dirs: Vec<_> = first
        .mgr
        .paths()
        .values()
        .map(|d| d.parent().unwrap().parent().unwrap().to_path_buf())
        .collect();
    // `second` lives under the parents `first` made: they must stay.
    first.mgr.destroy().unwrap();
    for dir in first.mgr.paths().values() {
        assert!(!dir.exists());
        assert!(dir.parent().unwrap().exists());
    }
    second.mgr.destroy().unwrap();
    // The last user is gone; `first` still knows it made them.
    first.mgr.destroy().unwrap();
    for dir in &top_dirs {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn v1_device_rules_are_written_in_order() {
    if !is_root() || detect() != Version::V1 {
        return;
    }
    let g = CgroupGuard::new();
    g.mgr.create().unwrap();
    let res = resources(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"}
    ]}));
    g.mgr.apply(&res).unwrap();
    let list = read(&g.dir("devices"), "devices.list");
    assert_eq!(list, "c 1:3 rwm\nc 1:5 r");
}

#[test]
fn relative_path_resolves_below_own_cgroup() {
    if !is_root() {
        return;
    }
    let mgr = Manager::new(Some("berth-rel/x"), "x").unwrap();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for (controller, dir) in mgr.paths() {
        assert!(dir.ends_with("berth-rel/x"), "{}", dir.display());
        let line = own
            .lines()
            .find(|l| {
                let controllers = l.split(':').nth(1).unwrap_or("");
                if controller.is_empty() {
                    controllers.is_empty()
                } else {
                    controllers.split(',').any(|c| c == controller)
                }
            })
            .unwrap();
        let own_path = line.splitn(3, ':').nth(2).unwrap().trim_start_matches('/');
        assert!(
            dir.to_string_lossy().contains(own_path),
            "{} not below {own_path}",
            dir.display()
        );
    }
}

#[test]
fn missing_hierarchy_is_an_error() {
    let empty = tempfile::tempdir().unwrap();
    for version in [Version::V1, Version::V2] {
        let err = Manager::with_root(empty.path(), version, None, "x").unwrap_err();
        assert!(err.to_string().starts_with("no cgroup"), "{err}");
    }
    assert!(!Path::new(empty.path()).join("berth").exists());
}
