//! What a process sees from inside: namespaces, the pivoted root, capabilities, users,
//! masked and read-only paths, devices, user namespaces, terminals.

mod common;

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;

use common::{DEFAULT_CAPS, TestBundle, stderr, stdout};
use serde_json::json;

fn run_ok(b: &TestBundle) -> String {
    let out = b.run();
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status.code(),
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn namespaces_differ_from_the_hosts() {
    let kinds = ["pid", "net", "ipc", "uts", "mnt", "cgroup"];
    let script: String = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}; "))
        .collect();
    let b = TestBundle::new(&["sh", "-c", &script]);
    let out = run_ok(&b);
    let inside: Vec<&str> = out.lines().collect();
    assert_eq!(inside.len(), kinds.len());
    for (k, ns) in kinds.iter().zip(inside) {
        let host = std::fs::read_link(format!("/proc/self/ns/{k}")).unwrap();
        assert_ne!(host.to_str().unwrap(), ns, "{k} namespace is the host's");
    }
}

#[test]
fn root_is_pivoted_into_the_rootfs() {
    let b = TestBundle::new(&[
        "sh",
        "-c",
        "cat /marker; [ -e /etc/debian_version ] && echo host-visible; echo $$; hostname",
    ]);
    std::fs::write(b.rootfs().join("marker"), "inside\n").unwrap();
    assert!(std::path::Path::new("/etc/debian_version").exists());
    assert_eq!(run_ok(&b), "inside\n1\nberth-test\n");
}

#[test]
fn signals_start_with_default_dispositions() {
    // The runtime is a Rust program, which ignores SIGPIPE; the container must not.
    let b = TestBundle::new(&["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]);
    assert_eq!(
        run_ok(&b),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
}

#[test]
fn effective_capabilities_match_the_config() {
    let b = TestBundle::new(&[
        "sh",
        "-c",
        "grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status; grep NoNewPrivs /proc/self/status",
    ]);
    let out = run_ok(&b);
    // Docker's default set is 0x00000000a80425fb.
    let expected = DEFAULT_CAPS.len();
    assert_eq!(expected, 14);
    for line in [
        "CapPrm:\t00000000a80425fb",
        "CapEff:\t00000000a80425fb",
        "CapBnd:\t00000000a80425fb",
        "NoNewPrivs:\t1",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
}

#[test]
fn process_runs_as_configured_user_with_groups() {
    let mut b = TestBundle::new(&[
        "sh",
        "-c",
        "id -u; id -g; id -G; grep CapEff /proc/self/status; echo $HOME",
    ]);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20]});
    let out = run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1001");
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["1001", "10", "20"]
    );
    assert_eq!(
        lines[3], "CapEff:\t0000000000000000",
        "a non-root user keeps no effective capabilities"
    );
    assert_eq!(lines[4], "/");
}

#[test]
fn masked_and_readonly_paths_hold() {
    let b = TestBundle::new(&[
        "sh",
        "-c",
        "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; \
        echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable; \
        echo x > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable; echo done",
    ]);
    assert_eq!(run_ok(&b), "0\n0\ndone\n");
}

#[test]
fn readonly_root_refuses_writes() {
    let mut b = TestBundle::new(&[
        "sh",
        "-c",
        "touch /newfile 2>&1; echo x > /dev/shm/ok && echo shm-ok",
    ]);
    b.config["root"]["readonly"] = json!(true);
    let out = run_ok(&b);
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("shm-ok"), "{out}");
    assert!(!b.rootfs().join("newfile").exists());
}

#[test]
fn default_devices_exist_and_work() {
    let b = TestBundle::new(&[
        "sh",
        "-c",
        "echo x > /dev/null && head -c 4 /dev/zero | wc -c && ls -l /dev/null /dev/urandom | cut -c1; readlink /dev/ptmx; readlink /dev/fd",
    ]);
    assert_eq!(run_ok(&b), "4\nc\nc\npts/ptmx\n/proc/self/fd\n");
}

#[test]
fn config_devices_are_created_and_allowed() {
    let mut b = TestBundle::new(&[
        "sh",
        "-c",
        "ls -l /dev/mynull | cut -c1; echo x > /dev/mynull && echo written",
    ]);
    b.config["linux"]["devices"] =
        json!([{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 438}]);
    b.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    ]);
    assert_eq!(run_ok(&b), "c\nwritten\n");
}

#[test]
fn device_cgroup_denies_unlisted_devices() {
    let mut b = TestBundle::new(&[
        "sh",
        "-c",
        "mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem >/dev/null 2>&1 && echo read-mem; echo done",
    ]);
    b.config["process"]["capabilities"]["bounding"] =
        json!(["CAP_MKNOD", "CAP_SYS_RAWIO", "CAP_DAC_OVERRIDE"]);
    b.config["process"]["capabilities"]["effective"] =
        json!(["CAP_MKNOD", "CAP_SYS_RAWIO", "CAP_DAC_OVERRIDE"]);
    b.config["process"]["capabilities"]["permitted"] =
        json!(["CAP_MKNOD", "CAP_SYS_RAWIO", "CAP_DAC_OVERRIDE"]);
    assert_eq!(run_ok(&b), "done\n");
}

#[test]
fn user_namespace_maps_root() {
    let mut b = TestBundle::new(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map /proc/self/gid_map; ls -ln /bin/busybox | awk '{print $3}'",
    ]);
    // The mapped root must be able to reach the rootfs through the bundle directory.
    std::fs::set_permissions(b.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let out = run_ok(&b);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0"]);
    assert_eq!(lines[1], ["0", "100000", "65536"]);
    assert_eq!(lines[2], ["0", "100000", "65536"]);
    // Files owned by the host's root are not root's inside.
    assert_eq!(lines[3], ["65534"]);
}

#[test]
fn terminal_goes_through_the_console_socket() {
    let mut b = TestBundle::new(&["sh", "-c", "tty; stty size"]);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 24, "width": 80});
    let sock_dir = tempfile::tempdir().unwrap();
    let sock_path = sock_dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    b.write_config();
    let out = b.cmd(&[
        "create",
        "--console-socket",
        sock_path.to_str().unwrap(),
        &b.id,
    ]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let (conn, _) = listener.accept().unwrap();
    let master = berth_runtime::console::recv_fd(conn.as_fd()).unwrap();
    assert!(b.cmd(&["start", &b.id]).status.success());
    let mut master = std::fs::File::from(master);
    let mut text = String::new();
    let mut buf = [0u8; 1024];
    // Reading the master fails with EIO once the container side has closed.
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    assert!(text.contains("24 80"), "{text:?}");
}

#[test]
fn rlimits_and_sysctls_apply() {
    let mut b = TestBundle::new(&["sh", "-c", "ulimit -n; cat /proc/sys/net/ipv4/ip_forward"]);
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    assert_eq!(run_ok(&b), "256\n1\n");
}

#[test]
fn without_namespaces_the_process_shares_the_hosts_and_is_chrooted() {
    let mut b = TestBundle::new(&["sleep", "100"]);
    b.config["linux"]["namespaces"] = json!([]);
    b.config["mounts"] = json!([]);
    b.config.as_object_mut().unwrap().remove("hostname");
    let out = b.create();
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = b.state()["pid"].as_i64().unwrap();
    for ns in ["net", "pid", "mnt", "uts"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_eq!(host, theirs, "{ns} namespace differs");
    }
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(root, b.rootfs().canonicalize().unwrap());
}
