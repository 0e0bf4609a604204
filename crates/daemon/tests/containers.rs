//! Containers through the real docker CLI against a private berthd: run -d, ps, logs,
//! wait, inspect, stop, kill, rm, and the errors users hit. Each test checks that nothing
//! (mount, cgroup, shim) is left behind.

mod common;

use common::{
    CliKind, assert_clean, daemon_with_busybox, docker, docker_ok, err, out, shim_pid_of,
};

#[test]
fn run_detached_then_logs_wait_inspect_rm() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let run = docker(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "-e",
            "GREETING=hi",
            "busybox",
            "sh",
            "-c",
            "echo $GREETING from $(hostname); echo oops >&2; sleep 1; echo bye; exit 7",
        ],
    )
    .unwrap();
    assert!(run.status.success(), "{}", err(&run));
    let id = out(&run);
    assert_eq!(id.len(), 64);
    let ps = docker(&d, &["ps", "--format", "{{.Names}} {{.Status}}"]).unwrap();
    assert!(out(&ps).starts_with("web Up"), "{}", out(&ps));
    let wait = docker(&d, &["wait", "web"]).unwrap();
    assert_eq!(out(&wait), "7");
    let logs = docker(&d, &["logs", "web"]).unwrap();
    assert_eq!(out(&logs), format!("hi from {}\nbye", &id[..12]));
    assert_eq!(err(&logs), "oops");
    let tail = docker(&d, &["logs", "--tail", "1", "web"]).unwrap();
    assert_eq!(out(&tail), "bye");
    let inspect = docker(
        &d,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}} {{.Name}} {{.Config.Hostname}}",
            "web",
        ],
    )
    .unwrap();
    assert_eq!(out(&inspect), format!("exited 7 /web {}", &id[..12]));
    let psa = docker(&d, &["ps", "-a", "--format", "{{.ID}} {{.Status}}"]).unwrap();
    assert!(
        out(&psa).starts_with(&format!("{} Exited (7)", &id[..12])),
        "{}",
        out(&psa)
    );
    assert!(docker(&d, &["rm", "web"]).unwrap().status.success());
    assert_eq!(out(&docker(&d, &["ps", "-aq"]).unwrap()), "");
    assert!(!d.dir.path().join("data/containers").join(&id).exists());
    assert_clean(&d);
}

#[test]
fn stop_kill_and_forced_removal() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let run = docker(
        &d,
        &["run", "-d", "--name", "aa", "busybox", "sleep", "100"],
    )
    .unwrap();
    assert!(run.status.success(), "{}", err(&run));
    let refused = docker(&d, &["rm", "aa"]).unwrap();
    assert!(!refused.status.success());
    assert!(
        err(&refused).contains("container is running"),
        "{}",
        err(&refused)
    );
    // sleep as pid 1 ignores SIGTERM: stop escalates to SIGKILL after the timeout.
    let stop = docker(&d, &["stop", "-t", "1", "aa"]).unwrap();
    assert!(stop.status.success(), "{}", err(&stop));
    let status = docker(
        &d,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "aa",
        ],
    )
    .unwrap();
    assert_eq!(out(&status), "exited 137");
    assert!(
        docker(
            &d,
            &["run", "-d", "--name", "bb", "busybox", "sleep", "100"]
        )
        .unwrap()
        .status
        .success()
    );
    assert!(docker(&d, &["kill", "bb"]).unwrap().status.success());
    assert_eq!(out(&docker(&d, &["wait", "bb"]).unwrap()), "137");
    assert!(
        docker(
            &d,
            &["run", "-d", "--name", "cc", "busybox", "sleep", "100"]
        )
        .unwrap()
        .status
        .success()
    );
    let forced = docker(&d, &["rm", "-f", "aa", "bb", "cc"]).unwrap();
    assert!(forced.status.success(), "{}", err(&forced));
    assert_eq!(out(&docker(&d, &["ps", "-aq"]).unwrap()), "");
    let info = docker(
        &d,
        &["info", "--format", "{{.Containers}} {{.ContainersRunning}}"],
    )
    .unwrap();
    assert_eq!(out(&info), "0 0");
    assert_clean(&d);
}

