//! Volumes with real mounts: named volumes shared across containers, `:ro`, anonymous
//! volumes from an image's VOLUME and `rm -v`, `--volumes-from`, population from the
//! image, driver options, the volume commands and their refusals.

mod common;

use common::*;

/// An image with a VOLUME and content under it.
fn image_with_volume(d: &Daemon) {
    let applets = ["sh", "cat", "ls", "echo", "sleep", "grep", "touch"];
    let extra = |root: &std::path::Path| {
        std::fs::create_dir_all(root.join("etc/app")).unwrap();
        std::fs::write(root.join("etc/app/conf"), "from-the-image\n").unwrap();
    };
    import_image(
        d,
        "volimg",
        &applets,
        extra,
        &["VOLUME /vol", r#"CMD ["sh"]"#],
    )
    .unwrap();
}

#[test]
fn a_named_volume_keeps_data_between_containers_and_ro_refuses_writes() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "data:/data",
            "busybox",
            "sh",
            "-c",
            "echo kept > /data/f",
        ],
    );
    assert_eq!(
        docker_ok(
            &d,
            &[
                "run",
                "--rm",
                "-v",
                "data:/data",
                "busybox",
                "cat",
                "/data/f"
            ]
        ),
        "kept"
    );
    assert_eq!(docker_ok(&d, &["volume", "ls", "-q"]), "data");
    let mp = docker_ok(&d, &["volume", "inspect", "-f", "{{.Mountpoint}}", "data"]);
    assert_eq!(
        std::fs::read_to_string(format!("{mp}/f")).unwrap(),
        "kept\n"
    );
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "data:/data:ro",
            "busybox",
            "sh",
            "-c",
            "echo x > /data/g",
        ],
    )
    .unwrap();
    assert!(!o.status.success());
    assert!(err(&o).contains("Read-only file system"), "{}", err(&o));
    // --mount says the same with its own words.
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=data,dst=/data,readonly",
            "busybox",
            "touch",
            "/data/h",
        ],
    )
    .unwrap();
    assert!(!o.status.success());
    let mounts = docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "user",
            "-v",
            "data:/data",
            "busybox",
            "sleep",
            "60",
        ],
    );
    let _ = mounts;
    let shown = docker_ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.Driver}} {{.RW}}{{end}}",
            "user",
        ],
    );
    assert_eq!(shown, "volume data /data local true");
    // In use: refused, and the data stays.
    let o = docker(&d, &["volume", "rm", "data"]).unwrap();
    assert!(!o.status.success());
    assert!(err(&o).contains("volume is in use"), "{}", err(&o));
    docker_ok(&d, &["rm", "-f", "user"]);
    docker_ok(&d, &["volume", "rm", "data"]);
    assert!(!std::path::Path::new(&mp).exists());
    assert_clean(&d);
}

