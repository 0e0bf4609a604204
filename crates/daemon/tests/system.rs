//! berthd as a process: its socket, pid file, API versions and errors, and the real docker
//! CLI talking to it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{Daemon, docker};

#[test]
fn ping_has_dockers_headers() {
    let d = Daemon::start();
    let (status, head, body) = d.request("GET", "/_ping");
    assert_eq!(status, 200);
    assert_eq!(body, "OK");
    for h in ["api-version: 1.47", "ostype: linux", "builder-version: 1"] {
        assert!(head.contains(h), "missing {h} in\n{head}");
    }
    let (status, head, body) = d.request("HEAD", "/_ping");
    assert_eq!((status, body.as_str()), (200, ""));
    assert!(head.contains("api-version: 1.47"));
    let (status, _, _) = d.request("GET", "/v1.24/_ping");
    assert_eq!(status, 200);
}

#[test]
fn api_versions_are_checked_like_dockerd() {
    let d = Daemon::start();
    let (status, _, body) = d.request("GET", "/v1.50/version");
    assert_eq!(status, 400);
    let msg: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        msg["message"],
        "client version 1.50 is too new. Maximum supported API version is 1.47"
    );
    let (status, _, body) = d.request("GET", "/v1.12/version");
    assert_eq!(status, 400);
    assert!(body.contains("too old"), "{body}");
    let (status, _, body) = d.request("GET", "/v1.41/version");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ApiVersion"], "1.47");
    assert_eq!(v["MinAPIVersion"], "1.24");
    assert_eq!(v["Os"], "linux");
}

#[test]
fn unknown_paths_are_404_json() {
    let d = Daemon::start();
    let (status, head, body) = d.request("GET", "/v1.47/no/such/thing");
    assert_eq!(status, 404);
    assert!(head.contains("content-type: application/json"));
    let msg: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(msg["message"], "page not found");
}

#[test]
fn socket_is_0660_and_removed_with_the_pid_file_on_sigterm() {
    let mut d = Daemon::start();
    let mode = std::fs::metadata(d.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let pid: u32 = std::fs::read_to_string(d.pidfile())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, d.child.as_ref().unwrap().id());
    assert!(d.stop().success());
    assert!(!d.socket().exists(), "socket left behind");
    assert!(!d.pidfile().exists(), "pid file left behind");
}

#[test]
fn a_second_daemon_on_the_same_pid_file_refuses_to_start() {
    let d = Daemon::start();
    let out = d
        .spawn()
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another berthd"), "{err}");
    // The first one still serves.
    assert_eq!(d.request("GET", "/_ping").0, 200);
}

#[test]
fn bad_config_file_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("daemon.json");
    std::fs::write(&cfg, r#"{"data-root": 5}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_berthd"))
        .arg("--config-file")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("daemon.json") && err.contains("data-root"),
        "{err}"
    );
}

#[test]
fn docker_cli_negotiates_and_reads_version_and_info() {
    let d = Daemon::start();
    let Some(out) = docker(
        &d,
        &[
            "version",
            "--format",
            "{{.Server.APIVersion}} {{.Server.Os}}",
        ],
    ) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.47 linux");
    let out = docker(
        &d,
        &[
            "info",
            "--format",
            "{{.CgroupVersion}} {{.Driver}} {{.DockerRootDir}}",
        ],
    )
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected_cgroup = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields[0], expected_cgroup);
    assert_eq!(fields[1], "overlay2");
    assert_eq!(fields[2], d.dir.path().join("data").to_str().unwrap());
}