#[test]
fn user_errors_read_like_dockers() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let missing = docker(&d, &["run", "-d", "nosuchimage"]).unwrap();
    assert_eq!(missing.status.code(), Some(125));
    assert!(
        err(&missing).contains("Unable to find image 'nosuchimage:latest' locally"),
        "{}",
        err(&missing)
    );

    assert!(
        docker(&d, &["create", "--name", "dup", "busybox"])
            .unwrap()
            .status
            .success()
    );
    let dup = docker(&d, &["create", "--name", "dup", "busybox"]).unwrap();
    assert!(!dup.status.success());
    assert!(
        err(&dup).contains("is already in use by container"),
        "{}",
        err(&dup)
    );

    let noexec = docker(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "noexec",
            "busybox",
            "/no/such/binary",
        ],
    )
    .unwrap();
    assert_eq!(noexec.status.code(), Some(127), "{}", err(&noexec));
    assert!(
        err(&noexec).contains("no such file or directory"),
        "{}",
        err(&noexec)
    );
    let state = docker(&d, &["inspect", "-f", "{{.State.Status}}", "noexec"]).unwrap();
    assert_eq!(out(&state), "created");

    let nouser = docker(&d, &["run", "-d", "-u", "ghost", "busybox", "true"]).unwrap();
    assert!(!nouser.status.success());
    assert!(
        err(&nouser).contains("unable to find user ghost"),
        "{}",
        err(&nouser)
    );
    let short = docker(&d, &["create", "--name", "x", "busybox"]).unwrap();
    assert!(
        err(&short).contains("Invalid container name (x)"),
        "{}",
        err(&short)
    );
    let gone = docker(&d, &["logs", "nosuchcontainer"]).unwrap();
    assert!(
        err(&gone).contains("No such container: nosuchcontainer"),
        "{}",
        err(&gone)
    );
    assert!(
        docker(&d, &["rm", "-f", "dup", "noexec"])
            .unwrap()
            .status
            .success()
    );
    assert_clean(&d);
}

#[test]
fn foreground_run_streams_output_and_exit_code() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let run = docker(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo to-stdout; echo to-stderr >&2; exit 3",
        ],
    )
    .unwrap();
    assert_eq!(run.status.code(), Some(3), "{}", err(&run));
    assert_eq!(out(&run), "to-stdout");
    assert_eq!(err(&run), "to-stderr");
    // --rm removed it.
    assert_eq!(out(&docker(&d, &["ps", "-aq"]).unwrap()), "");
    let kept = docker(
        &d,
        &[
            "run",
            "--name",
            "kept",
            "-w",
            "/bin",
            "-u",
            "nobody",
            "busybox",
            "sh",
            "-c",
            "pwd; id -u",
        ],
    )
    .unwrap();
    assert!(kept.status.success(), "{}", err(&kept));
    assert_eq!(out(&kept), "/bin\n65534");
    let status = docker(&d, &["ps", "-a", "--format", "{{.Names}} {{.Status}}"]).unwrap();
    assert!(
        out(&status).starts_with("kept Exited (0)"),
        "{}",
        out(&status)
    );
    assert!(docker(&d, &["rm", "kept"]).unwrap().status.success());
    assert_clean(&d);
}

#[test]
fn foreground_run_of_a_missing_program_fails_instead_of_hanging() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let run = docker(&d, &["run", "--rm", "busybox", "/no/such/program"]).unwrap();
    assert_eq!(run.status.code(), Some(127), "{}", err(&run));
    assert!(
        err(&run).contains("no such file or directory"),
        "{}",
        err(&run)
    );
    // --rm removed the container that never ran.
    assert_eq!(out(&docker(&d, &["ps", "-aq"]).unwrap()), "");
    assert_clean(&d);
}

#[test]
fn containers_run_under_dockers_seccomp_rules() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    // Mode 2 is "filter": the profile is loaded (its rules are unit-tested in berth-containers).
    let confined = docker(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "grep",
            "Seccomp:",
            "/proc/self/status",
        ],
    )
    .unwrap();
    assert!(confined.status.success(), "{}", err(&confined));
    assert_eq!(out(&confined), "Seccomp:\t2");
    let open = docker(
        &d,
        &[
            "run",
            "--rm",
            "--security-opt",
            "seccomp=unconfined",
            "busybox",
            "grep",
            "Seccomp:",
            "/proc/self/status",
        ],
    )
    .unwrap();
    assert_eq!(out(&open), "Seccomp:\t0");
    assert_clean(&d);
}

