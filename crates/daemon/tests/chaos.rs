//! Crashes are normal: berthd is killed with SIGKILL while 20 `run -d` are in flight, and
//! shims are killed under running containers, at random moments, for a few rounds. After
//! each round: every container exists completely or not at all, running ones run,
//! their logs are intact, a dead shim's container is recorded exited (and its restart
//! policy brings it back), and no name is left reserved without its container.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;

/// A small deterministic generator (the seed is printed so a failing round can be
/// replayed with `BERTH_CHAOS_SEED`).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

const ROUNDS: usize = 3;
const IN_FLIGHT: usize = 20;

fn names_listed(d: &Daemon) -> Vec<String> {
    docker_ok(d, &["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Checks the invariants; returns the running containers' names.
fn check_invariants(d: &Daemon, round: usize) -> Vec<String> {
    let names = names_listed(d);
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "round {round}: duplicate names {names:?}"
    );
    let mut running = Vec::new();
    for name in &names {
        // Complete: inspectable, with its directories, and either never started or
        // with a state that tells how it ended.
        let state = docker_ok(
            d,
            &[
                "inspect",
                "-f",
                "{{.Id}} {{.State.Status}} {{.State.Pid}} {{.State.ExitCode}}",
                name,
            ],
        );
        let parts: Vec<&str> = state.split_whitespace().collect();
        let (id, status, pid) = (parts[0], parts[1], parts[2].parse::<i32>().unwrap());
        assert!(
            d.dir.path().join("data/containers").join(id).is_dir(),
            "round {round}: {name} has no directory"
        );
        match status {
            "running" => {
                // SAFETY: kill(2) with signal 0 only checks that the process exists.
                let alive = unsafe { libc::kill(pid, 0) } == 0;
                assert!(
                    alive,
                    "round {round}: {name} is recorded running but {pid} is gone"
                );
                let logs = docker_ok(d, &["logs", name]);
                assert!(
                    logs.starts_with("up"),
                    "round {round}: {name} lost its log: {logs:?}"
                );
                running.push(name.clone());
            }
            "exited" if parts[3] != "137" => {
                // Only the quick ones exit by themselves (137: a shim killed below).
                assert_eq!(
                    parts[3], "7",
                    "round {round}: {name} exited with {}",
                    parts[3]
                );
                let logs = docker_ok(d, &["logs", name]);
                assert_eq!(logs, "up", "round {round}: {name} lost its log");
            }
            "created" | "exited" | "restarting" => {}
            other => panic!("round {round}: {name} is {other}"),
        }
    }
    running
}

#[test]
fn crashes_at_random_moments_leave_a_consistent_engine() {
    let Some(mut d) = daemon_with_busybox() else {
        return;
    };
    let seed = std::env::var("BERTH_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("chaos seed: {seed} (BERTH_CHAOS_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    for round in 0..ROUNDS {
        // 20 runs in flight, then berthd is killed at a random moment among them.
        let names: Vec<String> = (0..IN_FLIGHT).map(|i| format!("r{round}c{i}")).collect();
        let delay = Duration::from_millis(rng.below(400));
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berth");
        let host = format!("unix://{}", d.socket().display());
        std::thread::scope(|s| {
            for (i, name) in names.iter().enumerate() {
                let (bin, host) = (&bin, &host);
                // Some come back after a crash by their policy; some exit at once with
                // a code of their own, which must survive the crash.
                let restart = if i % 4 == 0 { "always" } else { "no" };
                let script = if i % 4 == 1 {
                    "echo up; exit 7"
                } else {
                    "echo up; exec sleep 300"
                };
                s.spawn(move || {
                    // Cut off by the crash or not: either outcome is fine here.
                    let _ = std::process::Command::new("timeout")
                        .args(["-s", "KILL", "60"])
                        .arg(bin)
                        .args(["run", "-d", "--name", name, "--restart", restart])
                        .args(["busybox", "sh", "-c", script])
                        .env("BERTH_HOST", host)
                        .output();
                });
            }
            std::thread::sleep(delay);
            d.crash_and_restart();
        });
        let running = check_invariants(&d, round);

        // A name whose container does not exist is free again.
        let listed: HashSet<String> = names_listed(&d).into_iter().collect();
        for name in names.iter().filter(|n| !listed.contains(*n)) {
            let o = berth(&d, &["create", "--name", name, "busybox", "true"], None);
            assert!(
                o.status.success(),
                "round {round}: {name} stayed reserved: {}",
                err(&o)
            );
        }

        // A shim killed under a running container: recorded exited, or back by policy.
        if let Some(victim) = running.get(rng.below(running.len() as u64) as usize) {
            let id = docker_ok(&d, &["inspect", "-f", "{{.Id}}", victim]);
            let policy = docker_ok(
                &d,
                &[
                    "inspect",
                    "-f",
                    "{{.HostConfig.RestartPolicy.Name}}",
                    victim,
                ],
            );
            let shim = shim_pid_of(&id).expect("a running container has its shim");
            // SAFETY: kill(2) on the shim of a container this test started.
            unsafe { libc::kill(shim, libc::SIGKILL) };
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let state = docker_ok(
                    &d,
                    &[
                        "inspect",
                        "-f",
                        "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}",
                        victim,
                    ],
                );
                let done = if policy == "always" {
                    state.starts_with("running") && !state.ends_with(" 0")
                } else {
                    state == "exited 137 0"
                };
                if done {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "round {round}: {victim} after its shim died: {state}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        check_invariants(&d, round);
    }
    // Everything can be removed, and nothing is left behind.
    let all = docker_ok(&d, &["ps", "-aq"]);
    let mut args = vec!["rm", "-f"];
    args.extend(all.lines());
    if args.len() > 2 {
        docker_ok(&d, &args);
    }
    assert!(docker_ok(&d, &["ps", "-aq"]).is_empty());
    assert_clean(&d);
}
