//! Container lifecycle through the CLI: run, create/start/state/pause/kill/delete, exec,
//! list, hooks, spec.

mod common;

use std::time::{Duration, Instant};

use common::{TestBundle, stderr, stdout};
use serde_json::json;

fn wait_for_status(b: &TestBundle, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.state()["status"] != want {
        assert!(
            Instant::now() < deadline,
            "status never became {want}: {}",
            b.state()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_prints_output_and_returns_exit_code() {
    let b = TestBundle::new(&["sh", "-c", "echo hello; echo oops >&2; exit 3"]);
    let out = b.run();
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n");
    assert_eq!(stderr(&out), "oops\n");
    b.assert_no_leftovers();
}

#[test]
fn run_reports_death_by_signal_as_128_plus_signal() {
    let b = TestBundle::new(&["sleep", "30"]);
    b.write_config();
    let mut run = b
        .rt(&["run", &b.id])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.cmd(&["state", &b.id]).status.success() || b.state()["status"] != "running" {
        assert!(Instant::now() < deadline, "container never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(b.cmd(&["kill", &b.id, "9"]).status.success());
    assert_eq!(run.wait().unwrap().code(), Some(137));
    b.assert_no_leftovers();
}

#[test]
fn create_start_pause_kill_delete() {
    let b = TestBundle::new(&["sleep", "100"]);
    let out = b.create();
    assert!(out.status.success(), "create: {}", stderr(&out));
    let st = b.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], b.id.as_str());
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert!(
        st["bundle"]
            .as_str()
            .unwrap()
            .ends_with(b.dir.path().file_name().unwrap().to_str().unwrap())
    );

    assert!(b.cmd(&["start", &b.id]).status.success());
    assert_eq!(b.state()["status"], "running");
    let again = b.cmd(&["start", &b.id]);
    assert!(
        !again.status.success(),
        "a running container cannot be started twice"
    );

    assert!(b.cmd(&["pause", &b.id]).status.success());
    assert_eq!(b.state()["status"], "paused");
    assert!(b.cmd(&["resume", &b.id]).status.success());
    assert_eq!(b.state()["status"], "running");

    let ps = b.cmd(&["ps", "--format", "json", &b.id]);
    let pids: Vec<i64> = serde_json::from_slice(&ps.stdout).unwrap();
    assert!(pids.contains(&pid), "{pids:?} lacks init {pid}");

    let list = stdout(&b.cmd(&["list", "--format", "json"]));
    assert!(list.contains(&b.id));

    let refused = b.cmd(&["delete", &b.id]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("not stopped"),
        "{}",
        stderr(&refused)
    );

    assert!(b.cmd(&["kill", &b.id, "KILL"]).status.success());
    wait_for_status(&b, "stopped");
    let del = b.cmd(&["delete", &b.id]);
    assert!(del.status.success(), "delete: {}", stderr(&del));
    b.assert_no_leftovers();
    assert!(!b.cmd(&["state", &b.id]).status.success());
}

#[test]
fn delete_of_created_container_removes_its_init() {
    let b = TestBundle::new(&["sleep", "100"]);
    assert!(b.create().status.success());
    let pid = b.state()["pid"].as_i64().unwrap();
    assert!(b.cmd(&["delete", &b.id]).status.success());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "init {pid} still runs"
    );
    b.assert_no_leftovers();
}

#[test]
fn exec_runs_in_the_container_with_flags() {
    let b = TestBundle::new(&["sleep", "100"]);
    assert!(b.create().status.success());
    assert!(b.cmd(&["start", &b.id]).status.success());
    let out = b.cmd(&["exec", &b.id, "sh", "-c", "hostname; exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(stdout(&out), "berth-test\n");
    let out = b.cmd(&[
        "exec",
        "--cwd",
        "/tmp",
        "-e",
        "FOO=bar",
        "--user",
        "65534:65534",
        &b.id,
        "sh",
        "-c",
        "pwd; echo $FOO; id -u; id -g",
    ]);
    assert_eq!(
        stdout(&out),
        "/tmp\nbar\n65534\n65534\n",
        "{}",
        stderr(&out)
    );
    // The exec'd process sees the container's pid namespace: init is pid 1.
    let out = b.cmd(&["exec", &b.id, "cat", "/proc/1/cmdline"]);
    assert_eq!(stdout(&out).replace('\0', " ").trim(), "sleep 100");
    let process = json!({"args": ["sh", "-c", "echo from-process-json"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "env": ["PATH=/bin"]});
    let pfile = b.dir.path().join("process.json");
    std::fs::write(&pfile, process.to_string()).unwrap();
    let out = b.cmd(&["exec", "--process", pfile.to_str().unwrap(), &b.id]);
    assert_eq!(stdout(&out), "from-process-json\n", "{}", stderr(&out));
}

#[test]
fn detached_exec_writes_pid_file() {
    let b = TestBundle::new(&["sleep", "100"]);
    assert!(b.create().status.success());
    assert!(b.cmd(&["start", &b.id]).status.success());
    let pidfile = b.dir.path().join("exec.pid");
    let out = b.cmd(&[
        "exec",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        &b.id,
        "sleep",
        "50",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pids: Vec<i32> =
        serde_json::from_slice(&b.cmd(&["ps", "--format", "json", &b.id]).stdout).unwrap();
    assert!(pids.contains(&pid), "{pids:?} lacks exec'd {pid}");
}

#[test]
fn hooks_get_state_on_stdin_in_order() {
    let mut b = TestBundle::new(&["true"]);
    let log = b.dir.path().join("hooks.log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} $(cat) >> {}", log.display())]});
    b.config["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")]
    });
    let out = b.run();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["prestart", "createRuntime", "poststart", "poststop"]
    );
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().unwrap().split_once(' ').unwrap().1).unwrap();
    assert_eq!(first["id"], b.id.as_str());
    assert!(first["pid"].as_i64().unwrap() > 0);
    b.assert_no_leftovers();
}