#[test]
fn restart_rename_pause_top_update_and_prune() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let ok = |args: &[&str]| docker_ok(&d, args);
    let fails = |args: &[&str]| {
        let o = docker(&d, args).unwrap();
        assert!(!o.status.success(), "docker {args:?} succeeded");
        err(&o)
    };
    ok(&[
        "run", "-d", "--name", "web", "-l", "app=web", "busybox", "sleep", "1000",
    ]);
    let _ = docker(
        &d,
        &[
            "run",
            "--name",
            "done1",
            "-l",
            "app=batch",
            "busybox",
            "sh",
            "-c",
            "exit 2",
        ],
    );
    ok(&["create", "--name", "fresh", "busybox", "true"]);
    // ps filters.
    assert_eq!(ok(&["ps", "--format", "{{.Names}}"]), "web");
    assert_eq!(
        ok(&["ps", "--filter", "status=exited", "--format", "{{.Names}}"]),
        "done1"
    );
    assert_eq!(
        ok(&[
            "ps",
            "-a",
            "--filter",
            "label=app=batch",
            "--format",
            "{{.Names}}"
        ]),
        "done1"
    );
    assert_eq!(
        ok(&[
            "ps",
            "-a",
            "--filter",
            "name=^/fr",
            "--format",
            "{{.Names}}"
        ]),
        "fresh"
    );
    assert_eq!(
        ok(&["ps", "-a", "--filter", "exited=2", "--format", "{{.Names}}"]),
        "done1"
    );
    assert_eq!(
        ok(&[
            "ps",
            "-a",
            "--filter",
            "before=done1",
            "--format",
            "{{.Names}}"
        ]),
        "web"
    );
    assert_eq!(
        ok(&[
            "ps",
            "-a",
            "--filter",
            "since=done1",
            "--format",
            "{{.Names}}"
        ]),
        "fresh"
    );
    assert_eq!(
        ok(&["ps", "-a", "-n", "1", "--format", "{{.Names}}"]),
        "fresh"
    );
    assert_eq!(ok(&["ps", "-l", "-q"]).len(), 12);
    assert!(fails(&["ps", "--filter", "status=sleepy"]).contains("invalid filter 'status=sleepy'"));
    assert!(ok(&["ps", "-s", "--format", "{{.Size}}"]).contains("virtual"));
    // top: the container's processes only, with ps options.
    let top = ok(&["top", "web", "-o", "pid,args"]);
    let lines: Vec<&str> = top.lines().collect();
    assert_eq!(lines.len(), 2, "{top}");
    assert!(lines[1].ends_with("sleep 1000"), "{top}");
    // pause / unpause and their conflicts.
    ok(&["pause", "web"]);
    assert_eq!(
        ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Paused}}",
            "web"
        ]),
        "paused true"
    );
    assert!(fails(&["pause", "web"]).contains("is already paused"));
    assert!(fails(&["exec", "web", "true"]).contains("is paused"));
    ok(&["unpause", "web"]);
    assert!(fails(&["unpause", "web"]).contains("is not paused"));
    assert!(fails(&["pause", "fresh"]).contains("is not running"));
    // rename keeps the id; a taken name is a conflict.
    let id = ok(&["inspect", "-f", "{{.Id}}", "web"]);
    ok(&["rename", "web", "web2"]);
    assert_eq!(
        ok(&["inspect", "-f", "{{.Id}} {{.Name}}", "web2"]),
        format!("{id} /web2")
    );
    assert!(fails(&["rename", "web2", "fresh"]).contains("is already in use"));
    assert!(fails(&["inspect", "web"]).contains("No such"));
    // restart gives a new process.
    let pid = ok(&["inspect", "-f", "{{.State.Pid}}", "web2"]);
    assert_eq!(ok(&["restart", "-t", "1", "web2"]), "web2");
    let after = ok(&["inspect", "-f", "{{.State.Pid}} {{.State.Status}}", "web2"]);
    assert!(
        after.ends_with(" running") && !after.starts_with(&format!("{pid} ")),
        "{after}"
    );
    // update changes the live cgroup and the record.
    ok(&["update", "--memory", "64m", "--memory-swap", "128m", "web2"]);
    assert_eq!(
        ok(&["inspect", "-f", "{{.HostConfig.Memory}}", "web2"]),
        "67108864"
    );
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory/berth")
        .join(&id)
        .join("memory.limit_in_bytes");
    let v2 = std::path::Path::new("/sys/fs/cgroup/berth")
        .join(&id)
        .join("memory.max");
    let limit = std::fs::read_to_string(&v1)
        .or_else(|_| std::fs::read_to_string(&v2))
        .unwrap();
    assert_eq!(limit.trim(), "67108864");
    // prune removes the stopped ones only.
    let pruned = ok(&["container", "prune", "-f"]);
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    assert_eq!(ok(&["ps", "-a", "--format", "{{.Names}}"]), "web2");
    ok(&["rm", "-f", "web2"]);
    assert_clean(&d);
}

