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
