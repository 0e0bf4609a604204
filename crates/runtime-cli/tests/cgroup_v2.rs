//! cgroup v2 on a hybrid host: a private mount namespace that shows only the unified
//! hierarchy at /sys/fs/cgroup makes the runtime detect v2, so its v2 path (cgroup
//! creation, process placement, freeze, kill, removal, the container's cgroup2 mount) runs
//! for real here too. On a pure v2 host every other test already runs that path.

mod common;

use std::path::Path;

use common::{TestBundle, stderr, stdout};
use serde_json::json;

const PURE_V2_VIEW: &str = r#"set -e
for m in $(awk '$5 ~ "^/sys/fs/cgroup/" {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
umount -l /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup
exec "$@"
"#;

/// Restores the unified root's subtree_control, which v2 cgroup creation may extend.
struct SubtreeGuard(String);

impl Drop for SubtreeGuard {
    fn drop(&mut self) {
        let path = "/sys/fs/cgroup/unified/cgroup.subtree_control";
        let now = std::fs::read_to_string(path).unwrap_or_default();
        for c in now
            .split_whitespace()
            .filter(|c| !self.0.split_whitespace().any(|o| o == *c))
        {
            let _ = std::fs::write(path, format!("-{c}"));
        }
    }
}

#[test]
fn container_lifecycle_on_cgroup_v2() {
    let unified = Path::new("/sys/fs/cgroup/unified");
    if !unified.join("cgroup.procs").exists() {
        eprintln!("skipped: no unified hierarchy beside v1 (pure v1 or pure v2 host)");
        return;
    }
    let _restore =
        SubtreeGuard(std::fs::read_to_string(unified.join("cgroup.subtree_control")).unwrap());
    let mut b = TestBundle::new(&["sh", "-c", "sleep 100"]);
    let script = b.dir.path().join("v2-view.sh");
    std::fs::write(&script, PURE_V2_VIEW).unwrap();
    b.wrapper = Some(script);
    // No controller is free for v2 on this host, so the config asks for no limits.
    b.config["linux"]["resources"] = json!({});
    let cgroup = unified.join(b.cgroup_path().trim_start_matches('/'));

    let out = b.create();
    assert!(out.status.success(), "create: {}", stderr(&out));
    assert!(cgroup.is_dir(), "no v2 cgroup at {}", cgroup.display());
    let pid = b.state()["pid"].as_i64().unwrap();
    let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().any(|p| p == pid.to_string()),
        "init {pid} not in {procs}"
    );
    assert!(b.cmd(&["start", &b.id]).status.success());

    let inside = b.cmd(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "cat /proc/self/cgroup; ls /sys/fs/cgroup/cgroup.procs",
    ]);
    assert!(
        stdout(&inside).contains("0::/"),
        "{} {}",
        stdout(&inside),
        stderr(&inside)
    );
    assert!(
        stdout(&inside).contains("/sys/fs/cgroup/cgroup.procs"),
        "no cgroup2 mount inside"
    );

    assert!(b.cmd(&["pause", &b.id]).status.success());
    assert_eq!(b.state()["status"], "paused");
    assert_eq!(
        std::fs::read_to_string(cgroup.join("cgroup.freeze"))
            .unwrap()
            .trim(),
        "1"
    );
    assert!(b.cmd(&["resume", &b.id]).status.success());
    assert_eq!(b.state()["status"], "running");

    let pids: Vec<i64> =
        serde_json::from_slice(&b.cmd(&["ps", "--format", "json", &b.id]).stdout).unwrap();
    assert!(pids.contains(&pid));
    assert!(b.cmd(&["kill", "--all", &b.id, "KILL"]).status.success());
    let del = b.cmd(&["delete", "--force", &b.id]);
    assert!(del.status.success(), "delete: {}", stderr(&del));
    assert!(!cgroup.exists(), "v2 cgroup left behind");
    b.assert_no_leftovers();
}