#[test]
fn logs_follow_filter_by_time_and_rotate() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let ok = |args: &[&str]| docker_ok(&d, args);
    // -f streams lines as they are written and ends when the container does.
    ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "for i in 0 1 2 3 4; do echo tick$i; sleep 0.2; done",
    ]);
    assert_eq!(
        ok(&["logs", "-f", "ticker"]),
        "tick0\ntick1\ntick2\ntick3\ntick4"
    );
    // --since / --until split the output at a time between two lines.
    ok(&[
        "run",
        "-d",
        "--name",
        "timed",
        "busybox",
        "sh",
        "-c",
        "echo early; sleep 2; echo late",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let middle = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    ok(&["wait", "timed"]);
    assert_eq!(ok(&["logs", "--since", &middle, "timed"]), "late");
    assert_eq!(ok(&["logs", "--until", &middle, "timed"]), "early");
    // Rotation keeps max-file files of about max-size each; logs reads across them.
    ok(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    let id = ok(&["inspect", "-f", "{{.Id}}", "chatty"]);
    let dir = d.dir.path().join("data/containers").join(&id);
    let logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("-json.log"))
        .collect();
    assert_eq!(logs.len(), 3, "expected the live log and two rotated ones");
    for l in &logs {
        assert!(l.metadata().unwrap().len() <= 1024);
    }
    let shown = ok(&["logs", "chatty"]);
    assert!(shown.ends_with("line-199"), "{shown}");
    let numbers: Vec<u32> = shown
        .lines()
        .map(|l| l.trim_start_matches("line-").parse().unwrap())
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "lines out of order or missing"
    );
    // The none driver keeps nothing, and says so.
    ok(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "hi",
    ]);
    let o = docker(&d, &["logs", "quiet"]).unwrap();
    assert!(err(&o).contains("does not support reading"), "{}", err(&o));
    let o = docker(&d, &["run", "--log-driver", "syslog", "busybox", "true"]).unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(
        err(&o).contains("no log driver named 'syslog'"),
        "{}",
        err(&o)
    );
    ok(&["rm", "ticker", "timed", "chatty", "quiet"]);
    assert_clean(&d);
}

#[test]
fn containers_outlive_a_berthd_crash() {
    let Some(mut d) = daemon_with_busybox() else {
        return;
    };
    let ok = docker_ok;
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "survivor",
            "busybox",
            "sh",
            "-c",
            "echo before; sleep 1000",
        ],
    );
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "quitter",
            "busybox",
            "sh",
            "-c",
            "sleep 1; exit 7",
        ],
    );
    ok(
        &d,
        &[
            "run", "-d", "--rm", "--name", "tidy", "busybox", "sleep", "1",
        ],
    );
    ok(
        &d,
        &["run", "-d", "--name", "orphan", "busybox", "sleep", "1000"],
    );
    let shim = ok(&d, &["inspect", "-f", "{{.Id}}", "orphan"]);
    d.crash_and_restart();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // The running one still runs, with its log, and takes execs.
    assert_eq!(
        ok(&d, &["inspect", "-f", "{{.State.Status}}", "survivor"]),
        "running"
    );
    assert_eq!(ok(&d, &["logs", "survivor"]), "before");
    assert_eq!(ok(&d, &["exec", "survivor", "echo", "after"]), "after");
    // The one that exited meanwhile has its exit code; the --rm one is gone.
    assert_eq!(
        ok(
            &d,
            &[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                "quitter"
            ]
        ),
        "exited 7"
    );
    assert!(!ok(&d, &["ps", "-a", "--format", "{{.Names}}"]).contains("tidy"));
    // A container whose shim is killed is ended and reported exited.
    let shim_pid = shim_pid_of(&shim).expect("the orphan's shim runs");
    // SAFETY: kill(2) on the shim of a container this test started.
    unsafe { libc::kill(shim_pid, libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        ok(
            &d,
            &[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                "orphan"
            ]
        ),
        "exited 137"
    );
    // A detached --rm container goes away when it exits, without anyone asking.
    let brief = ok(&d, &["run", "-d", "--rm", "busybox", "sleep", "0"]);
    let dir = d.dir.path().join("data/containers").join(&brief);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while dir.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "--rm container was not removed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    ok(&d, &["rm", "-f", "survivor", "quitter", "orphan"]);
    assert_clean(&d);
}

