//! Stdin, terminals and exec through the real docker CLI against a private berthd:
//! `run -i` with piped input, `run -it` in a pseudo-terminal (size, typing, detach keys),
//! `exec` with its flags and exit codes.

mod common;

use common::{assert_clean, daemon_with_busybox, docker, docker_with_input, err, in_terminal, out};

#[test]
fn run_i_feeds_stdin_and_closes_it_at_the_end() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let input: Vec<u8> = (0..5000)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let run = docker_with_input(
        &d,
        &[
            "run",
            "-i",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "wc -l; echo after-eof",
        ],
        &input,
    )
    .unwrap();
    assert!(run.status.success(), "{}", err(&run));
    assert_eq!(out(&run), "5000\nafter-eof");
    // Without -i the container's stdin is empty, even when the client has input.
    let run = docker_with_input(&d, &["run", "--rm", "busybox", "cat"], b"ignored\n").unwrap();
    assert!(run.status.success(), "{}", err(&run));
    assert_eq!(out(&run), "");
    assert_clean(&d);
}

#[test]
fn exec_runs_in_the_container_with_its_flags_and_exit_codes() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let run = docker(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "target",
            "-e",
            "FROM_RUN=1",
            "busybox",
            "sleep",
            "100",
        ],
    )
    .unwrap();
    assert!(run.status.success(), "{}", err(&run));
    let e = docker(
        &d,
        &[
            "exec",
            "target",
            "sh",
            "-c",
            "echo $FROM_RUN; cat /proc/1/cmdline | tr '\\0' ' '; exit 3",
        ],
    )
    .unwrap();
    assert_eq!(e.status.code(), Some(3), "{}", err(&e));
    assert_eq!(out(&e), "1\nsleep 100");
    let e = docker(
        &d,
        &[
            "exec",
            "-u",
            "nobody",
            "-w",
            "/bin",
            "-e",
            "FROM_EXEC=2",
            "target",
            "sh",
            "-c",
            "id -u; pwd; echo $FROM_RUN$FROM_EXEC",
        ],
    )
    .unwrap();
    assert!(e.status.success(), "{}", err(&e));
    assert_eq!(out(&e), "65534\n/bin\n12");
    let e = docker_with_input(
        &d,
        &["exec", "-i", "target", "sh", "-c", "cat; echo end"],
        b"piped\n",
    )
    .unwrap();
    assert!(e.status.success(), "{}", err(&e));
    assert_eq!(out(&e), "piped\nend");
    let e = docker(&d, &["exec", "target", "no-such-program"]).unwrap();
    assert_eq!(e.status.code(), Some(127), "{}", out(&e));
    assert!(out(&e).contains("executable file not found"), "{}", out(&e));
    // -d returns at once; the process runs on in the container.
    let e = docker(
        &d,
        &[
            "exec",
            "-d",
            "target",
            "sh",
            "-c",
            "echo detached > /detached; sleep 1",
        ],
    )
    .unwrap();
    assert!(e.status.success(), "{}", err(&e));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let e = docker(&d, &["exec", "target", "cat", "/detached"]).unwrap();
    assert_eq!(out(&e), "detached");
    // Errors: no such container, a stopped one.
    let e = docker(&d, &["exec", "nosuch", "true"]).unwrap();
    assert_ne!(e.status.code(), Some(0));
    assert!(err(&e).contains("No such container: nosuch"), "{}", err(&e));
    assert!(
        docker(&d, &["stop", "-t", "0", "target"])
            .unwrap()
            .status
            .success()
    );
    let e = docker(&d, &["exec", "target", "true"]).unwrap();
    assert!(err(&e).contains("is not running"), "{}", err(&e));
    assert!(docker(&d, &["rm", "target"]).unwrap().status.success());
    assert_clean(&d);
}

/// The docker CLI and the berth CLI, as command names for a shell line.
fn clis() -> Vec<String> {
    let berth = std::path::Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berth");
    vec!["docker".into(), berth.display().to_string()]
}

