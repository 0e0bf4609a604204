//! Cgroup limits seen from inside: the memory limit OOM-kills, the pids limit stops forks,
//! update changes a live container.

mod common;

use common::{TestBundle, stderr, stdout};
use serde_json::json;

fn memory_cgroup_file(b: &TestBundle, file: &str) -> Option<String> {
    let v1 = format!("/sys/fs/cgroup/memory{}/{file}", b.cgroup_path());
    std::fs::read_to_string(v1)
        .ok()
        .map(|s| s.trim().to_string())
}

#[test]
fn memory_limit_oom_kills() {
    let mut b = TestBundle::new(&[
        "sh",
        "-c",
        "dd if=/dev/zero of=/dev/null bs=128M count=1 2>/dev/null; echo rc=$?",
    ]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 32 << 20, "swap": 32 << 20});
    let out = b.run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "rc=137\n",
        "dd should be OOM-killed (SIGKILL)"
    );
    b.assert_no_leftovers();
}

#[test]
fn pids_limit_stops_forks() {
    let mut b = TestBundle::new(&[
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 2 & done; wait",
    ]);
    b.config["linux"]["resources"]["pids"] = json!({"limit": 6});
    let out = b.run();
    assert!(
        stderr(&out).contains("can't fork"),
        "stderr: {}",
        stderr(&out)
    );
}

#[test]
fn update_changes_a_running_container() {
    let b = TestBundle::new(&["sleep", "100"]);
    assert!(b.create().status.success());
    assert!(b.cmd(&["start", &b.id]).status.success());
    let out = b.cmd(&["update", "--memory", "64m", "--pids-limit", "50", &b.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    if let Some(limit) = memory_cgroup_file(&b, "memory.limit_in_bytes") {
        assert_eq!(limit, (64 << 20).to_string());
    }
    let stats = b.cmd(&["events", "--stats", &b.id]);
    let ev: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["data"]["pids"]["limit"], 50);
    assert!(ev["data"]["pids"]["current"].as_u64().unwrap() >= 1);
}

#[test]
fn invalid_resources_fail_before_anything_is_made() {
    let mut b = TestBundle::new(&["true"]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 64 << 20, "swap": 32 << 20});
    let out = b.run();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("linux.resources.memory.swap"),
        "{}",
        stderr(&out)
    );
    b.assert_no_leftovers();
}
