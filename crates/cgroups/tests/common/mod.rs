//! Shared helpers for the real-cgroup tests: unique cgroup names, a guard
//! that kills children and removes the cgroup even when a test panics, and
//! reading cgroup files back.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_cgroups::Manager;
use oci_spec::runtime::LinuxResources;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// "/berth-test-<pid>-<n>", unique per call in this test binary.
pub fn unique_path() -> String {
    format!(
        "/berth-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Real cgroups need root; tests print a note and pass when not root.
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !root {
        eprintln!("skipping: cgroup tests need root");
    }
    root
}

/// Owns a cgroup and the processes put in it; cleans both up on drop.
pub struct CgroupGuard {
    pub mgr: Manager,
    pub children: Vec<Child>,
}

impl CgroupGuard {
    /// A manager for a fresh unique path, not yet created.
    pub fn new() -> CgroupGuard {
        CgroupGuard::from(Manager::new(Some(&unique_path()), "unused").expect("manager"))
    }

    pub fn from(mgr: Manager) -> CgroupGuard {
        CgroupGuard {
            mgr,
            children: Vec::new(),
        }
    }

    /// Spawn `sleep 30`, put it in the cgroup and return its pid.
    pub fn add_sleeper(&mut self) -> i32 {
        let child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        self.adopt(child)
    }

    /// A shell that, once in the cgroup, burns a little CPU and then sleeps:
    /// cgroup CPU accounting only counts time spent inside the cgroup.
    pub fn add_busy_process(&mut self) -> i32 {
        let child = CgroupGuard::spawn_waiting_shell(
            // Forks and fresh pages after the move, so memory is charged to the cgroup
            // (v1 does not move charges of pages touched before).
            "x=$(head -c 200000 /dev/zero | tr '\\0' a); i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 30",
        );
        let pid = self.adopt(child);
        let child = self.children.last_mut().expect("just adopted");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(b"go\n")
            .expect("start busy shell");
        pid
    }

    /// Keep `child` for clean-up and add it to the cgroup.
    pub fn adopt(&mut self, child: Child) -> i32 {
        let pid = child.id() as i32;
        self.children.push(child);
        self.mgr.add_process(pid).expect("add_process");
        pid
    }

    /// A child that blocks reading stdin, so the test can move it into the
    /// cgroup before it runs `script`.
    pub fn spawn_waiting_shell(script: &str) -> Child {
        Command::new("sh")
            .arg("-c")
            .arg(format!("read _; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh")
    }

    /// The single directory of the cgroup for `controller` ("" on v2).
    pub fn dir(&self, controller: &str) -> PathBuf {
        self.mgr.paths()[controller].clone()
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        let _ = self.mgr.thaw();
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.mgr.kill_all(libc::SIGKILL);
        if let Err(e) = self.mgr.destroy() {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Read a cgroup file, trimmed.
pub fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

/// Build LinuxResources from config.json-style JSON.
pub fn resources(json: serde_json::Value) -> LinuxResources {
    serde_json::from_value(json).expect("valid linux.resources json")
}
