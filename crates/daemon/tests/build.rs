//! `build` through both CLIs against a private berthd: each instruction's effect on the
//! image, the cache (hits, a partial bust, after a restart), `.dockerignore`, multi-stage
//! with `--target`, ONBUILD, ADD of a local archive, and errors.

mod common;

use std::path::{Path, PathBuf};

use common::{CliKind, Daemon, berth, cli_ok, err, import_image, out};

/// A daemon with `base` (busybox with the applets the Dockerfiles use).
fn daemon() -> Option<Daemon> {
    let d = Daemon::start();
    import_image(
        &d,
        "base",
        &[
            "sh", "echo", "cat", "ls", "mkdir", "test", "id", "stat", "touch", "rm", "sleep",
        ],
        |_| {},
        &[],
    )?;
    Some(d)
}

/// A context directory under the test's dir with `files` (path, content).
fn context(d: &Daemon, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.dir.path().join(name);
    for (p, content) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

fn build(d: &Daemon, cli: CliKind, dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["build"];
    args.extend(extra);
    args.push(dir.to_str().unwrap());
    cli_ok(d, cli, &args)
}

fn inspect(d: &Daemon, image: &str, template: &str) -> String {
    cli_ok(
        d,
        CliKind::Berth,
        &["image", "inspect", "-f", template, image],
    )
}

#[test]
fn every_instruction_shows_in_the_image() {
    let Some(d) = daemon() else { return };
    let archive_src = d.dir.path().join("archive-src");
    std::fs::create_dir_all(archive_src.join("pkg")).unwrap();
    std::fs::write(archive_src.join("pkg/data.txt"), "unpacked\n").unwrap();
    let dir = context(
        &d,
        "ctx",
        &[
            ("app.sh", "echo app\n"),
            ("conf/a.conf", "a\n"),
            ("conf/b.conf", "b\n"),
            (
                "Dockerfile",
                r#"# syntax=docker/dockerfile:1
ARG BASE=base
FROM ${BASE}
ARG VERSION=1.0
MAINTAINER Berth Builders <builders@example.org>
ENV APP_HOME=/srv/app \
    MODE=prod
LABEL org.example.version=$VERSION "org.example.name"="demo app"
WORKDIR $APP_HOME
COPY --chmod=755 app.sh ./
COPY --chown=65534:65534 conf/*.conf /etc/app/
ADD pkg.tar.gz /opt/
ADD pkg.tar.bz2 pkg.tar.xz /more/
RUN echo "built $VERSION in $MODE" > built.txt && mkdir -p /var/data
RUN <<EOF
echo from a heredoc > /heredoc.txt
EOF
RUN cat <<-NOTE > /note.txt
	indented note
	NOTE
COPY <<CONF /etc/app/generated.conf
mode=$MODE
CONF
SHELL ["/bin/sh", "-c"]
EXPOSE 8080 9090/udp
VOLUME /var/data
USER nobody
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --retries=2 CMD test -f /srv/app/built.txt
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /srv/app/built.txt"]
"#,
            ),
        ],
    );
    std::fs::create_dir_all(archive_src.join("bz")).unwrap();
    std::fs::write(archive_src.join("bz/data.txt"), "from bzip2\n").unwrap();
    std::fs::create_dir_all(archive_src.join("xz")).unwrap();
    std::fs::write(archive_src.join("xz/data.txt"), "from xz\n").unwrap();
    for (flag, name, what) in [
        ("z", "pkg.tar.gz", "pkg"),
        ("j", "pkg.tar.bz2", "bz"),
        ("J", "pkg.tar.xz", "xz"),
    ] {
        let ok = std::process::Command::new("tar")
            .arg(format!("c{flag}f"))
            .arg(dir.join(name))
            .arg("-C")
            .arg(&archive_src)
            .arg(what)
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "tar c{flag}f (bzip2 and xz-utils are installed by scripts/deps.sh)"
        );
    }
    let output = build(
        &d,
        CliKind::Berth,
        &dir,
        &["-t", "demo:1", "--build-arg", "VERSION=2.5"],
    );
    assert!(
        output.contains("Step 1/23 : ARG BASE=base\nStep 2/23 : FROM ${BASE}"),
        "{output}"
    );
    assert!(output.contains("Successfully tagged demo:1"), "{output}");
    let config = |t: &str| inspect(&d, "demo:1", t);
    assert_eq!(
        config("{{.Author}}"),
        "Berth Builders <builders@example.org>"
    );
    assert_eq!(
        config("{{json .Config.Env}}"),
        r#"["APP_HOME=/srv/app","MODE=prod"]"#
    );
    assert_eq!(
        config("{{index .Config.Labels \"org.example.version\"}}"),
        "2.5"
    );
    assert_eq!(
        config("{{index .Config.Labels \"org.example.name\"}}"),
        "demo app"
    );
    assert_eq!(
        config("{{.Config.WorkingDir}} {{.Config.User}} {{.Config.StopSignal}}"),
        "/srv/app nobody SIGTERM"
    );
    assert_eq!(
        config("{{json .Config.ExposedPorts}}"),
        r#"{"8080/tcp":{},"9090/udp":{}}"#
    );
    assert_eq!(config("{{json .Config.Volumes}}"), r#"{"/var/data":{}}"#);
    assert_eq!(
        config("{{json .Config.Entrypoint}} {{json .Config.Cmd}}"),
        r#"["/bin/sh","-c"] ["cat /srv/app/built.txt"]"#
    );
    assert_eq!(
        config("{{json .Config.Healthcheck}}"),
        r#"{"Interval":5000000000,"Retries":2,"Test":["CMD-SHELL","test -f /srv/app/built.txt"]}"#
    );
    // RUN's result, with the build arg; COPY's modes and owners; ADD's extraction.
    let run = |cmd: &str| {
        cli_ok(
            &d,
            CliKind::Berth,
            &["run", "--rm", "--user", "0", "demo:1", cmd],
        )
    };
    assert_eq!(run("cat /srv/app/built.txt"), "built 2.5 in prod");
    assert_eq!(
        run("stat -c '%a %u:%g' /srv/app/app.sh /etc/app/a.conf /etc/app/b.conf"),
        "755 0:0\n644 65534:65534\n644 65534:65534"
    );
    assert_eq!(run("cat /opt/pkg/data.txt"), "unpacked");
    assert_eq!(
        run("cat /more/bz/data.txt /more/xz/data.txt"),
        "from bzip2\nfrom xz"
    );
    assert_eq!(
        run("cat /heredoc.txt /note.txt"),
        "from a heredoc\nindented note"
    );
    assert_eq!(
        cli_ok(&d, CliKind::Berth, &["run", "--rm", "demo:1"]),
        "built 2.5 in prod"
    );
    // The history names each step; intermediate images are hidden from `images`.
    let history = cli_ok(
        &d,
        CliKind::Docker,
        &[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}",
            "demo:1",
        ],
    );
    assert!(
        history.contains("|1 VERSION=2.5 /bin/sh -c echo \"built $VERSION in $MODE\""),
        "{history}"
    );
    assert_eq!(
        cli_ok(
            &d,
            CliKind::Berth,
            &["images", "--format", "{{.Repository}}"]
        ),
        "demo\nbase"
    );
    // Removing the image takes its intermediate images, not its base.
    let removed = cli_ok(&d, CliKind::Berth, &["rmi", "demo:1"]);
    assert!(removed.matches("Deleted:").count() > 5, "{removed}");
    assert_eq!(
        cli_ok(
            &d,
            CliKind::Berth,
            &["images", "-a", "--format", "{{.Repository}}"]
        ),
        "base"
    );
}

#[test]
fn the_cache_is_hit_partly_busted_and_kept_across_restarts() {
    let Some(mut d) = daemon() else { return };
    let dir = context(
        &d,
        "ctx",
        &[
            ("data.txt", "v1\n"),
            (
                "Dockerfile",
                "FROM base\nENV A=1\nRUN echo first > /first\nCOPY data.txt /data.txt\nRUN cat /data.txt > /copy\nCMD [\"cat\", \"/copy\"]\n",
            ),
        ],
    );
    let first = build(&d, CliKind::Docker, &dir, &["-t", "c:1"]);
    assert!(!first.contains("Using cache"), "{first}");
    let again = build(&d, CliKind::Berth, &dir, &["-t", "c:1"]);
    assert_eq!(again.matches("Using cache").count(), 5, "{again}");
    let id = |o: &str| o.lines().last().unwrap().to_string();
    assert_eq!(id(&first), id(&again));
    // A changed file busts its COPY and what follows, not what comes before.
    std::fs::write(dir.join("data.txt"), "v2\n").unwrap();
    let changed = build(&d, CliKind::Berth, &dir, &["-t", "c:2"]);
    let steps: Vec<&str> = changed.split("Step ").skip(1).collect();
    assert!(
        steps[1].contains("Using cache") && steps[2].contains("Using cache"),
        "{changed}"
    );
    assert!(
        !steps[3].contains("Using cache") && !steps[4].contains("Using cache"),
        "{changed}"
    );
    assert_eq!(cli_ok(&d, CliKind::Berth, &["run", "--rm", "c:2"]), "v2");
    // The cache is in the store: a restarted daemon still has it.
    d.crash_and_restart();
    let after = build(&d, CliKind::Berth, &dir, &["-t", "c:2"]);
    assert_eq!(after.matches("Using cache").count(), 5, "{after}");
    let fresh = build(&d, CliKind::Berth, &dir, &["--no-cache", "-t", "c:3"]);
    assert!(!fresh.contains("Using cache"), "{fresh}");
    // --cache-from: only the named images (and what they were built from) are hits.
    let none = build(
        &d,
        CliKind::Berth,
        &dir,
        &["--cache-from", "nosuchtag", "-t", "c:4"],
    );
    assert!(!none.contains("Using cache"), "{none}");
    let named = build(
        &d,
        CliKind::Docker,
        &dir,
        &["--cache-from", "c:4", "-t", "c:5"],
    );
    assert_eq!(named.matches("Using cache").count(), 5, "{named}");
}

#[test]
fn dockerignore_multi_stage_target_and_onbuild() {
    let Some(d) = daemon() else { return };
    let dir = context(
        &d,
        "ctx",
        &[
            (".dockerignore", "secret*\n*.log\n!keep.log\nbuild/\n"),
            ("secret.txt", "no\n"),
            ("a.log", "no\n"),
            ("keep.log", "yes\n"),
            ("build/out.o", "no\n"),
            ("src/main.txt", "main\n"),
            (
                "Dockerfile",
                "FROM base AS compile\nRUN mkdir /out && echo compiled > /out/bin\n\
                 FROM base AS broken\nRUN exit 1\n\
                 FROM base AS final\nCOPY --from=compile /out/bin /app/bin\nCOPY . /ctx/\nCMD [\"cat\", \"/app/bin\"]\n\
                 FROM final AS extra\nRUN echo extra > /extra\n",
            ),
        ],
    );
    // The target needs `compile`, never `broken` (whose RUN fails) nor `extra`.
    let output = build(
        &d,
        CliKind::Berth,
        &dir,
        &["--target", "final", "-t", "multi"],
    );
    assert!(
        !output.contains("RUN exit 1") && !output.contains("echo extra"),
        "{output}"
    );
    assert_eq!(
        cli_ok(&d, CliKind::Berth, &["run", "--rm", "multi"]),
        "compiled"
    );
    let listed = cli_ok(
        &d,
        CliKind::Berth,
        &["run", "--rm", "multi", "ls", "-a", "/ctx", "/ctx/src"],
    );
    assert_eq!(
        listed,
        "/ctx:\n.\n..\n.dockerignore\nDockerfile\nkeep.log\nsrc\n\n/ctx/src:\n.\n..\nmain.txt"
    );
    let o = berth(
        &d,
        &["build", "--target", "nosuch", dir.to_str().unwrap()],
        None,
    );
    assert!(
        err(&o).contains("failed to reach build target nosuch in Dockerfile"),
        "{}",
        err(&o)
    );

    // ONBUILD: stored in the parent, run in the child's build, not inherited further.
    let parent = context(
        &d,
        "parent",
        &[(
            "Dockerfile",
            "FROM base\nONBUILD COPY note.txt /note.txt\nONBUILD RUN echo triggered > /triggered\n",
        )],
    );
    build(&d, CliKind::Berth, &parent, &["-t", "parent"]);
    assert_eq!(
        inspect(&d, "parent", "{{json .Config.OnBuild}}"),
        r#"["COPY note.txt /note.txt","RUN echo triggered > /triggered"]"#
    );
    let child = context(
        &d,
        "child",
        &[
            ("note.txt", "noted\n"),
            (
                "Dockerfile",
                "FROM parent\nCMD [\"cat\", \"/note.txt\", \"/triggered\"]\n",
            ),
        ],
    );
    let output = build(&d, CliKind::Docker, &child, &["-t", "child"]);
    assert!(output.contains("# Executing 2 build triggers"), "{output}");
    assert_eq!(
        cli_ok(&d, CliKind::Berth, &["run", "--rm", "child"]),
        "noted\ntriggered"
    );
    assert_eq!(inspect(&d, "child", "{{json .Config.OnBuild}}"), "null");
}

#[test]
fn build_errors_say_what_failed() {
    let Some(d) = daemon() else { return };
    let failing = context(
        &d,
        "fail",
        &[(
            "Dockerfile",
            "FROM base\nRUN echo about to fail && exit 3\n",
        )],
    );
    for cli in [CliKind::Berth, CliKind::Docker] {
        let o = match cli {
            CliKind::Berth => berth(&d, &["build", failing.to_str().unwrap()], None),
            CliKind::Docker => match common::docker(&d, &["build", failing.to_str().unwrap()]) {
                Some(o) => o,
                None => continue,
            },
        };
        // The step's exit code is the command's, as with docker.
        assert_eq!(o.status.code(), Some(3), "{cli:?}: {}", err(&o));
        assert!(out(&o).contains("about to fail"), "{cli:?}: {}", out(&o));
        assert!(
            err(&o).contains(
                "The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3"
            ),
            "{cli:?}: {}",
            err(&o)
        );
    }
    let cases = [
        ("FROM base\nBOGUS x\n", "unknown instruction: BOGUS"),
        ("RUN echo no base\n", "no build stage in current context"),
        (
            "FROM base\nCOPY missing.txt /\n",
            "file not found in build context",
        ),
        ("FROM base\nCOPY a b c\n", "file not found in build context"),
        ("FROM base\nENV A=${B:?required}\n", "B: required"),
        (
            "FROM base\nRUN --mount=type=cache,target=/c true\n",
            "need BuildKit",
        ),
    ];
    for (i, (df, expected)) in cases.iter().enumerate() {
        let dir = context(&d, &format!("bad{i}"), &[("Dockerfile", df)]);
        let o = berth(&d, &["build", dir.to_str().unwrap()], None);
        assert!(!o.status.success(), "{df}");
        assert!(err(&o).contains(expected), "{df}: {}", err(&o));
    }
    let o = berth(
        &d,
        &[
            "build",
            "-f",
            "Nope",
            d.dir.path().join("bad0").to_str().unwrap(),
        ],
        None,
    );
    assert!(!o.status.success());
    // A Dockerfile on stdin, with no context.
    let o = berth(
        &d,
        &["build", "-t", "stdin", "-"],
        Some(b"FROM base\nCMD [\"echo\", \"from stdin\"]\n"),
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        cli_ok(&d, CliKind::Berth, &["run", "--rm", "stdin"]),
        "from stdin"
    );
}

#[test]
fn independent_stages_build_together_and_report_in_order() {
    let Some(d) = daemon() else { return };
    let dir = context(
        &d,
        "ctx",
        &[(
            "Dockerfile",
            "FROM base AS left\nRUN echo left > /l\n\
             FROM base AS right\nRUN echo right > /r\n\
             FROM base\nCOPY --from=left /l /l\nCOPY --from=right /r /r\nCMD [\"cat\", \"/l\", \"/r\"]\n",
        )],
    );
    let output = build(&d, CliKind::Berth, &dir, &["-t", "both"]);
    let steps: Vec<usize> = output
        .lines()
        .filter_map(|l| l.strip_prefix("Step "))
        .map(|l| l.split('/').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(steps, (1..=8).collect::<Vec<_>>(), "{output}");
    assert_eq!(
        cli_ok(&d, CliKind::Berth, &["run", "--rm", "both"]),
        "left\nright"
    );
}

/// Serves `body` for every GET on 127.0.0.1 (for the rest of the test process); returns
/// the port.
fn serve_once_per_request(body: impl AsRef<[u8]> + Send + 'static) -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        for conn in listener.incoming().flatten() {
            let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let mut conn = conn;
            let body = body.as_ref();
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(body);
        }
    });
    port
}

#[test]
fn add_downloads_urls_without_unpacking_them() {
    let Some(d) = daemon() else { return };
    let port = serve_once_per_request("remote content\n");
    let dir = context(
        &d,
        "ctx",
        &[(
            "Dockerfile",
            &format!(
                "FROM base\nADD http://127.0.0.1:{port}/files/remote.txt /downloads/\nADD http://127.0.0.1:{port}/other.tar.gz /renamed.bin\nCMD [\"cat\", \"/downloads/remote.txt\", \"/renamed.bin\"]\n"
            ),
        )],
    );
    build(&d, CliKind::Berth, &dir, &["-t", "fetched"]);
    assert_eq!(
        cli_ok(&d, CliKind::Berth, &["run", "--rm", "fetched"]),
        "remote content\nremote content"
    );
    assert_eq!(
        cli_ok(
            &d,
            CliKind::Berth,
            &[
                "run",
                "--rm",
                "fetched",
                "stat",
                "-c",
                "%a",
                "/downloads/remote.txt"
            ]
        ),
        "600"
    );
    let bad = context(
        &d,
        "bad",
        &[("Dockerfile", "FROM base\nCOPY http://127.0.0.1:1/x /x\n")],
    );
    let o = berth(&d, &["build", bad.to_str().unwrap()], None);
    assert!(err(&o).contains("source can't be a URL"), "{}", err(&o));
}

/// docker-compose v1 reads an image's ContainerConfig (below API 1.45): the last step's
/// container, as the classic builder records it.
#[test]
fn a_built_image_records_the_container_of_its_last_step() {
    let Some(d) = daemon() else {
        return;
    };
    let dir = context(
        &d,
        "cc",
        &[(
            "Dockerfile",
            "FROM base\nARG build_version\nRUN echo ${build_version}\n",
        )],
    );
    build(
        &d,
        CliKind::Berth,
        &dir,
        &["-t", "cc:1", "--build-arg", "build_version=1"],
    );
    let (status, _, body) = d.request("GET", "/v1.38/images/cc:1/json");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["ContainerConfig"]["Cmd"],
        serde_json::json!([
            "|1",
            "build_version=1",
            "/bin/sh",
            "-c",
            "echo ${build_version}"
        ])
    );
}

/// `git daemon` serving the repositories under a directory, ended (by its pid) on drop.
struct GitServer {
    child: std::process::Child,
    port: u16,
}

impl GitServer {
    fn start(base: &Path) -> GitServer {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("git")
            .arg("daemon")
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg(format!("--base-path={}", base.display()))
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(base)
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        GitServer { child, port }
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git(dir: &Path, args: &[&str]) {
    let o = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {}", err(&o));
}

#[test]
fn a_git_repository_or_a_url_is_a_context() {
    let Some(d) = daemon() else { return };
    let repo = context(
        &d,
        "repos/app",
        &[
            (
                "docker/Dockerfile",
                "FROM base\nCOPY greeting.txt /\nCMD [\"cat\", \"/greeting.txt\"]\n",
            ),
            ("docker/greeting.txt", "first"),
        ],
    );
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    git(&repo, &["tag", "v1"]);
    std::fs::write(repo.join("docker/greeting.txt"), "second").unwrap();
    git(&repo, &["commit", "-q", "-am", "two"]);
    let server = GitServer::start(&d.dir.path().join("repos"));
    let url = format!("git://127.0.0.1:{}/app", server.port);

    // The default branch, then a tag; the context is a directory of the repository.
    build_remote(&d, &format!("{url}#:docker"), "fromgit");
    assert_eq!(
        cli_ok(&d, CliKind::Berth, &["run", "--rm", "fromgit"]),
        "second"
    );
    build_remote(&d, &format!("{url}#v1:docker"), "fromgit:v1");
    assert_eq!(
        cli_ok(&d, CliKind::Berth, &["run", "--rm", "fromgit:v1"]),
        "first"
    );

    // What cannot be fetched is said, and nothing is built; no part of a context is
    // taken for an option of git's, and git reaches no local path.
    let marker = d.dir.path().join("injected");
    let local = d.dir.path().join("repos/app");
    for (remote, says) in [
        (
            format!("{url}#--upload-pack=touch {}", marker.display()),
            "invalid Git reference",
        ),
        (
            // Not a Git URL without the colon: a (missing) local directory.
            format!("git@127.0.0.1{}", local.display()),
            "not found",
        ),
        (
            format!("git@localhost:{}", local.display()),
            "unable to 'git clone'",
        ),
        (
            format!("{url}#:nosuch"),
            "subdirectory \"nosuch\" not found",
        ),
        (format!("{url}#nobranch"), "unable to 'git clone'"),
        (
            format!("git://127.0.0.1:{}/none", server.port),
            "unable to 'git clone'",
        ),
    ] {
        let o = berth(&d, &["build", "-t", "never", &remote], None);
        assert_eq!(o.status.code(), Some(1), "{remote}");
        assert!(err(&o).contains(says), "{remote}: {}", err(&o));
    }
    let o = berth(&d, &["image", "inspect", "never"], None);
    assert!(!o.status.success());
    assert!(!marker.exists());

    // A tar over HTTP is a context; a text file is the Dockerfile alone.
    let tar = d.dir.path().join("ctx.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(repo.join("docker"))
        .arg("-czf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let port = serve_once_per_request(std::fs::read(&tar).unwrap());
    build_remote(
        &d,
        &format!("http://127.0.0.1:{port}/ctx.tar.gz"),
        "fromtar",
    );
    assert_eq!(
        cli_ok(&d, CliKind::Berth, &["run", "--rm", "fromtar"]),
        "second"
    );
    let port = serve_once_per_request("FROM base\nCMD [\"echo\", \"alone\"]\n");
    build_remote(
        &d,
        &format!("http://127.0.0.1:{port}/Dockerfile"),
        "fromfile",
    );
    assert_eq!(
        cli_ok(&d, CliKind::Berth, &["run", "--rm", "fromfile"]),
        "alone"
    );
    drop(server);
    // Nothing of the fetches is left in the daemon's scratch space.
    let scratch: Vec<_> = std::fs::read_dir(d.dir.path().join("data/tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(scratch.is_empty(), "{scratch:?}");
}

fn build_remote(d: &Daemon, remote: &str, tag: &str) {
    let o = berth(d, &["build", "-t", tag, remote], None);
    assert!(o.status.success(), "build {remote}: {}", err(&o));
    assert!(
        out(&o).contains(&format!("Successfully tagged {tag}")),
        "{}",
        out(&o)
    );
}

#[test]
fn a_build_whose_client_goes_away_stops_and_leaves_nothing() {
    use std::io::{BufRead, Write};
    let Some(d) = daemon() else { return };
    let dir = context(
        &d,
        "slow",
        &[("Dockerfile", "FROM base\nRUN sleep 60\nRUN echo never\n")],
    );
    let tar = d.dir.path().join("slow.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let body = std::fs::read(&tar).unwrap();
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    write!(
        s,
        "POST /build?t=canceled HTTP/1.1\r\nHost: berth\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    // "Running in" comes when the step starts, not when it ends 60 s later.
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    while !line.contains("Running in") {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "build output ended"
        );
    }
    // The client goes away in the middle of the RUN.
    drop(reader);
    s.shutdown(std::net::Shutdown::Both).unwrap();
    drop(s);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let left = cli_ok(&d, CliKind::Berth, &["ps", "-aq"]);
        if left.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < until, "still there: {left}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let o = berth(&d, &["image", "inspect", "canceled"], None);
    assert!(!o.status.success());
}