#[test]
fn kill_returns_once_down_and_rm_f_removes_every_one() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let mut ids = Vec::new();
    for _ in 0..12 {
        let o = docker(&d, &["run", "-d", "busybox", "sleep", "1000"]).unwrap();
        assert!(o.status.success(), "{}", err(&o));
        ids.push(out(&o));
    }
    assert!(docker(&d, &["kill", &ids[0]]).unwrap().status.success());
    let state = docker(
        &d,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &ids[0],
        ],
    )
    .unwrap();
    assert_eq!(out(&state), "exited 137");
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    assert!(docker(&d, &args).unwrap().status.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        out(&docker(&d, &["ps", "-aq"]).unwrap()),
        "",
        "a removed container came back"
    );
    assert_clean(&d);
}

#[test]
fn init_read_only_and_privileged() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        docker(&d, &all).unwrap()
    };
    if std::path::Path::new("/usr/bin/tini-static").exists() {
        // tini is pid 1 and runs the command as its child.
        let o = run(&[
            "--init",
            "busybox",
            "sh",
            "-c",
            "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
        ]);
        assert!(o.status.success(), "{}", err(&o));
        let text = out(&o);
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap().trim(),
            "/sbin/docker-init -- sh -c cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$"
        );
        assert_ne!(lines.next().unwrap(), "1");
        let o = run(&["--init", "busybox", "sh", "-c", "exit 7"]);
        assert_eq!(o.status.code(), Some(7));
    }
    let o = run(&["--read-only", "busybox", "sh", "-c", "echo x > /file"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(err(&o).contains("Read-only file system"), "{}", err(&o));
    let o = run(&["busybox", "grep", "CapEff", "/proc/self/status"]);
    assert_eq!(out(&o), "CapEff:\t00000000a80425fb");
    let o = run(&[
        "--privileged",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    let eff = out(&o);
    assert!(
        eff.starts_with("CapEff:\t000001ff") || eff.starts_with("CapEff:\t000000ff"),
        "{eff}"
    );
    assert_clean(&d);
}

#[test]
fn bind_mounts_and_tmpfs() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let host = d.dir.path().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("from-host"), "hello\n").unwrap();
    let bind = format!("{}:/mnt", host.display());
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            &bind,
            "busybox",
            "sh",
            "-c",
            "cat /mnt/from-host; echo back > /mnt/from-ctr",
        ],
    )
    .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "hello");
    assert_eq!(
        std::fs::read_to_string(host.join("from-ctr")).unwrap(),
        "back\n"
    );
    let ro = format!("{}:/mnt:ro", host.display());
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            &ro,
            "busybox",
            "sh",
            "-c",
            "echo x > /mnt/nope",
        ],
    )
    .unwrap();
    assert!(err(&o).contains("Read-only file system"), "{}", err(&o));
    // -v makes a missing host directory; --mount refuses one.
    let made = d.dir.path().join("made-by-v");
    let v = format!("{}:/data", made.display());
    assert!(
        docker(&d, &["run", "--rm", "-v", &v, "busybox", "sleep", "0"])
            .unwrap()
            .status
            .success()
    );
    assert!(made.is_dir());
    let missing = format!(
        "type=bind,source={}/absent,target=/x",
        d.dir.path().display()
    );
    let o = docker(
        &d,
        &["run", "--rm", "--mount", &missing, "busybox", "sleep", "0"],
    )
    .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(
        err(&o).contains("bind source path does not exist"),
        "{}",
        err(&o)
    );
    // A name instead of a path is a named volume (tests/volumes.rs has the rest).
    docker_ok(
        &d,
        &["run", "--rm", "-v", "named:/x", "busybox", "sleep", "0"],
    );
    docker_ok(&d, &["volume", "rm", "named"]);
    // tmpfs, and what inspect shows.
    let o = docker(
        &d,
        &[
            "run",
            "--name",
            "mounts",
            "--tmpfs",
            "/scratch:size=1m",
            "-v",
            &ro,
            "busybox",
            "sh",
            "-c",
            "grep ' /scratch ' /proc/mounts",
        ],
    )
    .unwrap();
    assert!(
        out(&o).starts_with("tmpfs /scratch tmpfs rw,nosuid,nodev,noexec"),
        "{}",
        out(&o)
    );
    let m = docker(
        &d,
        &[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}} {{.RW}};{{end}}",
            "mounts",
        ],
    )
    .unwrap();
    assert_eq!(
        out(&m),
        // dockerd does not list `--tmpfs` (HostConfig.Tmpfs) in Mounts.
        format!("bind {} /mnt false;", host.display())
    );
    assert!(docker(&d, &["rm", "mounts"]).unwrap().status.success());
    assert_clean(&d);
}

