//! The `berth` CLI against the real docker CLI 28, both driving the same private berthd:
//! every command prints the same output and exits with the same code. Commands that
//! change state run once per CLI on its own container (`dk-…` for docker, `bt-…` for
//! berth) and their outputs are compared with the names swapped.

mod common;

use std::process::Output;

use common::{Daemon, assert_clean, berth, daemon_with_busybox, docker};

/// Output with container ids (64 hex digits) replaced: each CLI has its own container.
fn text(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b).to_string();
    let mut out = String::new();
    let mut run = String::new();
    for ch in s.chars() {
        if ch.is_ascii_hexdigit() && ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            run.push(ch);
            continue;
        }
        out.push_str(if run.len() == 64 { "<id>" } else { &run });
        run.clear();
        out.push(ch);
    }
    out.push_str(if run.len() == 64 { "<id>" } else { &run });
    out
}

/// Runs `args` with both CLIs (`@` stands for the CLI's own container name) and asserts
/// the same stdout, stderr (with the program's name swapped) and exit code.
fn same(d: &Daemon, args: &[&str]) {
    same_with_input(d, args, None)
}

fn same_with_input(d: &Daemon, args: &[&str], input: Option<&[u8]>) {
    // Outputs with ages ("1 second ago") can straddle a second between the two runs:
    // read-only commands get a second try before they count as different.
    let read_only = [
        "images", "ps", "inspect", "logs", "top", "diff", "image", "system",
    ]
    .contains(&args[0]);
    if read_only && try_same(d, args, input, false) {
        return;
    }
    try_same(d, args, input, true);
}

/// Runs both CLIs once; with `strict`, a difference fails the test.
fn try_same(d: &Daemon, args: &[&str], input: Option<&[u8]>, strict: bool) -> bool {
    let for_cli =
        |name: &str| -> Vec<String> { args.iter().map(|a| a.replace('@', name)).collect() };
    let dk_args = for_cli("dk-c");
    let bt_args = for_cli("bt-c");
    let dk_refs: Vec<&str> = dk_args.iter().map(String::as_str).collect();
    let bt_refs: Vec<&str> = bt_args.iter().map(String::as_str).collect();
    let dk = match input {
        Some(i) => common::docker_with_input(d, &dk_refs, i),
        None => docker(d, &dk_refs),
    };
    let Some(dk) = dk else { return true };
    let bt = berth(d, &bt_refs, input);
    let norm_out = |o: &Output| text(&o.stdout).replace("dk-c", "@").replace("bt-c", "@");
    let norm_err = |o: &Output| {
        text(&o.stderr)
            .replace("dk-c", "@")
            .replace("bt-c", "@")
            .replace("docker", "CLI")
            .replace("berth", "CLI")
    };
    if !strict {
        return norm_out(&dk) == norm_out(&bt)
            && norm_err(&dk) == norm_err(&bt)
            && dk.status.code() == bt.status.code();
    }
    assert_eq!(norm_out(&dk), norm_out(&bt), "stdout of {args:?}");
    assert_eq!(norm_err(&dk), norm_err(&bt), "stderr of {args:?}");
    assert_eq!(dk.status.code(), bt.status.code(), "exit code of {args:?}");
    true
}

