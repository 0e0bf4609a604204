//! `events`: what the engine did, with Docker's types, actions and attributes, past
//! events between `--since` and `--until` (also after a daemon crash), filters, formats
//! and the live stream, through both CLIs.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Events between two Unix times through `cli`, `extra` flags added.
fn past(d: &Daemon, cli: CliKind, since: f64, until: f64, extra: &[&str]) -> Vec<String> {
    let (since, until) = (format!("{since:.9}"), format!("{until:.9}"));
    let mut args = vec!["events", "--since", &since, "--until", &until];
    args.extend_from_slice(extra);
    let out = cli_ok(d, cli, &args);
    out.lines().map(str::to_string).collect()
}

/// The lines without their times (the first word), for comparisons.
fn untimed(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.split_once(' ').map_or("", |(_, rest)| rest).to_string())
        .collect()
}

#[test]
fn events_tell_what_happened_filter_and_survive_a_crash() {
    let Some(mut d) = daemon_with_busybox() else {
        return;
    };
    let t0 = now();
    let id = cli_ok(
        &d,
        CliKind::Berth,
        &[
            "run",
            "-d",
            "--name",
            "ev1",
            "-l",
            "tier=front",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ],
    );
    cli_ok(&d, CliKind::Berth, &["wait", "ev1"]);
    cli_ok(&d, CliKind::Berth, &["rename", "ev1", "ev2"]);
    cli_ok(&d, CliKind::Berth, &["rm", "ev2"]);
    let net = cli_ok(&d, CliKind::Berth, &["network", "create", "evnet"]);
    cli_ok(&d, CliKind::Berth, &["network", "rm", "evnet"]);
    cli_ok(&d, CliKind::Berth, &["volume", "create", "evvol"]);
    cli_ok(&d, CliKind::Berth, &["volume", "rm", "evvol"]);
    cli_ok(&d, CliKind::Berth, &["tag", "busybox", "evtag:1"]);
    cli_ok(&d, CliKind::Berth, &["rmi", "evtag:1"]);
    let t1 = now();

    let lines = past(&d, CliKind::Docker, t0, t1, &[]);
    let text = untimed(&lines).join("\n");
    for want in [
        format!("container create {id} (image=busybox, name=ev1, tier=front)"),
        format!("container start {id} (image=busybox, name=ev1, tier=front)"),
        format!("container die {id} (exitCode=3, image=busybox, name=ev1, tier=front)"),
        format!("container rename {id} (image=busybox, name=ev2, oldName=/ev1, tier=front)"),
        format!("container destroy {id} (image=busybox, name=ev2, tier=front)"),
        format!("network create {net} (name=evnet, type=bridge)"),
        format!("network destroy {net} (name=evnet, type=bridge)"),
        "volume create evvol (driver=local)".to_string(),
        "volume destroy evvol (driver=local)".to_string(),
        "image tag sha256:".to_string(),
        "(name=evtag:1)".to_string(),
        "image untag sha256:".to_string(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in\n{text}");
    }
    // In time order, each with the docker CLI's RFC 3339 time.
    assert!(
        lines.iter().all(|l| l.len() > 31 && &l[29..30] == "Z"),
        "{lines:?}"
    );
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(sorted, lines);
    // Both CLIs print the same.
    assert_eq!(past(&d, CliKind::Berth, t0, t1, &[]), lines);

    // Filters, as dockerd applies them.
    let only = |extra: &[&str]| untimed(&past(&d, CliKind::Berth, t0, t1, extra));
    assert_eq!(
        only(&["--filter", "event=die", "--filter", "container=ev1"]),
        [format!(
            "container die {id} (exitCode=3, image=busybox, name=ev1, tier=front)"
        )]
    );
    assert_eq!(only(&["-f", "type=volume"]).len(), 2);
    assert_eq!(only(&["-f", "label=tier=front"]).len(), 5);
    assert_eq!(only(&["-f", "network=evnet"]).len(), 2);
    assert!(only(&["-f", "image=busybox", "-f", "type=container"]).len() >= 5);
    for cli in [CliKind::Docker, CliKind::Berth] {
        let formatted = past(
            &d,
            cli,
            t0,
            t1,
            &[
                "-f",
                "type=container",
                "--format",
                "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
            ],
        );
        assert_eq!(
            formatted,
            [
                "container create ev1",
                "container start ev1",
                "container die ev1",
                "container rename ev2",
                "container destroy ev2"
            ],
            "{cli:?}"
        );
        let json = past(
            &d,
            cli,
            t0,
            t1,
            &["-f", "event=start", "--format", "{{json .}}"],
        );
        let v: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
        assert_eq!(v["status"], "start", "{cli:?}");
        assert_eq!(v["from"], "busybox");
        assert_eq!(v["Actor"]["ID"], id.as_str());
    }
    let bad = berth(&d, &["events", "--until", "1", "-f", "colour=red"], None);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        err(&bad).contains("invalid filter 'colour'"),
        "{}",
        err(&bad)
    );

    // The journal outlives a crash of the daemon.
    d.crash_and_restart();
    assert_eq!(past(&d, CliKind::Docker, t0, t1, &[]), lines);
    assert_clean(&d);
}

