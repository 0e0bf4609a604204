//! Resource flags: each limit lands in the container's cgroup or process as Docker puts
//! it, through both CLIs; `update` changes a running container; an OOM kill shows as
//! `OOMKilled` with an `oom` event; bad values get dockerd's messages.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The first of `names` found in the container's cgroup directories (v1 controllers
/// or the v2 unified directory), trimmed.
fn cgroup_value(id: &str, names: &[&str]) -> String {
    for dir in cgroup_dirs(id) {
        for n in names {
            if let Ok(v) = std::fs::read_to_string(dir.join(n)) {
                return v.trim().to_string();
            }
        }
    }
    panic!("none of {names:?} in the cgroup of {id}");
}

fn tools(d: &Daemon) -> Option<()> {
    import_image(
        d,
        "tools",
        &[
            "sh", "sleep", "cat", "grep", "ls", "df", "head", "tr", "echo", "mkdir",
        ],
        |_| {},
        &[],
    )
}

#[test]
fn every_limit_reaches_the_cgroup_and_the_process() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    tools(&d).unwrap();
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    for cli in [CliKind::Docker, CliKind::Berth] {
        let name = format!("{cli:?}-limits").to_lowercase();
        let id = cli_ok(
            &d,
            cli,
            &[
                "run",
                "-d",
                "--name",
                &name,
                "-m",
                "64m",
                "--memory-swap",
                "128m",
                "--memory-reservation",
                "32m",
                "--cpu-shares",
                "512",
                "--cpu-quota",
                "50000",
                "--cpu-period",
                "100000",
                "--cpuset-cpus",
                "0",
                "--cpuset-mems",
                "0",
                "--pids-limit",
                "33",
                "--oom-score-adj",
                "200",
                "--ulimit",
                "nofile=256:512",
                "--shm-size",
                "16m",
                "--sysctl",
                "kernel.shmmax=1000000",
                "--device",
                "/dev/null:/dev/mynull:rw",
                "--security-opt",
                "no-new-privileges",
                "tools",
                "sleep",
                "60",
            ],
        );
        let cg = |names: &[&str]| cgroup_value(&id, names);
        assert_eq!(cg(&["memory.limit_in_bytes", "memory.max"]), "67108864");
        if v2 {
            assert_eq!(cg(&["memory.swap.max"]), "67108864");
            assert_eq!(cg(&["memory.low"]), "33554432");
            assert_eq!(cg(&["cpu.max"]), "50000 100000");
        } else {
            assert_eq!(cg(&["memory.memsw.limit_in_bytes"]), "134217728");
            assert_eq!(cg(&["memory.soft_limit_in_bytes"]), "33554432");
            assert_eq!(cg(&["cpu.shares"]), "512");
            assert_eq!(cg(&["cpu.cfs_quota_us"]), "50000");
        }
        assert_eq!(cg(&["cpuset.cpus"]), "0");
        assert_eq!(cg(&["cpuset.mems"]), "0");
        assert_eq!(cg(&["pids.max"]), "33");
        let inside = |script: &str| cli_ok(&d, cli, &["exec", &name, "sh", "-c", script]);
        assert_eq!(inside("cat /proc/self/oom_score_adj"), "200");
        assert_eq!(inside("ulimit -n; ulimit -Hn"), "256\n512");
        assert!(
            inside("df -k /dev/shm").contains("16384"),
            "{}",
            inside("df -k /dev/shm")
        );
        assert_eq!(inside("cat /proc/sys/kernel/shmmax"), "1000000");
        assert!(inside("ls -l /dev/mynull").starts_with("crw"));
        assert_eq!(inside("echo hi > /dev/mynull && echo ok"), "ok");
        assert!(inside("grep NoNewPrivs /proc/self/status").ends_with('1'));
        let shown = cli_ok(
            &d,
            cli,
            &[
                "inspect",
                "-f",
                "{{.HostConfig.Memory}} {{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}} {{.HostConfig.OomScoreAdj}} {{.HostConfig.ShmSize}}",
                &name,
            ],
        );
        assert_eq!(shown, "67108864 512 33 200 16777216");

        cli_ok(
            &d,
            cli,
            &[
                "update",
                "-m",
                "96m",
                "--memory-swap",
                "192m",
                "--pids-limit",
                "40",
                &name,
            ],
        );
        assert_eq!(cg(&["memory.limit_in_bytes", "memory.max"]), "100663296");
        assert_eq!(cg(&["pids.max"]), "40");
        cli_ok(&d, cli, &["rm", "-f", &name]);

        // A seccomp profile in Docker's format, read from a file by the CLI.
        let profile = d.dir.path().join("no-mkdir.json");
        std::fs::write(
            &profile,
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
        )
        .unwrap();
        let opt = format!("seccomp={}", profile.display());
        let args = [
            "run",
            "--rm",
            "--security-opt",
            &opt,
            "tools",
            "mkdir",
            "/x",
        ];
        let o = match cli {
            CliKind::Docker => docker(&d, &args).unwrap(),
            CliKind::Berth => berth(&d, &args, None),
        };
        assert_eq!(o.status.code(), Some(1), "{}", err(&o));
        assert!(err(&o).contains("Operation not permitted"), "{}", err(&o));

        // What the kernel cannot enforce is discarded with dockerd's warning.
        let blkio = std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
            || std::path::Path::new("/sys/fs/cgroup/blkio/blkio.bfq.weight").exists()
            || v2;
        if !blkio {
            let args = ["create", "--blkio-weight", "300", "tools", "sleep", "1"];
            let o = match cli {
                CliKind::Docker => docker(&d, &args).unwrap(),
                CliKind::Berth => berth(&d, &args, None),
            };
            assert!(o.status.success(), "{}", err(&o));
            assert!(
                err(&o).contains("WARNING: Your kernel does not support Block I/O weight"),
                "{}",
                err(&o)
            );
            let id = out(&o);
            assert_eq!(
                docker_ok(
                    &d,
                    &["inspect", "-f", "{{.HostConfig.BlkioWeight}}", id.trim()]
                ),
                "0"
            );
            cli_ok(&d, cli, &["rm", id.trim()]);
        }
    }
    assert_clean(&d);
}