#[test]
fn image_volumes_are_anonymous_filled_from_the_image_and_go_with_rm_v() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    image_with_volume(&d);
    docker_ok(
        &d,
        &[
            "create",
            "--name",
            "va",
            "volimg",
            "sh",
            "-c",
            "echo made > /vol/x",
        ],
    );
    let name = docker_ok(
        &d,
        &["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "va"],
    );
    assert_eq!(name.len(), 64, "an anonymous volume: {name}");
    docker_ok(&d, &["start", "-a", "va"]);
    // --volumes-from sees the same data.
    assert_eq!(
        docker_ok(
            &d,
            &[
                "run",
                "--rm",
                "--volumes-from",
                "va",
                "busybox",
                "cat",
                "/vol/x"
            ]
        ),
        "made"
    );
    let labels = docker_ok(&d, &["volume", "inspect", "-f", "{{json .Labels}}", &name]);
    assert_eq!(labels, r#"{"com.docker.volume.anonymous":""}"#);
    // A new empty named volume gets the image's content at its path; nocopy keeps it empty.
    assert_eq!(
        docker_ok(
            &d,
            &[
                "run",
                "--rm",
                "-v",
                "conf:/etc/app",
                "volimg",
                "cat",
                "/etc/app/conf"
            ]
        ),
        "from-the-image"
    );
    assert_eq!(
        docker_ok(
            &d,
            &[
                "run",
                "--rm",
                "-v",
                "bare:/etc/app:nocopy",
                "volimg",
                "ls",
                "/etc/app"
            ]
        ),
        ""
    );
    // rm -v takes the anonymous volume; named ones stay.
    docker_ok(&d, &["rm", "-v", "va"]);
    let left = docker_ok(&d, &["volume", "ls", "-q"]);
    assert_eq!(left.lines().collect::<Vec<_>>(), ["bare", "conf"]);
    // --rm takes its anonymous volumes too.
    docker_ok(&d, &["run", "--rm", "volimg", "sleep", "0"]);
    assert_eq!(docker_ok(&d, &["volume", "ls", "-q"]).lines().count(), 2);
    // prune: anonymous ones only, unless --all.
    docker_ok(&d, &["create", "--name", "vb", "volimg"]);
    docker_ok(&d, &["rm", "vb"]);
    assert_eq!(docker_ok(&d, &["volume", "ls", "-q"]).lines().count(), 3);
    let pruned = docker_ok(&d, &["volume", "prune", "-f"]);
    assert!(pruned.contains("Deleted Volumes:"), "{pruned}");
    assert_eq!(docker_ok(&d, &["volume", "ls", "-q"]).lines().count(), 2);
    docker_ok(&d, &["volume", "prune", "-af"]);
    assert_eq!(docker_ok(&d, &["volume", "ls", "-q"]), "");
    assert_clean(&d);
}

#[test]
fn driver_options_mount_a_tmpfs_volume() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    docker_ok(
        &d,
        &[
            "volume",
            "create",
            "--opt",
            "type=tmpfs",
            "--opt",
            "device=tmpfs",
            "--opt",
            "o=size=1m",
            "--label",
            "k=v",
            "mem",
        ],
    );
    let fs = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "mem:/m",
            "busybox",
            "sh",
            "-c",
            "grep ' /m ' /proc/mounts",
        ],
    );
    assert!(fs.starts_with("tmpfs /m tmpfs"), "{fs}");
    assert!(fs.contains("size=1024k"), "{fs}");
    // Mounted while used, unmounted when the last user stops (a tmpfs keeps nothing).
    let mp = docker_ok(&d, &["volume", "inspect", "-f", "{{.Mountpoint}}", "mem"]);
    let mounted = |p: &str| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(p))
    };
    assert!(!mounted(&mp), "still mounted after the container stopped");
    docker_ok(
        &d,
        &[
            "run", "-d", "--name", "holder", "-v", "mem:/m", "busybox", "sleep", "60",
        ],
    );
    assert!(mounted(&mp));
    docker_ok(&d, &["rm", "-f", "holder"]);
    assert!(!mounted(&mp));
    assert_eq!(
        docker_ok(&d, &["volume", "ls", "-q", "-f", "label=k=v"]),
        "mem"
    );
    assert_eq!(
        docker_ok(&d, &["volume", "ls", "-q", "-f", "dangling=true"]),
        "mem"
    );
    docker_ok(&d, &["volume", "rm", "mem"]);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(d.dir.path().to_str().unwrap()));
    assert_clean(&d);
}

#[test]
fn bad_volume_requests_are_refused_and_change_nothing() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    for (args, needle) in [
        (vec!["volume", "create", "a/b"], "invalid characters"),
        (vec!["volume", "create", "-d", "nfs-plugin", "x1"], "driver"),
        (
            vec!["volume", "create", "--opt", "type=tmpfs", "x2"],
            "type and device",
        ),
        (
            vec!["volume", "create", "--opt", "colour=red", "x3"],
            "invalid option",
        ),
        (vec!["volume", "rm", "nosuch"], "no such volume"),
        (vec!["volume", "inspect", "nosuch"], "no such volume"),
        (
            vec!["run", "--rm", "-v", "bad name:/x", "busybox", "true"],
            "invalid characters",
        ),
        (
            vec!["run", "--rm", "--volumes-from", "nosuch", "busybox", "true"],
            "nosuch",
        ),
    ] {
        let o = docker(&d, &args).unwrap();
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err(&o).contains(needle), "{args:?}: {}", err(&o));
    }
    assert_eq!(docker_ok(&d, &["volume", "ls", "-q"]), "");
    assert_eq!(docker_ok(&d, &["ps", "-aq"]), "");
    docker_ok(&d, &["volume", "rm", "-f", "nosuch"]);
    assert_clean(&d);
}

#[test]
fn a_volume_subpath_mounts_one_directory_and_never_a_link_out() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "data:/d",
            "busybox",
            "sh",
            "-c",
            "mkdir -p /d/sub && echo in-sub > /d/sub/f && ln -s / /d/escape",
        ],
    );
    let got = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=data,dst=/m,volume-subpath=sub",
            "busybox",
            "cat",
            "/m/f",
        ],
    );
    assert_eq!(got, "in-sub");
    // A link to "/" in the volume means the volume's own root, never the host's.
    let through_link = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=data,dst=/m,volume-subpath=escape",
            "busybox",
            "ls",
            "/m",
        ],
    );
    assert_eq!(
        through_link.split_whitespace().collect::<Vec<_>>(),
        ["escape", "sub"]
    );
    for bad in ["missing", "../x", "sub/f"] {
        let spec = format!("type=volume,src=data,dst=/m,volume-subpath={bad}");
        let o = docker(
            &d,
            &["run", "--rm", "--mount", &spec, "busybox", "ls", "/m"],
        )
        .unwrap();
        assert!(!o.status.success(), "{bad} was mounted: {}", out(&o));
    }
    assert_clean(&d);
}