#[test]
fn run_it_gets_a_terminal_of_the_clients_size_and_takes_typing() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    for cli in clis() {
        let shown = in_terminal(
            &d,
            &format!("stty rows 33 cols 101; {cli} run -it --rm busybox sh -c 'tty; stty size; read line; echo got-$line; exit 4'"),
            &[b"typed\r"],
        )
        .unwrap();
        let screen = String::from_utf8_lossy(&shown.stdout).replace('\r', "");
        assert_eq!(shown.status.code(), Some(4), "{cli}: {screen}");
        assert!(screen.contains("/dev/pts/0\n33 101\n"), "{cli}: {screen}");
        assert!(screen.contains("got-typed"), "{cli}: {screen}");
        let shown = in_terminal(
            &d,
            &format!("stty rows 20 cols 70; {cli} run -d --name tt busybox sleep 100 >/dev/null; {cli} exec -it tt sh -c 'stty size; exit 2'"),
            &[],
        )
        .unwrap();
        let screen = String::from_utf8_lossy(&shown.stdout).replace('\r', "");
        assert_eq!(shown.status.code(), Some(2), "{cli}: {screen}");
        assert!(screen.contains("20 70"), "{cli}: {screen}");
        assert!(docker(&d, &["rm", "-f", "tt"]).unwrap().status.success());
    }
    assert_clean(&d);
}

#[test]
fn ctrl_p_ctrl_q_detaches_and_the_container_runs_on() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    for cli in clis() {
        let shown = in_terminal(
            &d,
            &format!(
                "{cli} run -it --name bg busybox sh -c 'while true; do read x; echo read-$x; done'"
            ),
            &[b"one\r", b"\x10\x11"],
        )
        .unwrap();
        let screen = String::from_utf8_lossy(&shown.stdout).replace('\r', "");
        assert_eq!(shown.status.code(), Some(0), "{cli}: {screen}");
        assert!(screen.contains("read-one"), "{cli}: {screen}");
        let state = docker(&d, &["inspect", "-f", "{{.State.Status}}", "bg"]).unwrap();
        assert_eq!(out(&state), "running", "{cli}");
        // An exec detaches the same way; the docker CLI says so and exits 1 there (its
        // `exec` does not take the escape as a clean end, its `run` and `attach` do).
        let shown = in_terminal(&d, &format!("{cli} exec -it bg sh"), &[b"\x10\x11"]).unwrap();
        let screen = String::from_utf8_lossy(&shown.stdout).replace('\r', "");
        assert!(
            screen.contains("read escape sequence"),
            "{cli} exec: {screen}"
        );
        assert_eq!(shown.status.code(), Some(1), "{cli} exec: {screen}");
        assert!(docker(&d, &["rm", "-f", "bg"]).unwrap().status.success());
    }
    let o = docker(
        &d,
        &["run", "-d", "--name", "held", "busybox", "sleep", "60"],
    )
    .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    // A client that sends the keys itself (not the CLIs: they spot the keys and hang up)
    // detaches an exec in the daemon.
    let created = d.post_json(
        "/containers/held/exec",
        r#"{"Cmd":["sh"],"Tty":true,"AttachStdin":true,"AttachStdout":true,"DetachKeys":"ctrl-x"}"#,
    );
    assert_eq!(created.0, 201, "{}", created.1);
    let exec_id = created.1.split('"').nth(3).unwrap().to_string();
    {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let body = r#"{"Tty":true}"#;
        write!(
            s,
            "POST /exec/{exec_id}/start HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        s.write_all(b"\x18").unwrap();
        let mut rest = Vec::new();
        // The daemon ends the session.
        let _ = s.read_to_end(&mut rest);
    }
    // `--until 0s` reaches the client's current second only.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Each detach is an event, as dockerd reports them: a `detach` whenever an attach
    // client leaves a running container, an `exec_detach` for keys the daemon saw.
    let format = "{{.Action}} {{.Actor.Attributes.name}}{{if .Actor.Attributes.execID}} {{.Actor.Attributes.execID}}{{end}}";
    let events = docker(
        &d,
        &[
            "events",
            "--since",
            "0",
            "--until",
            "0s",
            "--filter",
            "event=detach",
            "--filter",
            "event=exec_detach",
            "--format",
            format,
        ],
    )
    .unwrap();
    let text = out(&events);
    let lines: Vec<&str> = text.lines().collect();
    let n = clis().len();
    assert_eq!(
        lines.iter().filter(|l| **l == "detach bg").count(),
        n,
        "{lines:?}"
    );
    let exec_detach = format!("exec_detach held {exec_id}");
    assert_eq!(
        lines.iter().filter(|l| **l == exec_detach).count(),
        1,
        "{lines:?}"
    );
    assert!(docker(&d, &["rm", "-f", "held"]).unwrap().status.success());
    assert_clean(&d);
}

