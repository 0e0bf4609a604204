//! `berth compose` against a private berthd, with the seeds' pattern: a web service
//! built from a local Dockerfile publishing a port, a data service with a named volume
//! and a healthcheck the web service waits for. It comes up, answers on the host port,
//! reaches the data service by name, stays as it is on a second `up`, recreates only a
//! changed service, runs one-off commands, and `down -v` leaves nothing.

mod common;

use std::path::Path;

use common::*;

fn compose(d: &Daemon, dir: &Path, args: &[&str]) -> std::process::Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berth");
    std::process::Command::new("timeout")
        .args(["-s", "KILL", "120"])
        .arg(bin)
        .arg("compose")
        .args(args)
        .current_dir(dir)
        .env("BERTH_HOST", format!("unix://{}", d.socket().display()))
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap()
}

fn compose_ok(d: &Daemon, dir: &Path, args: &[&str]) -> String {
    let o = compose(d, dir, args);
    assert!(
        o.status.success(),
        "compose {args:?}: exit {:?}\nstderr: {}\nstdout: {}",
        o.status.code(),
        err(&o),
        out(&o)
    );
    out(&o)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

fn write_app(dir: &Path, port: u16, greeting: &str) {
    std::fs::create_dir_all(dir.join("web")).unwrap();
    std::fs::write(
        dir.join("web/Dockerfile"),
        "FROM busybox\nRUN mkdir -p /www && echo hello from web > /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            r#"services:
  web:
    build: ./web
    ports:
      - "${{WEB_PORT}}:80"
    environment:
      GREETING: {greeting}
    secrets: [token]
    configs:
      - source: motd
        target: /etc/motd
    depends_on:
      db:
        condition: service_healthy
      init:
        condition: service_completed_successfully
  db:
    image: busybox
    command: sh -c 'echo ready > /data/ready; exec httpd -f -p 5432 -h /data'
    volumes:
      - data:/data
    healthcheck:
      test: test -f /data/ready
      interval: 200ms
  init:
    image: busybox
    command: ["sh", "-c", "echo init done"]
volumes:
  data:
secrets:
  token:
    file: ./token.txt
configs:
  motd:
    file: ./motd.txt
"#
        ),
    )
    .unwrap();
    std::fs::write(dir.join(".env"), format!("WEB_PORT={port}\n")).unwrap();
    std::fs::write(dir.join("token.txt"), "s3cret\n").unwrap();
    std::fs::write(dir.join("motd.txt"), "welcome\n").unwrap();
}

