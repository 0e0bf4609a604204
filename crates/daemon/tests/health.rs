//! Healthchecks: Docker's states, streak and log, shown by inspect and ps, through both
//! CLIs' flags.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn health(d: &Daemon, name: &str) -> String {
    docker_ok(
        d,
        &[
            "inspect",
            "-f",
            "{{.State.Health.Status}} {{.State.Health.FailingStreak}}",
            name,
        ],
    )
}

fn wait_for(d: &Daemon, name: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = health(d, name);
        if now.starts_with(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {now}, waiting for {want}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_healthcheck_goes_unhealthy_then_healthy_and_ps_shows_it() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    for cli in [CliKind::Docker, CliKind::Berth] {
        let name = format!("{cli:?}-web").to_lowercase();
        cli_ok(
            &d,
            cli,
            &[
                "run",
                "-d",
                "--name",
                &name,
                "--health-cmd",
                "[ -f /tmp/ok ] && echo fine",
                "--health-interval",
                "200ms",
                "--health-timeout",
                "2s",
                "--health-retries",
                "2",
                "busybox",
                "sh",
                "-c",
                "mkdir -p /tmp; sleep 60",
            ],
        );
        assert!(
            health(&d, &name).starts_with("starting"),
            "{}",
            health(&d, &name)
        );
        wait_for(&d, &name, "unhealthy 2");
        let ps = docker_ok(
            &d,
            &[
                "ps",
                "--format",
                "{{.Status}}",
                "-f",
                &format!("name={name}"),
            ],
        );
        assert!(ps.ends_with("(unhealthy)"), "{ps}");
        docker_ok(&d, &["exec", &name, "sh", "-c", "echo > /tmp/ok"]);
        wait_for(&d, &name, "healthy 0");
        let log = docker_ok(
            &d,
            &[
                "inspect",
                "-f",
                "{{len .State.Health.Log}} {{(index .State.Health.Log 0).ExitCode}}",
                &name,
            ],
        );
        let n: usize = log.split_whitespace().next().unwrap().parse().unwrap();
        assert!((1..=5).contains(&n), "{log}");
        let ps = docker_ok(
            &d,
            &[
                "ps",
                "--format",
                "{{.Status}}",
                "-f",
                &format!("name={name}"),
            ],
        );
        assert!(ps.ends_with("(healthy)"), "{ps}");
        docker_ok(&d, &["rm", "-f", &name]);
    }
    // --no-healthcheck: no Health at all.
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "plain",
            "--no-healthcheck",
            "busybox",
            "sleep",
            "60",
        ],
    );
    assert_eq!(
        docker_ok(&d, &["inspect", "-f", "{{json .State.Health}}", "plain"]),
        "null"
    );
    docker_ok(&d, &["rm", "-f", "plain"]);
    assert_clean(&d);
}

#[test]
fn health_on_failure_restarts_or_kills_an_unhealthy_container() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let started = |name: &str| docker_ok(&d, &["inspect", "-f", "{{.State.StartedAt}}", name]);
    let check = [
        "--health-cmd",
        "exit 1",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
    ];
    // berth's flag…
    let mut args = vec![
        "run",
        "-d",
        "--name",
        "again",
        "--health-on-failure",
        "restart",
        "--stop-timeout",
        "1",
    ];
    args.extend_from_slice(&check);
    args.extend_from_slice(&["busybox", "sleep", "60"]);
    cli_ok(&d, CliKind::Berth, &args);
    let first = started("again");
    let deadline = Instant::now() + Duration::from_secs(45);
    while started("again") == first {
        let state = docker_ok(
            &d,
            &[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.Health.Status}} {{.State.StartedAt}}",
                "again",
            ],
        );
        assert!(Instant::now() < deadline, "never restarted: {state}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        docker_ok(&d, &["inspect", "-f", "{{.State.Status}}", "again"]),
        "running"
    );
    // … or the label any Docker client can set.
    let mut args = vec![
        "run",
        "-d",
        "--name",
        "dead",
        "--label",
        "berth.health-on-failure=kill",
    ];
    args.extend_from_slice(&check);
    args.extend_from_slice(&["busybox", "sleep", "60"]);
    docker_ok(&d, &args);
    let deadline = Instant::now() + Duration::from_secs(20);
    while docker_ok(&d, &["inspect", "-f", "{{.State.Status}}", "dead"]) != "exited" {
        assert!(Instant::now() < deadline, "never killed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        docker_ok(&d, &["inspect", "-f", "{{.State.ExitCode}}", "dead"]),
        "137"
    );
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--label",
            "berth.health-on-failure=explode",
            "busybox",
            "sleep",
            "0",
        ],
    )
    .unwrap();
    assert!(
        err(&o).contains("invalid --health-on-failure"),
        "{}",
        err(&o)
    );
    docker_ok(&d, &["rm", "-f", "again", "dead"]);
    assert_clean(&d);
}