/// One raw HTTP request with a JSON body; returns everything the daemon sent until it
/// closed the connection.
fn raw_exchange(
    d: &common::Daemon,
    method: &str,
    path: &str,
    body: &str,
    upgrade: bool,
) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let extra = if upgrade {
        "Connection: Upgrade\r\nUpgrade: tcp\r\n"
    } else {
        "Connection: close\r\n"
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn exec_output_is_framed_by_the_start_requests_tty() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    assert!(
        docker(
            &d,
            &["run", "-d", "--name", "framed", "busybox", "sleep", "100"]
        )
        .unwrap()
        .status
        .success()
    );
    // Created with a terminal, started without: Docker's frames (as docker-py expects).
    let created = raw_exchange(
        &d,
        "POST",
        "/containers/framed/exec",
        r#"{"Cmd":["echo","hello"],"Tty":true,"AttachStdout":true,"AttachStderr":true}"#,
        false,
    );
    let text = String::from_utf8_lossy(&created).to_string();
    let id = text
        .split("\"Id\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let out = raw_exchange(
        &d,
        "POST",
        &format!("/exec/{id}/start"),
        r#"{"Tty":false}"#,
        true,
    );
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        out.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let stream = &out[head_end..];
    assert_eq!(stream[0], 1, "not a stdout frame: {stream:?}");
    let len = u32::from_be_bytes(stream[4..8].try_into().unwrap()) as usize;
    assert_eq!(&stream[8..8 + len], b"hello\r\n");
    // docker-py spells it detachKeys: keys are matched without regard to case.
    let created = raw_exchange(
        &d,
        "POST",
        "/containers/framed/exec",
        r#"{"Cmd":["true"],"detachKeys":"ctrl-x"}"#,
        false,
    );
    let text = String::from_utf8_lossy(&created).to_string();
    let id = text
        .split("\"Id\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let inspect = raw_exchange(&d, "GET", &format!("/exec/{id}/json"), "", false);
    assert!(String::from_utf8_lossy(&inspect).contains("\"DetachKeys\":\"ctrl-x\""));
    let (status, _, body) = d.request("GET", "/exec/nosuch/json");
    assert_eq!(status, 404);
    assert!(body.contains("\"No such exec instance: nosuch\""), "{body}");
    assert!(
        docker(&d, &["rm", "-f", "framed"])
            .unwrap()
            .status
            .success()
    );
    assert_clean(&d);
}

#[test]
fn attach_without_upgrade_gets_dockers_legacy_200_hijack() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let created = raw_exchange(
        &d,
        "POST",
        "/containers/create?name=legacy",
        r#"{"Image":"busybox","Cmd":["sh","-c","sleep 0.3; echo from-legacy"]}"#,
        false,
    );
    assert!(String::from_utf8_lossy(&created).contains("201 Created"));
    let socket = d.socket();
    let attach = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        // A request before it on the same connection, as pooled clients do.
        s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).contains("200 OK"));
        s.write_all(b"POST /v1.41/containers/legacy/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = raw_exchange(&d, "POST", "/containers/legacy/start", "", false);
    assert!(String::from_utf8_lossy(&started).contains("204"));
    let out = attach.join().unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with(
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n\r\n"
        ),
        "{text}"
    );
    assert!(text.contains("from-legacy\n"), "{text}");
    assert!(
        docker(&d, &["rm", "-f", "legacy"])
            .unwrap()
            .status
            .success()
    );
    assert_clean(&d);
}
