//! Files in and out of containers: `cp` both ways (trees, modes, owners, `-a`), into
//! running and stopped containers and into their volumes, `export`, and hostile symlinks
//! that must never make a copy read or write the host, also while the container swaps
//! them.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::*;

/// A busybox image with `ln`, `ls`, `stat` and a marker file only the container has.
fn daemon_with_tools() -> Option<Daemon> {
    let d = Daemon::start();
    let applets = [
        "sh", "sleep", "cat", "ls", "ln", "stat", "mkdir", "echo", "rm", "mv",
    ];
    let extra = |root: &std::path::Path| {
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        std::fs::write(root.join("etc/marker"), "inside\n").unwrap();
    };
    import_image(&d, "tools", &applets, extra, &[r#"CMD ["sh"]"#])?;
    Some(d)
}

#[test]
fn cp_round_trips_a_tree_with_modes_and_owners() {
    let Some(d) = daemon_with_tools() else { return };
    let work = d.dir.path().join("work");
    let tree = work.join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/file"), "payload\n").unwrap();
    std::fs::set_permissions(
        tree.join("sub/file"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::symlink("file", tree.join("sub/link")).unwrap();
    std::os::unix::fs::chown(tree.join("sub/file"), Some(1234), Some(4321)).unwrap();
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "box",
            "-v",
            "kept:/data",
            "tools",
            "sleep",
            "60",
        ],
    );
    let tree_s = tree.to_str().unwrap();
    // Without -a the files belong to the container's root; with -a they keep their owner.
    docker_ok(&d, &["cp", tree_s, "box:/tmp/"]);
    assert_eq!(
        docker_ok(
            &d,
            &[
                "exec",
                "box",
                "stat",
                "-c",
                "%u:%g %a",
                "/tmp/tree/sub/file"
            ]
        ),
        "0:0 640"
    );
    docker_ok(&d, &["cp", "-a", tree_s, "box:/data/"]);
    assert_eq!(
        docker_ok(
            &d,
            &[
                "exec",
                "box",
                "stat",
                "-c",
                "%u:%g %a",
                "/data/tree/sub/file"
            ]
        ),
        "1234:4321 640"
    );
    assert_eq!(
        docker_ok(&d, &["exec", "box", "cat", "/data/tree/sub/link"]),
        "payload"
    );
    // And back out, from the volume.
    let back = work.join("back");
    docker_ok(&d, &["cp", "box:/data/tree", back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(back.join("sub/file")).unwrap(),
        "payload\n"
    );
    let m = std::fs::metadata(back.join("sub/file")).unwrap();
    assert_eq!(m.mode() & 0o777, 0o640);
    assert_eq!(
        std::fs::read_link(back.join("sub/link")).unwrap().to_str(),
        Some("file")
    );
    // A link: kept as a link, or followed with -L (by both CLIs).
    docker_ok(&d, &["exec", "box", "ln", "-s", "marker", "/etc/link"]);
    docker_ok(
        &d,
        &[
            "cp",
            "box:/etc/link",
            work.join("as-link").to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_link(work.join("as-link")).unwrap().to_str(),
        Some("marker")
    );
    docker_ok(
        &d,
        &[
            "cp",
            "-L",
            "box:/etc/link",
            work.join("followed").to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(work.join("followed")).unwrap(),
        "inside\n"
    );
    let o = berth(
        &d,
        &[
            "cp",
            "-L",
            "box:/etc/link",
            work.join("followed-b").to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        std::fs::read_to_string(work.join("followed-b")).unwrap(),
        "inside\n"
    );
    // A single file, and a missing one.
    docker_ok(
        &d,
        &[
            "cp",
            "box:/etc/marker",
            work.join("marker").to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(work.join("marker")).unwrap(),
        "inside\n"
    );
    let o = docker(&d, &["cp", "box:/no/such", work.to_str().unwrap()]).unwrap();
    assert!(!o.status.success());
    assert!(
        err(&o).contains("Could not find the file /no/such"),
        "{}",
        err(&o)
    );
    // Into a stopped container (and its volume), seen when it runs again.
    docker_ok(&d, &["stop", "-t", "0", "box"]);
    docker_ok(
        &d,
        &[
            "cp",
            work.join("marker").to_str().unwrap(),
            "box:/data/copied",
        ],
    );
    let vol = docker_ok(&d, &["volume", "inspect", "-f", "{{.Mountpoint}}", "kept"]);
    assert_eq!(
        std::fs::read_to_string(format!("{vol}/copied")).unwrap(),
        "inside\n"
    );
    let from_stopped = work.join("from-stopped");
    docker_ok(
        &d,
        &[
            "cp",
            "box:/data/tree/sub/file",
            from_stopped.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read_to_string(&from_stopped).unwrap(), "payload\n");
    docker_ok(
        &d,
        &[
            "cp",
            work.join("marker").to_str().unwrap(),
            "box:/etc/copied",
        ],
    );
    docker_ok(&d, &["start", "box"]);
    assert_eq!(
        docker_ok(&d, &["exec", "box", "cat", "/etc/copied"]),
        "inside"
    );
    docker_ok(&d, &["rm", "-f", "box"]);
    assert_clean(&d);
}

#[test]
fn export_holds_the_containers_files_without_its_volumes() {
    let Some(d) = daemon_with_tools() else { return };
    docker_ok(
        &d,
        &[
            "run",
            "--name",
            "ex",
            "-v",
            "v1:/data",
            "tools",
            "sh",
            "-c",
            "echo new > /etc/added; echo vol > /data/f",
        ],
    );
    let out = d.dir.path().join("ex.tar");
    docker_ok(&d, &["export", "-o", out.to_str().unwrap(), "ex"]);
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&out)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&list.stdout).to_string();
    for want in ["etc/added", "etc/marker", "bin/busybox"] {
        assert!(
            names.lines().any(|l| l == want),
            "{want} missing in {names}"
        );
    }
    assert!(!names.lines().any(|l| l == "data/f"), "{names}");
    docker_ok(&d, &["rm", "ex"]);
    assert_clean(&d);
}

#[test]
fn hostile_symlinks_never_reach_the_host_in_either_direction() {
    let Some(d) = daemon_with_tools() else { return };
    // What the host has and the container does not.
    let host_dir = d.dir.path().join("host-only");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("secret"), "host-secret\n").unwrap();
    let host_rel = host_dir
        .to_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    docker_ok(&d, &["run", "-d", "--name", "evil", "tools", "sleep", "60"]);
    docker_ok(
        &d,
        &[
            "exec",
            "evil",
            "sh",
            "-c",
            "ln -s / /root-link; ln -s ../../../../.. /up; mkdir -p /tmp/d; ln -s /etc /tmp/d/etc",
        ],
    );
    let work = d.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    for src in [
        format!("/root-link/{host_rel}/secret"),
        format!("/up/{host_rel}/secret"),
    ] {
        let o = docker(
            &d,
            &[
                "cp",
                &format!("evil:{src}"),
                work.join("got").to_str().unwrap(),
            ],
        )
        .unwrap();
        let got = std::fs::read_to_string(work.join("got")).unwrap_or_default();
        assert_ne!(got, "host-secret\n", "{src} read the host");
        assert!(!o.status.success(), "{src}: {}", out(&o));
    }
    // Through a link the container means for itself: its own /etc, not the host's.
    docker_ok(
        &d,
        &[
            "cp",
            "evil:/up/etc/marker",
            work.join("m").to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read_to_string(work.join("m")).unwrap(), "inside\n");
    // Writing through them lands inside the container or nowhere.
    std::fs::write(work.join("planted"), "x").unwrap();
    let planted = work.join("planted");
    for dst in [
        format!("/root-link/{host_rel}/"),
        format!("/up/{host_rel}/"),
        "/tmp/d/etc/".to_string(),
    ] {
        let _ = docker(
            &d,
            &["cp", planted.to_str().unwrap(), &format!("evil:{dst}")],
        );
        assert!(
            !host_dir.join("planted").exists(),
            "{dst} wrote on the host"
        );
    }
    assert!(!std::path::Path::new("/etc/planted").exists());
    assert_eq!(docker_ok(&d, &["exec", "evil", "cat", "/etc/planted"]), "x");
    docker_ok(&d, &["rm", "-f", "evil"]);
    assert_clean(&d);
}

#[test]
fn a_container_swapping_symlinks_during_copies_cannot_reach_the_host() {
    let Some(d) = daemon_with_tools() else { return };
    let host_dir = d.dir.path().join("host-only");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("secret"), "host-secret\n").unwrap();
    let host_rel = host_dir
        .to_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    // /x flips between the container's root (where the host path does not exist) and
    // /tmp (where the container made the same path, with its own content), as fast as
    // it can; the copies must see one of the container's two views or nothing.
    let script = format!(
        "mkdir -p /tmp/{host_rel}; echo container > /tmp/{host_rel}/secret; \
         while true; do ln -sfn / /x; ln -sfn /tmp /x; done"
    );
    docker_ok(
        &d,
        &["run", "-d", "--name", "racer", "tools", "sh", "-c", &script],
    );
    let work = d.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let planted = work.join("planted");
    std::fs::write(&planted, "x").unwrap();
    for i in 0..40 {
        let dst = work.join(format!("got{i}"));
        let _ = docker(
            &d,
            &[
                "cp",
                &format!("racer:/x/{host_rel}/secret"),
                dst.to_str().unwrap(),
            ],
        );
        let got = std::fs::read_to_string(&dst).unwrap_or_default();
        assert_ne!(got, "host-secret\n", "copy {i} read the host");
        let _ = docker(
            &d,
            &[
                "cp",
                planted.to_str().unwrap(),
                &format!("racer:/x/{host_rel}/"),
            ],
        );
        assert!(
            !host_dir.join("planted").exists(),
            "copy {i} wrote on the host"
        );
    }
    docker_ok(&d, &["rm", "-f", "racer"]);
    assert_clean(&d);
}

#[test]
fn commit_keeps_added_changed_and_deleted_files_and_the_changes() {
    let Some(d) = daemon_with_tools() else { return };
    docker_ok(
        &d,
        &[
            "run",
            "--name",
            "src",
            "tools",
            "sh",
            "-c",
            "echo new > /tmp/added; rm /etc/marker; mkdir /tmp/dir; echo a > /tmp/dir/a",
        ],
    );
    let id = docker_ok(
        &d,
        &[
            "commit",
            "-c",
            r#"CMD ["cat", "/tmp/added"]"#,
            "-c",
            "ENV MODE=committed",
            "-m",
            "my change",
            "-a",
            "me",
            "src",
            "committed:v1",
        ],
    );
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(docker_ok(&d, &["run", "--rm", "committed:v1"]), "new");
    assert_eq!(
        docker_ok(
            &d,
            &["run", "--rm", "committed:v1", "sh", "-c", "echo $MODE"]
        ),
        "committed"
    );
    let etc = docker_ok(&d, &["run", "--rm", "committed:v1", "ls", "/etc"]);
    assert!(!etc.contains("marker"), "a deleted file came back: {etc}");
    let meta = docker_ok(
        &d,
        &[
            "image",
            "inspect",
            "-f",
            "{{.Comment}}|{{.Author}}|{{len .RootFS.Layers}}",
            "committed:v1",
        ],
    );
    assert_eq!(meta, "my change|me|2");
    // A directory replaced in the container hides the image's version after a commit
    // (an opaque directory): only the new content is there.
    docker_ok(
        &d,
        &[
            "run",
            "--name",
            "src2",
            "committed:v1",
            "sh",
            "-c",
            "rm -rf /tmp/dir; mkdir /tmp/dir; echo b > /tmp/dir/b",
        ],
    );
    docker_ok(&d, &["commit", "src2", "committed:v2"]);
    assert_eq!(
        docker_ok(&d, &["run", "--rm", "committed:v2", "ls", "/tmp/dir"]),
        "b"
    );
    // A running container is committed too (paused meanwhile) and keeps running.
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "live",
            "tools",
            "sh",
            "-c",
            "echo live > /tmp/l; sleep 60",
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    docker_ok(&d, &["commit", "live", "committed:live"]);
    assert_eq!(
        docker_ok(&d, &["inspect", "-f", "{{.State.Status}}", "live"]),
        "running"
    );
    assert_eq!(
        docker_ok(&d, &["run", "--rm", "committed:live", "cat", "/tmp/l"]),
        "live"
    );
    let o = docker(&d, &["commit", "src", "Bad:Ref:x"]).unwrap();
    assert!(!o.status.success());
    docker_ok(&d, &["rm", "-f", "src", "src2", "live"]);
    assert_clean(&d);
}