#[test]
fn berth_and_docker_print_the_same() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    // Images.
    same(&d, &["images"]);
    same(&d, &["images", "-q"]);
    same(
        &d,
        &["images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"],
    );
    same(
        &d,
        &[
            "images",
            "--filter",
            "reference=busy*",
            "--format",
            "table {{.Repository}}\t{{.Tag}}",
        ],
    );
    same(&d, &["tag", "busybox", "@:v1"]);
    same(
        &d,
        &[
            "image",
            "inspect",
            "-f",
            "{{.RepoTags}} {{.Config.Cmd}}",
            "@:v1",
        ],
    );
    same(&d, &["rmi", "@:v1"]);
    same(&d, &["rmi", "nosuch:tag"]);
    // Foreground runs: output, streams, exit codes, errors.
    same(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    same(
        &d,
        &[
            "run",
            "--rm",
            "-e",
            "A=1",
            "-w",
            "/bin",
            "-u",
            "nobody",
            "busybox",
            "sh",
            "-c",
            "echo $A; pwd; id -u",
        ],
    );
    same_with_input(
        &d,
        &["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"],
        Some(b"typed\n"),
    );
    same(
        &d,
        &[
            "run",
            "--rm",
            "--entrypoint",
            "echo",
            "busybox",
            "via",
            "entrypoint",
        ],
    );
    same(&d, &["run", "--rm", "nosuchimage"]);
    same(&d, &["run", "--rm", "busybox", "nosuchcommand"]);
    same(&d, &["run", "--name", "bad name", "busybox", "true"]);
    // A detached container through its lifecycle.
    let dk = docker(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "dk-c",
            "-l",
            "role=web",
            "busybox",
            "sh",
            "-c",
            "echo started; sleep 1000",
        ],
    )
    .unwrap();
    let bt = berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "bt-c",
            "-l",
            "role=web",
            "busybox",
            "sh",
            "-c",
            "echo started; sleep 1000",
        ],
        None,
    );
    assert_eq!(text(&dk.stdout).trim(), "<id>");
    assert_eq!(text(&bt.stdout).trim(), "<id>");
    same(
        &d,
        &[
            "ps",
            "--filter",
            "name=@",
            "--format",
            "{{.Names}} {{.Image}} {{.Command}} {{.Labels}} {{.State}}",
        ],
    );
    same(
        &d,
        &[
            "ps",
            "-a",
            "--filter",
            "name=@",
            "--format",
            "table {{.Names}}\t{{.State}}",
        ],
    );
    same(
        &d,
        &[
            "inspect",
            "-f",
            "{{.Name}} {{.State.Status}} {{.Config.Cmd}} {{.HostConfig.AutoRemove}}",
            "@",
        ],
    );
    same(&d, &["logs", "@"]);
    same(&d, &["logs", "--tail", "1", "@"]);
    same(&d, &["top", "@", "-o", "args"]);
    same(
        &d,
        &["update", "--memory", "64m", "--memory-swap", "128m", "@"],
    );
    same(
        &d,
        &[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}",
            "@",
        ],
    );
    same(&d, &["exec", "@", "sh", "-c", "echo in-exec; exit 5"]);
    same(
        &d,
        &[
            "exec",
            "-e",
            "X=y",
            "-w",
            "/bin",
            "@",
            "sh",
            "-c",
            "echo $X; pwd",
        ],
    );
    same_with_input(&d, &["exec", "-i", "@", "cat"], Some(b"to exec\n"));
    same(&d, &["exec", "@", "nosuchcommand"]);
    same(&d, &["pause", "@"]);
    same(&d, &["pause", "@"]);
    same(
        &d,
        &[
            "ps",
            "--filter",
            "name=@",
            "--format",
            "{{.Names}} {{.State}}",
        ],
    );
    same(&d, &["unpause", "@"]);
    same(&d, &["rm", "@"]);
    same(&d, &["kill", "-s", "USR1", "@"]);
    same(&d, &["rename", "@", "@-renamed"]);
    same(&d, &["restart", "-t", "1", "@-renamed"]);
    same(&d, &["stop", "-t", "1", "@-renamed"]);
    same(&d, &["wait", "@-renamed"]);
    same(&d, &["logs", "-f", "@-renamed"]);
    same(
        &d,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "@-renamed",
        ],
    );
    same(&d, &["start", "@-renamed"]);
    same(
        &d,
        &[
            "exec",
            "@-renamed",
            "sh",
            "-c",
            "mkdir -p /made/sub; echo x > /made/sub/f; echo y >> /etc/passwd; rm /bin/ls",
        ],
    );
    same(&d, &["diff", "@-renamed"]);
    let diff = berth(&d, &["diff", "bt-c-renamed"], None);
    assert_eq!(
        text(&diff.stdout),
        "C /bin\nD /bin/ls\nC /etc\nC /etc/passwd\nA /made\nA /made/sub\nA /made/sub/f\n"
    );
    same(&d, &["rm", "-f", "@-renamed"]);
    same(&d, &["stop", "nosuch"]);
    same(&d, &["inspect", "nosuch"]);
    assert_clean(&d);
}