#[test]
fn an_oom_kill_is_reported_and_bad_limits_are_refused() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    tools(&d).unwrap();
    let since = format!(
        "{:.3}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    );
    let id = cli_ok(
        &d,
        CliKind::Berth,
        &[
            "run",
            "-d",
            "--name",
            "hog",
            "-m",
            "16m",
            "--memory-swap",
            "16m",
            "tools",
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = docker_ok(&d, &["inspect", "-f", "{{.State.Status}}", "hog"]);
        if state == "exited" {
            break;
        }
        assert!(Instant::now() < deadline, "the hog still runs: {state}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        docker_ok(
            &d,
            &[
                "inspect",
                "-f",
                "{{.State.OOMKilled}} {{.State.ExitCode}}",
                "hog"
            ]
        ),
        "true 137"
    );
    let now = format!(
        "{:.3}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    );
    let events = cli_ok(
        &d,
        CliKind::Berth,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &now,
            "-f",
            "container=hog",
            "--format",
            "{{.Action}}",
        ],
    );
    assert_eq!(events, "create\nstart\noom\ndie", "{id}");

    for cli in [CliKind::Docker, CliKind::Berth] {
        let refused = |args: &[&str], want: &str| {
            let mut all = vec!["run", "--rm"];
            all.extend_from_slice(args);
            all.extend_from_slice(&["tools", "sleep", "1"]);
            let o = match cli {
                CliKind::Docker => docker(&d, &all).unwrap(),
                CliKind::Berth => berth(&d, &all, None),
            };
            assert_eq!(o.status.code(), Some(125), "{args:?}: {}", err(&o));
            assert!(err(&o).contains(want), "{args:?}: {}", err(&o));
        };
        refused(&["-m", "1m"], "Minimum memory limit allowed is 6MB");
        refused(
            &["--oom-score-adj", "2000"],
            "range for oom score adj is [-1000, 1000]",
        );
        refused(
            &["--cpuset-cpus", "0-99"],
            "Requested CPUs are not available",
        );
        refused(
            &["--device", "/dev/nothing-here"],
            "error gathering device information",
        );
        refused(
            &["--sysctl", "vm.swappiness=1"],
            "sysctl 'vm.swappiness=1' is not allowed",
        );
    }
    // Nothing was created by the refused commands.
    assert_eq!(docker_ok(&d, &["ps", "-aq"]).lines().count(), 1);
    assert_clean(&d);
}