fn ids(d: &Daemon) -> Vec<String> {
    let out = docker_ok(
        d,
        &[
            "ps",
            "-a",
            "--filter",
            "label=com.docker.compose.project=shop",
            "--format",
            "{{.Names}} {{.ID}}",
        ],
    );
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn the_seeds_two_service_app_comes_up_answers_and_goes_away() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let dir = d.dir.path().join("shop");
    let port = free_port();
    write_app(&dir, port, "hi");

    compose_ok(&d, &dir, &["up", "-d"]);
    assert!(http_get(port).contains("hello from web"));
    let by_name = compose_ok(
        &d,
        &dir,
        &["exec", "-T", "web", "wget", "-qO-", "http://db:5432/ready"],
    );
    assert_eq!(by_name, "ready");
    let files = compose_ok(
        &d,
        &dir,
        &[
            "exec",
            "-T",
            "web",
            "cat",
            "/run/secrets/token",
            "/etc/motd",
        ],
    );
    assert_eq!(files, "s3cret\nwelcome");
    let ps = compose_ok(&d, &dir, &["ps"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with("shop-db-1") && l.contains("(healthy)")),
        "{ps}"
    );
    assert!(
        ps.lines()
            .any(|l| l.starts_with("shop-web-1") && l.contains(&format!("{port}->80/tcp"))),
        "{ps}"
    );
    let all = compose_ok(
        &d,
        &dir,
        &["ps", "-a", "--format", "{{.Service}} {{.State}}"],
    );
    assert!(all.contains("init exited"), "{all}");
    let logs = compose_ok(&d, &dir, &["logs", "init"]);
    assert!(logs.ends_with("| init done"), "{logs}");

    // Unchanged: nothing is recreated. Changed: only that service is.
    let before = ids(&d);
    compose_ok(&d, &dir, &["up", "-d"]);
    assert_eq!(ids(&d), before);
    write_app(&dir, port, "hello");
    compose_ok(&d, &dir, &["up", "-d", "web"]);
    let after = ids(&d);
    let same = |name: &str| {
        before.iter().find(|l| l.starts_with(name)) == after.iter().find(|l| l.starts_with(name))
    };
    assert!(
        same("shop-db-1") && !same("shop-web-1"),
        "{before:?} {after:?}"
    );
    assert_eq!(
        compose_ok(
            &d,
            &dir,
            &["exec", "-T", "web", "sh", "-c", "echo $GREETING"]
        ),
        "hello"
    );

    // One-off commands, with their exit codes.
    assert_eq!(
        compose_ok(&d, &dir, &["run", "--rm", "-T", "db", "cat", "/data/ready"]),
        "ready"
    );
    assert_eq!(
        compose(&d, &dir, &["run", "--rm", "-T", "db", "sh", "-c", "exit 3"])
            .status
            .code(),
        Some(3)
    );

    // The docker CLI sees the labels docker compose uses.
    let labels = docker_ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{index .Config.Labels \"com.docker.compose.service\"}} {{index .Config.Labels \"com.docker.compose.container-number\"}} {{index .Config.Labels \"com.docker.compose.oneoff\"}}",
            "shop-web-1",
        ],
    );
    assert_eq!(labels, "web 1 False");

    compose_ok(&d, &dir, &["down", "-v"]);
    assert!(ids(&d).is_empty());
    assert!(!docker_ok(&d, &["network", "ls", "--format", "{{.Name}}"]).contains("shop_default"));
    assert!(!docker_ok(&d, &["volume", "ls", "--format", "{{.Name}}"]).contains("shop_data"));
    assert!(d.user_bridges().is_empty(), "{:?}", d.user_bridges());
    assert_clean(&d);
}

#[test]
fn a_bad_file_is_reported_and_creates_nothing() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let dir = d.dir.path().join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("docker-compose.yml"),
        "services:\n  web:\n    image: busybox\n    ports: [\"80\"]\n    restartt: always\n",
    )
    .unwrap();
    let o = compose(&d, &dir, &["up", "-d"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        err(&o),
        format!(
            "validating {}/docker-compose.yml: services.web additional properties 'restartt' not allowed",
            dir.display()
        )
    );
    assert!(!docker_ok(&d, &["network", "ls", "--format", "{{.Name}}"]).contains("bad_default"));
    assert!(docker_ok(&d, &["ps", "-aq"]).is_empty());
}

#[test]
fn attached_up_prints_prefixed_output_and_returns_the_tests_exit_code() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let dir = d.dir.path().join("ci");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  app:\n    image: busybox\n    command: sleep 60\n  tests:\n    image: busybox\n    command: sh -c 'echo running tests; exit 4'\n    depends_on: [app]\n",
    )
    .unwrap();
    let o = compose(&d, &dir, &["up", "--exit-code-from", "tests"]);
    assert_eq!(o.status.code(), Some(4), "{}", err(&o));
    assert!(
        out(&o).contains("ci-tests-1  | running tests"),
        "{}",
        out(&o)
    );
    let states = docker_ok(
        &d,
        &[
            "ps",
            "-a",
            "--filter",
            "label=com.docker.compose.project=ci",
            "--format",
            "{{.Names}} {{.State}}",
        ],
    );
    assert!(states.contains("ci-app-1 exited"), "{states}");
    compose_ok(&d, &dir, &["down"]);
    assert!(docker_ok(&d, &["ps", "-aq"]).is_empty());
    assert_clean(&d);
}

#[test]
fn secrets_and_configs_from_environment_and_content_are_written_in() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let dir = d.dir.path().join("inject");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        r#"services:
  app:
    image: busybox
    command: sleep 60
    secrets:
      - api_key
      - source: api_key
        target: renamed
        uid: "70"
        mode: 0400
    configs:
      - source: settings
        target: /etc/app/settings.ini
    deploy:
      restart_policy:
        condition: on-failure
        max_attempts: 3
secrets:
  api_key:
    environment: API_KEY
configs:
  settings:
    content: |
      [app]
      name=$${COMPOSE_PROJECT_NAME}
