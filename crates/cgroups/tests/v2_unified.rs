//! cgroup v2 code paths against a real unified hierarchy: the host's own on
//! a pure v2 host, or `/sys/fs/cgroup/unified` on a hybrid host (where few
//! controllers are available, but freezing, cgroup.kill, recursive pids
//! and eBPF device programs all work). Need root.

mod common;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_cgroups::{Manager, Version};
use common::{CgroupGuard, is_root, read, resources, unique_path};
use serde_json::json;

/// Tests here may enable controllers in the unified root; run them one at a
/// time and put the root's subtree_control back afterwards.
static ROOT_LOCK: Mutex<()> = Mutex::new(());

/// The unified mount to test against, if any.
fn unified_root() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.controllers").exists())
}

/// Restores the root's cgroup.subtree_control on drop (hybrid hosts only:
/// on a pure v2 host enabling controllers at the root is normal).
struct RootRestore {
    root: PathBuf,
    before: String,
}

impl Drop for RootRestore {
    fn drop(&mut self) {
        if self.root == Path::new("/sys/fs/cgroup") {
            return;
        }
        let now = read(&self.root, "cgroup.subtree_control");
        for controller in now.split_whitespace() {
            if !self.before.split_whitespace().any(|c| c == controller) {
                let _ = std::fs::write(
                    self.root.join("cgroup.subtree_control"),
                    format!("-{controller}"),
                );
            }
        }
    }
}

fn v2_guard(root: &Path) -> (CgroupGuard, RootRestore) {
    let restore = RootRestore {
        root: root.to_path_buf(),
        before: read(root, "cgroup.subtree_control"),
    };
    let mgr = Manager::with_root(root, Version::V2, Some(&unique_path()), "x").unwrap();
    (CgroupGuard::from(mgr), restore)
}

#[test]
fn v2_lifecycle_freeze_pids_kill_destroy() {
    let Some(root) = unified_root().filter(|_| is_root()) else {
        return;
    };
    let _lock = ROOT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (mut g, _restore) = v2_guard(&root);
    g.mgr.create().unwrap();
    let dir = g.dir("");
    assert!(dir.is_dir());
    let pid = g.add_sleeper();
    assert_eq!(g.mgr.pids().unwrap(), vec![pid]);

    g.mgr.freeze().unwrap();
    assert!(g.mgr.is_frozen().unwrap());
    assert_eq!(read(&dir, "cgroup.freeze"), "1");
    let state = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        state.contains("State:\tS") || state.contains("State:\tD"),
        "{state}"
    );
    g.mgr.thaw().unwrap();
    assert!(!g.mgr.is_frozen().unwrap());

    g.add_busy_process();
    let mut stats = serde_json::Value::Null;
    for _ in 0..200 {
        stats = serde_json::to_value(g.mgr.stats().unwrap()).unwrap();
        if stats["cpu"]["usage"].get("total").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        stats["cpu"]["usage"]["total"].as_u64().unwrap() > 0,
        "{stats}"
    );

    g.mgr.kill_all(libc::SIGKILL).unwrap();
    for child in &mut g.children {
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    }
    g.children.clear();
    g.mgr.destroy().unwrap();
    assert!(!dir.exists());
}

/// Run `echo > /dev/null` inside the cgroup and report whether it worked.
fn can_write_dev_null(g: &mut CgroupGuard) -> bool {
    let child = CgroupGuard::spawn_waiting_shell("echo x > /dev/null");
    let pid = g.adopt(child);
    let child = g
        .children
        .iter_mut()
        .find(|c| c.id() as i32 == pid)
        .unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    child.wait().unwrap().success()
}

#[test]
fn v2_device_program_enforces_rules() {
    let Some(root) = unified_root().filter(|_| is_root()) else {
        return;
    };
    let _lock = ROOT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (mut g, _restore) = v2_guard(&root);
    g.mgr.create().unwrap();

    // Deny everything, allow only /dev/zero: writing /dev/null must fail.
    let deny = resources(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}
    ]}));
    g.mgr.apply(&deny).unwrap();
    assert!(
        !can_write_dev_null(&mut g),
        "/dev/null writable despite deny"
    );

    // Replacing the program (update) must drop the old one.
    let allow = resources(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}
    ]}));
    g.mgr.apply(&allow).unwrap();
    assert!(
        can_write_dev_null(&mut g),
        "/dev/null not writable despite allow"
    );

    // Read-only access to /dev/null: a write is refused.
    let read_only = resources(json!({"devices": [
        {"allow": true, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}
    ]}));
    g.mgr.apply(&read_only).unwrap();
    assert!(
        !can_write_dev_null(&mut g),
        "/dev/null writable despite deny w"
    );
}

#[test]
fn v2_apply_writes_unified_and_hugetlb_and_validates_controllers() {
    let Some(root) = unified_root().filter(|_| is_root()) else {
        return;
    };
    let _lock = ROOT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (g, _restore) = v2_guard(&root);
    g.mgr.create().unwrap();
    let dir = g.dir("");
    let available = read(&root, "cgroup.controllers");

    g.mgr
        .apply(&resources(json!({"unified": {"cgroup.max.depth": "3"}})))
        .unwrap();
    assert_eq!(read(&dir, "cgroup.max.depth"), "3");

    // create() enabled the root's controllers, so their files are here.
    if available.split_whitespace().any(|c| c == "hugetlb")
        && Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
    {
        let res = resources(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}));
        g.mgr.apply(&res).unwrap();
        assert_eq!(read(&dir, "hugetlb.2MB.max"), "0");
    }
    // A controller the hierarchy does not offer is refused up front.
    if !available.split_whitespace().any(|c| c == "memory") {
        let err = g
            .mgr
            .validate(&resources(json!({"memory": {"limit": 1_000_000}})))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.resources.memory is set but this host has no memory cgroup controller"
        );
    }
    let err = g
        .mgr
        .validate(&resources(json!({"network": {"classID": 7}})))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("linux.resources.network.classID"),
        "{err}"
    );
}
