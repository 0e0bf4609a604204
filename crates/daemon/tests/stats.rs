//! `stats`: Docker's JSON from the container's cgroup, and the table both CLIs print.

mod common;

use common::*;

#[test]
fn stats_show_cpu_memory_limit_pids_and_network() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "busy",
            "-m",
            "64m",
            "busybox",
            "sh",
            "-c",
            "while true; do :; done",
        ],
    );
    docker_ok(
        &d,
        &["run", "-d", "--name", "calm", "busybox", "sleep", "60"],
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Go's boolean spellings: docker-py sends `stream=False`.
    let (_, _, body) = d.request("GET", "/containers/busy/stats?stream=False");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["name"], "/busy");
    assert_eq!(v["memory_stats"]["limit"], 64 * 1024 * 1024);
    assert!(v["pids_stats"]["current"].as_u64().unwrap() >= 1);
    assert!(v["networks"]["eth0"]["rx_bytes"].is_u64(), "{v}");
    let cpu = v["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap();
    let pre = v["precpu_stats"]["cpu_usage"]["total_usage"]
        .as_u64()
        .unwrap();
    assert!(
        cpu > pre,
        "a busy container used no CPU between the readings"
    );
    for cli in [CliKind::Docker, CliKind::Berth] {
        let table = cli_ok(
            &d,
            cli,
            &[
                "stats",
                "--no-stream",
                "--format",
                "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}",
            ],
        );
        let busy = table
            .lines()
            .find(|l| l.starts_with("busy "))
            .expect("busy listed");
        let cpu: f64 = busy
            .split_whitespace()
            .nth(1)
            .unwrap()
            .trim_end_matches('%')
            .parse()
            .unwrap();
        assert!(cpu > 30.0, "{cli:?}: {busy}");
        assert!(busy.contains("/ 64MiB"), "{cli:?}: {busy}");
        assert!(table.lines().any(|l| l.starts_with("calm ")), "{table}");
    }
    // A stopped container: zeros from the API, dashes in the table.
    docker_ok(&d, &["stop", "-t", "0", "calm"]);
    let (_, _, body) = d.request("GET", "/containers/calm/stats?stream=false");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["read"], "0001-01-01T00:00:00Z");
    let shown = cli_ok(
        &d,
        CliKind::Berth,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.CPUPerc}} {{.PIDs}}",
            "calm",
        ],
    );
    assert_eq!(shown, "-- --");
    let o = docker(&d, &["stats", "--no-stream", "nosuch"]).unwrap();
    assert!(err(&o).contains("No such container"), "{}", err(&o));
    docker_ok(&d, &["rm", "-f", "busy", "calm"]);
    assert_clean(&d);
}

#[test]
fn the_daemon_keeps_a_history_per_container() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let id = cli_ok(
        &d,
        CliKind::Berth,
        &[
            "run",
            "-d",
            "--name",
            "busy",
            "-m",
            "64m",
            "busybox",
            "sh",
            "-c",
            "while :; do :; done",
        ],
    );
    // The sampler looks once a second; rates need two looks.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let table = loop {
        let t = cli_ok(&d, CliKind::Berth, &["stats", "--history", "busy"]);
        if t.lines().count() >= 4 {
            break t;
        }
        assert!(std::time::Instant::now() < deadline, "{t}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("TIME") && lines[0].contains("CPU %"),
        "{table}"
    );
    let cpu: f64 = lines[2]
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(cpu > 30.0, "a busy loop shows: {table}");
    assert!(lines[2].contains("/ 64MiB"), "{table}");
    let (status, _, body) = d.request("GET", &format!("/containers/{id}/stats/history?since=10m"));
    assert_eq!(status, 200);
    let points: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(points.as_array().unwrap().len() >= 3, "{body}");
    assert!(points[0]["time"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(points[0]["memory_limit"], 64 << 20);
    let (status, _, body) = d.request(
        "GET",
        &format!("/containers/{id}/stats/history?interval=5s"),
    );
    assert_eq!(status, 400, "{body}");
    let minutes = cli_ok(
        &d,
        CliKind::Berth,
        &["stats", "--history", "--interval", "1m", "busy"],
    );
    // At most the minute the container started in is complete by now.
    assert!(minutes.lines().count() <= 2, "{minutes}");
    // A one-shot stats uses the sampler's last look as its earlier moment.
    let once = cli_ok(
        &d,
        CliKind::Docker,
        &["stats", "--no-stream", "--format", "{{.CPUPerc}}", "busy"],
    );
    let once: f64 = once.trim_end_matches('%').parse().unwrap();
    assert!(once > 30.0, "{once}");
    cli_ok(&d, CliKind::Berth, &["rm", "-f", "busy"]);
    assert_clean(&d);
}