"#,
    )
    .unwrap();
    std::fs::write(dir.join(".env"), "API_KEY=k3y\n").unwrap();
    compose_ok(&d, &dir, &["up", "-d"]);
    // Mode, owner and size, from `ls -ln`.
    let show = |path: &str| {
        let line = compose_ok(&d, &dir, &["exec", "-T", "app", "ls", "-ln", path]);
        let f: Vec<&str> = line.split_whitespace().collect();
        format!("{} {} {}", f[0], f[2], f[4])
    };
    assert_eq!(show("/run/secrets/api_key"), "-r--r--r-- 0 3");
    assert_eq!(show("/run/secrets/renamed"), "-r-------- 70 3");
    let key = compose_ok(
        &d,
        &dir,
        &["exec", "-T", "app", "cat", "/run/secrets/api_key"],
    );
    assert_eq!(key, "k3y");
    let ini = compose_ok(
        &d,
        &dir,
        &["exec", "-T", "app", "cat", "/etc/app/settings.ini"],
    );
    assert_eq!(ini, "[app]\nname=${COMPOSE_PROJECT_NAME}");
    let policy = docker_ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            "inject-app-1",
        ],
    );
    assert_eq!(policy, "on-failure 3");
    compose_ok(&d, &dir, &["down"]);

    // A variable the secret needs is missing: said before anything is made.
    std::fs::write(dir.join(".env"), "").unwrap();
    let o = compose(&d, &dir, &["up", "-d"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        err(&o),
        "environment variable \"API_KEY\" required by secrets.api_key is not set"
    );
    assert!(docker_ok(&d, &["ps", "-aq"]).is_empty());
    assert!(!docker_ok(&d, &["network", "ls", "--format", "{{.Name}}"]).contains("inject_default"));
    assert_clean(&d);
}

#[test]
fn the_other_subcommands_act_on_the_services_containers() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let dir = d.dir.path().join("tools");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n    command: sleep 60\n    stop_grace_period: 1s\n  job:\n    image: busybox\n    command: sh -c 'sleep 1; exit 3'\n",
    )
    .unwrap();
    assert_eq!(compose_ok(&d, &dir, &["version", "--short"]), "2.29.0");

    // `create` makes the containers and starts none.
    compose_ok(&d, &dir, &["create"]);
    let states = docker_ok(
        &d,
        &[
            "ps",
            "-a",
            "--filter",
            "label=com.docker.compose.project=tools",
            "--format",
            "{{.Names}} {{.State}}",
        ],
    );
    assert!(states.contains("tools-web-1 created"), "{states}");
    assert!(states.contains("tools-job-1 created"), "{states}");

    // `events --json` sees the starts that follow.
    let bin = Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berth");
    let mut events = std::process::Command::new(bin)
        .args(["compose", "events", "--json", "web"])
        .current_dir(&dir)
        .env("BERTH_HOST", format!("unix://{}", d.socket().display()))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    compose_ok(&d, &dir, &["scale", "web=2"]);

    // `wait` returns the job's exit code once it stops.
    compose_ok(&d, &dir, &["start", "job"]);
    let o = compose(&d, &dir, &["wait", "job"]);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert!(out(&o).contains("exited with status code 3"), "{}", out(&o));

    // `cp` both ways, with --index for the second replica.
    std::fs::write(dir.join("note.txt"), "copied in").unwrap();
    compose_ok(
        &d,
        &dir,
        &["cp", "--index", "2", "note.txt", "web:/note.txt"],
    );
    let note = compose_ok(
        &d,
        &dir,
        &["exec", "-T", "--index", "2", "web", "cat", "/note.txt"],
    );
    assert_eq!(note, "copied in");
    compose_ok(
        &d,
        &dir,
        &["cp", "--index", "2", "web:/note.txt", "back.txt"],
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("back.txt")).unwrap(),
        "copied in"
    );

    // Without --index, into every replica.
    compose_ok(&d, &dir, &["cp", "note.txt", "web:/all.txt"]);
    for index in ["1", "2"] {
        let got = compose_ok(
            &d,
            &dir,
            &["exec", "-T", "--index", index, "web", "cat", "/all.txt"],
        );
        assert_eq!(got, "copied in", "replica {index}");
    }

    // `commit` and `export` of the same container.
    compose_ok(
        &d,
        &dir,
        &["commit", "--index", "2", "web", "tools-snapshot:1"],
    );
    let noted = docker_ok(&d, &["run", "--rm", "tools-snapshot:1", "cat", "/note.txt"]);
    assert_eq!(noted, "copied in");
    compose_ok(
        &d,
        &dir,
        &["export", "--index", "2", "-o", "web.tar", "web"],
    );
    let listing = std::process::Command::new("tar")
        .arg("-tf")
        .arg(dir.join("web.tar"))
        .output()
        .unwrap();
    assert!(
        out(&listing)
            .lines()
            .any(|l| l == "note.txt" || l == "./note.txt"),
        "{}",
        out(&listing)
    );

    // `stats` lists both replicas.
    let stats = compose_ok(
        &d,
        &dir,
        &["stats", "--no-stream", "--format", "{{.Name}}", "web"],
    );
    let mut names: Vec<&str> = stats.lines().collect();
    names.sort();
    assert_eq!(names, ["tools-web-1", "tools-web-2"]);

    // `wait --down-project`: the first stop (the job's, long done) takes it all down.
    let o = compose(&d, &dir, &["wait", "--down-project", "job", "web"]);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert!(docker_ok(&d, &["ps", "-aq"]).is_empty());
    let _ = events.kill();
    let output = events.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(String, String)> = lines
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["attributes"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("start", "tools-web-1"),
        ("create", "tools-web-2"),
        ("start", "tools-web-2"),
    ] {
        assert!(
            seen.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} not in {seen:?}"
        );
    }
    assert!(lines.iter().all(|e| e["service"] == "web"), "{lines:?}");
    docker_ok(&d, &["rmi", "tools-snapshot:1"]);
    assert_clean(&d);
}