#[test]
fn failing_hook_fails_create_and_cleans_up() {
    let mut b = TestBundle::new(&["true"]);
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    let out = b.create();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("createRuntime hook"),
        "{}",
        stderr(&out)
    );
    b.assert_no_leftovers();
}

#[test]
fn spec_writes_a_usable_config_and_refuses_to_overwrite() {
    let b = TestBundle::new(&["true"]);
    let dir = tempfile::tempdir().unwrap();
    let out = b
        .rt(&["spec", "--bundle", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let spec = berth_runtime::spec::parse_config(&dir.path().join("config.json")).unwrap();
    berth_runtime::spec::validate(&spec).unwrap();
    let again = b
        .rt(&["spec", "--bundle", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success());
}

#[test]
fn container_hooks_run_in_the_right_namespaces() {
    let mut b = TestBundle::new(&["true"]);
    let log = b.dir.path().join("create-container.log");
    // createContainer runs in the container's namespaces before pivot_root: host paths
    // still resolve, the mount namespace is already the container's.
    b.config["hooks"] = json!({
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", format!("readlink /proc/self/ns/mnt > {}", log.display())]}],
        // startContainer runs after pivot_root: its path resolves inside the container.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "hostname > /start-hook.out"]}]
    });
    let out = b.run();
    assert!(out.status.success(), "{}", stderr(&out));
    let hook_ns = std::fs::read_to_string(&log).unwrap();
    let host_ns = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    assert_ne!(
        hook_ns.trim(),
        host_ns.to_str().unwrap(),
        "createContainer ran in the host's mount namespace"
    );
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("start-hook.out")).unwrap(),
        "berth-test\n"
    );
}

#[test]
fn foreground_terminal_without_console_socket_is_proxied() {
    let mut b = TestBundle::new(&["sh", "-c", "tty"]);
    b.config["process"]["terminal"] = json!(true);
    let out = b.run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("/dev/pts/0"), "{:?}", stdout(&out));
}

#[test]
fn no_pivot_runs_the_container() {
    let b = TestBundle::new(&["sh", "-c", "cat /marker"]);
    std::fs::write(b.rootfs().join("marker"), "moved\n").unwrap();
    b.write_config();
    let out = b
        .rt(&["run", "--no-pivot", &b.id])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "moved\n");
}

#[test]
fn errors_go_to_the_json_log_for_containerd() {
    let b = TestBundle::new(&["true"]);
    let log = b.dir.path().join("log.json");
    let out = b.cmd(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "start",
        "no-such-container",
    ]);
    assert!(!out.status.success());
    let line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(
        line["msg"].as_str().unwrap().contains("no-such-container"),
        "{line}"
    );
}