#[test]
fn restart_policies_and_back_at_boot() {
    let Some(mut d) = daemon_with_busybox() else {
        return;
    };
    let ok = docker_ok;
    let status = |d: &common::Daemon, name: &str| {
        ok(
            d,
            &["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", name],
        )
    };
    // A container its policy restarts is never seen exited in between: waiting for its
    // exit and removing it without force is refused, as dockerd does.
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "again",
            "--restart",
            "always",
            "busybox",
            "sleep",
            "0",
        ],
    );
    for _ in 0..5 {
        ok(&d, &["wait", "again"]);
        let o = docker(&d, &["rm", "again"]).unwrap();
        assert!(!o.status.success(), "removed between exit and restart");
        assert!(err(&o).contains("stop the container before"), "{}", err(&o));
    }
    ok(&d, &["rm", "-f", "again"]);
    // on-failure:2 runs three times, then stays down.
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "echo run; exit 3",
        ],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while status(&d, "flaky") != "exited 2" {
        assert!(
            std::time::Instant::now() < deadline,
            "flaky: {}",
            status(&d, "flaky")
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(ok(&d, &["logs", "flaky"]), "run\nrun\nrun");
    // A manual stop is never undone by the policy.
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "always",
            "--restart",
            "always",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "keep",
            "--restart",
            "unless-stopped",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "stopped",
            "--restart",
            "unless-stopped",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    ok(
        &d,
        &["run", "-d", "--name", "never", "busybox", "sleep", "1000"],
    );
    ok(&d, &["stop", "-t", "0", "stopped"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(status(&d, "stopped"), "exited 0");
    // A removal while restarting needs force; --rm and --restart do not mix.
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--restart",
            "always",
            "busybox",
            "sleep",
            "0",
        ],
    )
    .unwrap();
    assert!(
        err(&o).contains("cannot specify both --restart and --rm"),
        "{}",
        err(&o)
    );
    let o = docker(
        &d,
        &["run", "--restart", "sometimes", "busybox", "sleep", "0"],
    )
    .unwrap();
    assert!(err(&o).contains("invalid restart policy"), "{}", err(&o));
    // A host reboot, as berthd sees it: berthd, shims and containers all gone at once.
    d.crash_then(|d| {
        for id in d.container_ids() {
            for dir in common::cgroup_dirs(&id) {
                common::kill_listed(&dir.join("cgroup.procs"));
            }
        }
        for pid in common::pids_with_arg_containing(&d.dir.path().to_string_lossy()) {
            // SAFETY: kill(2) on a shim of this test's daemon.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // Until the killed processes are reaped: after a real reboot nothing is left.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while d.container_ids().iter().any(|id| {
            common::cgroup_dirs(id).iter().any(|dir| {
                std::fs::read_to_string(dir.join("cgroup.procs"))
                    .is_ok_and(|p| !p.trim().is_empty())
            })
        }) {
            assert!(
                std::time::Instant::now() < deadline,
                "killed containers linger"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = ok(&d, &["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
        let mut lines: Vec<&str> = now.lines().collect();
        lines.sort();
        if lines
            == [
                "always running",
                "flaky exited",
                "keep running",
                "never exited",
                "stopped exited",
            ]
        {
            break;
        }
        if std::time::Instant::now() >= deadline {
            let why = ok(&d, &["ps", "-a", "--format", "{{.Names}}: {{.Status}}"]);
            let errors = ok(
                &d,
                &[
                    "inspect",
                    "-f",
                    "{{.Name}} {{.State.Error}}",
                    "always",
                    "keep",
                ],
            );
            panic!("after the reboot: {lines:?}\n{why}\n{errors}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let ids = d.container_ids();
    ok(
        &d,
        &["rm", "-f", "flaky", "always", "keep", "stopped", "never"],
    );
    // Containers whose shim died leave no cgroup behind either.
    for id in ids {
        assert!(common::cgroup_dirs(&id).is_empty(), "cgroup of {id} left");
    }
    assert_clean(&d);
}

/// What docker-compose v1 (through docker-py) relies on, as dockerd does it.
#[test]
fn create_and_inspect_follow_dockerd_where_compose_v1_looks() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    // Go's JSON decoding ignores case: docker-py spells CPURealtimeRuntime.
    let (status, body) = d.post_json(
        "/containers/create?name=spelled",
        r#"{"Image": "busybox", "Cmd": ["sleep", "30"],
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 1000000000, "StartPeriod": null},
            "HostConfig": {"CPURealtimeRuntime": 40000, "Tmpfs": {"/scratch": ""}}}"#,
    );
    assert_eq!(status, 201, "{body}");
    let (_, _, inspect) = d.request("GET", "/containers/spelled/json");
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["HostConfig"]["CpuRealtimeRuntime"], 40000);
    assert!(
        v["HostConfig"]["Dns"].is_null(),
        "{}",
        v["HostConfig"]["Dns"]
    );
    assert!(v["Config"]["Healthcheck"].get("StartPeriod").is_none());
    assert_eq!(v["Mounts"], serde_json::json!([]));
    for (field, value, message) in [
        ("Runtime", "foobar", "Unknown runtime specified foobar"),
        (
            "Isolation",
            "foobar",
            "Invalid isolation: \\\"foobar\\\" - linux only supports 'default'",
        ),
    ] {
        let (status, body) = d.post_json(
            "/containers/create",
            &format!(r#"{{"Image": "busybox", "HostConfig": {{"{field}": "{value}"}}}}"#),
        );
        assert_eq!(status, 400, "{body}");
        assert!(body.contains(message), "{body}");
    }
    // Below API 1.45 an image has its ContainerConfig.
    let (_, _, image) = d.request("GET", "/v1.38/images/busybox/json");
    let image: serde_json::Value = serde_json::from_str(&image).unwrap();
    assert!(image["ContainerConfig"].is_object(), "{image}");
    // A restart keeps the end of the previous run until this one ends.
    docker_ok(&d, &["start", "spelled"]);
    docker_ok(&d, &["restart", "-t", "0", "spelled"]);
    let finished = docker_ok(&d, &["inspect", "-f", "{{.State.FinishedAt}}", "spelled"]);
    assert_ne!(finished, "0001-01-01T00:00:00Z");
    docker_ok(&d, &["rm", "-f", "spelled"]);
    assert_clean(&d);
}

/// `--log-opt labels=/env=` attributes are stored with each line and `logs --details`
/// puts them (or, without any, a lone space) before it, as dockerd does.
#[test]
fn logs_details_show_the_attributes_log_opts_pick() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    docker_ok(
        &d,
        &[
            "run",
            "--name",
            "attrs",
            "--log-opt",
            "labels=tier",
            "--log-opt",
            "env=MODE",
            "-l",
            "tier=front",
            "-l",
            "other=x",
            "-e",
            "MODE=prod app",
            "busybox",
            "echo",
            "hi",
        ],
    );
    docker_ok(&d, &["run", "--name", "plain", "busybox", "echo", "hi"]);
    for cli in [CliKind::Docker, CliKind::Berth] {
        let with = common::cli_ok(&d, cli, &["logs", "--details", "attrs"]);
        assert_eq!(with, "MODE=prod+app,tier=front hi", "{cli:?}");
        let o = match cli {
            CliKind::Docker => docker(&d, &["logs", "--details", "plain"]).unwrap(),
            CliKind::Berth => common::berth(&d, &["logs", "--details", "plain"], None),
        };
        assert_eq!(String::from_utf8_lossy(&o.stdout), " hi\n", "{cli:?}");
    }
    docker_ok(&d, &["rm", "attrs", "plain"]);
    assert_clean(&d);
}