#[test]
fn network_commands_print_the_same() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    same(&d, &["network", "create", "--label", "k=v", "@-net"]);
    same(&d, &["network", "ls"]);
    same(&d, &["network", "ls", "-q", "-f", "name=c-net"]);
    same(
        &d,
        &[
            "network",
            "ls",
            "--format",
            "{{.Name}}: {{.Labels}}",
            "-f",
            "label=k",
        ],
    );
    same(
        &d,
        &[
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Internal}} {{.Labels}}",
            "@-net",
        ],
    );
    same(&d, &["network", "inspect", "nosuch"]);
    same(&d, &["network", "create", "@-net"]);
    same(&d, &["network", "rm", "nosuch"]);
    same(&d, &["network", "rm", "host"]);
    same(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "@",
            "--network",
            "@-net",
            "--expose",
            "7000",
            "--expose",
            "7001",
            "-p",
            "127.0.0.1::80",
            "busybox",
            "sleep",
            "60",
        ],
    );
    same(
        &d,
        &["ps", "--format", "{{.Names}} {{.Networks}}", "-f", "name=@"],
    );
    same(&d, &["port", "@", "81"]);
    same(&d, &["port", "@", "7000"]);
    same(&d, &["network", "connect", "bridge", "@"]);
    same(&d, &["network", "connect", "bridge", "@"]);
    same(
        &d,
        &["inspect", "-f", "{{len .NetworkSettings.Networks}}", "@"],
    );
    same(&d, &["network", "disconnect", "bridge", "@"]);
    same(&d, &["network", "rm", "@-net"]);
    same(&d, &["rm", "-f", "@"]);
    same(&d, &["network", "rm", "@-net"]);
    same(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ls",
            "/sys/class/net",
        ],
    );
    same(
        &d,
        &["run", "--rm", "-p", "99999:80", "busybox", "sleep", "0"],
    );
    assert_clean(&d);
}

#[test]
fn cp_and_export_print_the_same() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let dir = d.dir.path().to_str().unwrap().to_string();
    same(&d, &["run", "-d", "--name", "@", "busybox", "sleep", "60"]);
    same(&d, &["exec", "@", "sh", "-c", "echo hi > /etc/x"]);
    let out_file = format!("{dir}/@-x");
    same(&d, &["cp", "@:/etc/x", &out_file]);
    for cli in ["dk-c", "bt-c"] {
        let got = std::fs::read_to_string(format!("{dir}/{cli}-x")).unwrap();
        assert_eq!(got, "hi\n", "{cli}");
    }
    same(&d, &["cp", &out_file, "@:/etc/y"]);
    same(&d, &["exec", "@", "cat", "/etc/y"]);
    same(&d, &["cp", "@:/nosuch", &dir]);
    same(&d, &["cp", &format!("{dir}/nosuchlocal"), "@:/etc/"]);
    same(&d, &["export", "-o", &format!("{dir}/@.tar"), "@"]);
    same(
        &d,
        &["commit", "-m", "msg", "-c", "ENV A=b", "@", "@-img:v1"],
    );
    same(
        &d,
        &[
            "image",
            "inspect",
            "-f",
            "{{.Comment}} {{.Config.Env}}",
            "@-img:v1",
        ],
    );
    same(&d, &["commit", "nosuch"]);
    same(&d, &["volume", "create", "@-vol"]);
    same(&d, &["system", "df"]);
    same(&d, &["system", "df", "-v"]);
    same(
        &d,
        &[
            "system",
            "df",
            "--format",
            "{{.Type}}: {{.TotalCount}} {{.Active}}",
        ],
    );
    same(&d, &["rm", "-f", "@"]);
    assert_clean(&d);
}