/// Polls `check` for up to `secs` seconds.
fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{what}: not seen within {secs} s");
}

#[test]
fn watch_syncs_execs_and_rebuilds_as_files_change() {
    let d = Daemon::start();
    let applets = ["sh", "sleep", "echo", "cat", "ls", "rm", "test"];
    if import_image(&d, "busybox", &applets, |_| {}, &[r#"CMD ["sh"]"#]).is_none() {
        return;
    }
    let dir = d.dir.path().join("dev");
    std::fs::create_dir_all(dir.join("web/src")).unwrap();
    std::fs::create_dir_all(dir.join("web/conf")).unwrap();
    std::fs::create_dir_all(dir.join("web/src/node_modules")).unwrap();
    std::fs::create_dir_all(dir.join("shared")).unwrap();
    // The context's .dockerignore speaks for paths inside the context only.
    std::fs::write(dir.join("web/.dockerignore"), "**/*.md\n").unwrap();
    let dockerfile = |v: &str| {
        std::fs::write(
            dir.join("web/Dockerfile"),
            format!("FROM busybox\nRUN echo {v} > /version\nCMD [\"sleep\", \"600\"]\n"),
        )
        .unwrap();
    };
    dockerfile("v1");
    std::fs::write(
        dir.join("compose.yaml"),
        r#"services:
  web:
    build: ./web
    develop:
      watch:
        - action: sync
          path: ./web/src
          target: /app
          ignore: ["*.tmp", "node_modules/"]
        - action: sync
          path: ./shared
          target: /shared
        - action: sync+exec
          path: ./web/conf
          target: /etc/web
          exec:
            command: ["sh", "-c", "cat /etc/web/a.conf > /reloaded"]
        - action: rebuild
          path: ./web/Dockerfile
"#,
    )
    .unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berth");
    let mut watch = std::process::Command::new(bin)
        .args(["compose", "watch"])
        .current_dir(&dir)
        .env("BERTH_HOST", format!("unix://{}", d.socket().display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = watch.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut said = Vec::new();
    eventually(60, "Watch enabled", || {
        said.extend(rx.try_iter());
        said.iter().any(|l| l == "Watch enabled")
    });
    let cat = |path: &str| {
        let o = compose(&d, &dir, &["exec", "-T", "web", "cat", path]);
        o.status.success().then(|| out(&o))
    };

    // New files (a new directory too) reach the container; ignored ones do not.
    std::fs::write(dir.join("web/src/a.txt"), "one").unwrap();
    std::fs::create_dir_all(dir.join("web/src/sub")).unwrap();
    std::fs::write(dir.join("web/src/sub/b.txt"), "two").unwrap();
    std::fs::write(dir.join("web/src/skip.tmp"), "no").unwrap();
    std::fs::write(dir.join("web/src/node_modules/dep.js"), "no").unwrap();
    std::fs::write(dir.join("web/src/notes.md"), "no").unwrap();
    std::fs::write(dir.join("shared/notes.md"), "outside the context").unwrap();
    eventually(15, "synced files", || {
        cat("/app/a.txt").as_deref() == Some("one")
            && cat("/app/sub/b.txt").as_deref() == Some("two")
    });
    eventually(15, "synced outside the context", || {
        cat("/shared/notes.md").as_deref() == Some("outside the context")
    });
    for ignored in ["/app/skip.tmp", "/app/node_modules/dep.js", "/app/notes.md"] {
        assert_eq!(cat(ignored), None, "{ignored}");
    }

    // A deleted file goes in the container too.
    std::fs::remove_file(dir.join("web/src/a.txt")).unwrap();
    eventually(15, "deleted file", || cat("/app/a.txt").is_none());

    // sync+exec runs its command after the copy.
    std::fs::write(dir.join("web/conf/a.conf"), "reload me").unwrap();
    eventually(15, "exec after sync", || {
        cat("/reloaded").as_deref() == Some("reload me")
    });

    // A changed Dockerfile rebuilds the image and recreates the container.
    assert_eq!(cat("/version").as_deref(), Some("v1"));
    dockerfile("v2");
    eventually(60, "rebuilt service", || {
        cat("/version").as_deref() == Some("v2")
    });

    let _ = watch.kill();
    let _ = watch.wait();
    said.extend(rx.try_iter());
    assert!(
        said.iter()
            .any(|l| l.starts_with("Syncing service \"web\" after")),
        "{said:?}"
    );
    compose_ok(&d, &dir, &["down", "-t", "0", "--rmi", "local"]);
    assert!(docker_ok(&d, &["ps", "-aq"]).is_empty());
    assert_clean(&d);
}

#[test]
fn post_start_and_pre_stop_hooks_run_in_the_container() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let dir = d.dir.path().join("hooks");
    std::fs::create_dir_all(&dir).unwrap();
    let file = |post_start: &str| {
        std::fs::write(
            dir.join("compose.yaml"),
            format!(
                r#"services:
  app:
    image: busybox
    command: sleep 60
    stop_grace_period: 1s
    volumes: [log:/log]
    post_start:
      - command: {post_start}
        environment: {{WHO: post}}
    pre_stop:
      - command: ["sh", "-c", "echo stopping $$WHO >> /log/hooks"]
        environment: [WHO=pre]
volumes:
  log:
"#
            ),
        )
        .unwrap();
    };
    file(r#"["sh", "-c", "echo started by $$WHO >> /log/hooks"]"#);
    compose_ok(&d, &dir, &["up", "-d"]);
    let log = compose_ok(&d, &dir, &["exec", "-T", "app", "cat", "/log/hooks"]);
    assert_eq!(log, "started by post");
    let log = || {
        docker_ok(
            &d,
            &[
                "run",
                "--rm",
                "-v",
                "hooks_log:/log",
                "busybox",
                "cat",
                "/log/hooks",
            ],
        )
    };
    compose_ok(&d, &dir, &["stop"]);
    assert_eq!(log(), "started by post\nstopping pre");
    // A restart starts it: post_start again.
    compose_ok(&d, &dir, &["restart"]);
    assert_eq!(log(), "started by post\nstopping pre\nstarted by post");

    // A failing hook fails `up`, saying which.
    // A string is split into words (no shell), as docker compose does.
    file("sh -c 'exit 3'");
    let o = compose(&d, &dir, &["up", "-d", "--force-recreate"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        err(&o).contains("post_start hook of hooks-app-1"),
        "{}",
        err(&o)
    );
    // The container it replaced had its pre_stop.
    assert_eq!(
        log(),
        "started by post\nstopping pre\nstarted by post\nstopping pre"
    );
    compose_ok(&d, &dir, &["down", "-v", "-t", "0"]);
    assert!(docker_ok(&d, &["ps", "-aq"]).is_empty());
    assert_clean(&d);
}
