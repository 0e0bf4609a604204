//! Invalid configs: one clear line naming the field, a non-zero exit, and nothing left
//! behind (no state dir, cgroup, mount or process).

mod common;

use common::{TestBundle, stderr};
use serde_json::json;

fn assert_refused(b: &TestBundle, field: &str) {
    let out = b.run();
    assert!(!out.status.success(), "accepted a bad config");
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(field), "error does not name {field}: {err}");
    b.assert_no_leftovers();
}

#[test]
fn unknown_namespace() {
    let mut b = TestBundle::new(&["true"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    assert_refused(&b, "linux.namespaces[6].type");
}

#[test]
fn missing_rootfs() {
    let mut b = TestBundle::new(&["true"]);
    b.config["root"]["path"] = json!("no-such-dir");
    assert_refused(&b, "root.path");
}

#[test]
fn user_namespace_without_mappings() {
    let mut b = TestBundle::new(&["true"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    assert_refused(&b, "linux.uidMappings");
}

#[test]
fn empty_mapping() {
    let mut b = TestBundle::new(&["true"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 0}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    assert_refused(&b, "linux.uidMappings[0].size");
}

#[test]
fn unknown_capability() {
    let mut b = TestBundle::new(&["true"]);
    b.config["process"]["capabilities"]["bounding"] = json!(["CAP_CHOWN", "CAP_NOT_A_THING"]);
    assert_refused(&b, "process.capabilities.bounding");
}

#[test]
fn missing_program_fails_at_create() {
    let b = TestBundle::new(&["/no/such/program"]);
    assert_refused(&b, "/no/such/program");
}

#[test]
fn failing_mount_is_named_and_undone() {
    let mut b = TestBundle::new(&["true"]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/x", "type": "no-such-fs", "source": "none"}));
    assert_refused(&b, "mounts[7]");
}

#[test]
fn duplicate_id_is_refused_without_harm() {
    let b = TestBundle::new(&["sleep", "100"]);
    assert!(b.create().status.success());
    let out = b.cmd(&["create", &b.id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(
        b.state()["status"],
        "created",
        "the first container survived"
    );
}

#[test]
fn invalid_id_is_refused() {
    let b = TestBundle::new(&["true"]);
    b.write_config();
    let out = b.cmd(&["create", "../escape"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid container id"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn readonly_root_without_mount_namespace() {
    let mut b = TestBundle::new(&["true"]);
    b.config["root"]["readonly"] = json!(true);
    b.config["linux"]["namespaces"] = json!([{"type": "pid"}]);
    assert_refused(&b, "root.readonly");
}