#[test]
fn the_live_stream_shows_events_as_they_happen_and_ends_at_until() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berth");
    let until = format!("{:.3}", now() + 30.0);
    let mut watcher = Command::new(&bin)
        .args(["events", "--until", &until, "-f", "container=live1"])
        .args([
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}} {{.TimeNano}}",
        ])
        .env("BERTH_HOST", format!("unix://{}", d.socket().display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The subscription exists once the daemon answered the request's head; a `run`
    // before that could be missed, so give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    cli_ok(
        &d,
        CliKind::Berth,
        &["run", "--rm", "--name", "live1", "busybox", "echo", "hi"],
    );
    let mut lines = BufReader::new(watcher.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("destroy") {
        assert!(started.elapsed() < Duration::from_secs(20), "{seen:?}");
        match lines.next() {
            Some(Ok(l)) => {
                eprintln!("{l}");
                seen.push(l.split(' ').next().unwrap().to_string())
            }
            _ => break,
        }
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert_eq!(seen, ["create", "attach", "start", "die", "destroy"]);

    // A stream with `until` in the near future ends by itself.
    let until = format!("{:.3}", now() + 1.0);
    let t = Instant::now();
    let out = berth(&d, &["events", "--until", &until], None);
    assert!(out.status.success(), "{}", err(&out));
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_clean(&d);
}

#[test]
fn copies_exports_and_commits_are_events_too() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let t0 = now();
    cli_ok(
        &d,
        CliKind::Berth,
        &["create", "--name", "files", "busybox", "sleep", "1"],
    );
    let src = d.dir.path().join("note.txt");
    std::fs::write(&src, "hi").unwrap();
    cli_ok(
        &d,
        CliKind::Berth,
        &["cp", src.to_str().unwrap(), "files:/"],
    );
    let back = d.dir.path().join("back.txt");
    cli_ok(
        &d,
        CliKind::Berth,
        &["cp", "files:/note.txt", back.to_str().unwrap()],
    );
    let tar = d.dir.path().join("files.tar");
    cli_ok(
        &d,
        CliKind::Berth,
        &["export", "-o", tar.to_str().unwrap(), "files"],
    );
    let image = cli_ok(
        &d,
        CliKind::Berth,
        &["commit", "-m", "snap", "files", "snap:1"],
    );
    cli_ok(&d, CliKind::Berth, &["rm", "files"]);
    let t1 = now();
    let actions = past(
        &d,
        CliKind::Docker,
        t0,
        t1,
        &["-f", "type=container", "--format", "{{.Action}}"],
    );
    assert_eq!(
        actions,
        [
            "create",
            "extract-to-dir",
            "archive-path",
            "export",
            "commit",
            "destroy"
        ]
    );
    let commit = past(
        &d,
        CliKind::Berth,
        t0,
        t1,
        &[
            "-f",
            "event=commit",
            "--format",
            "{{.Actor.Attributes.comment}} {{.Actor.Attributes.imageID}} {{.Actor.Attributes.imageRef}}",
        ],
    );
    assert_eq!(commit, [format!("snap {image} snap:1")]);

    // Volumes are mounted for a run and unmounted after it.
    let t2 = now();
    cli_ok(
        &d,
        CliKind::Berth,
        &[
            "run",
            "--rm",
            "-v",
            "evdata:/data:ro",
            "busybox",
            "echo",
            "hi",
        ],
    );
    let t3 = now();
    let volume = past(
        &d,
        CliKind::Docker,
        t2,
        t3,
        &[
            "-f",
            "type=volume",
            "--format",
            "{{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"read/write\"}} {{.Actor.Attributes.destination}}",
        ],
    );
    assert_eq!(
        volume,
        [
            "create evdata  <no value>",
            "mount evdata false /data",
            "unmount evdata  <no value>"
        ]
    );
    assert_clean(&d);
}
