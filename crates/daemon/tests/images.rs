//! Images through the real docker CLI against a private berthd: import with changes, tag,
//! images with filters and formats, inspect, rmi and its conflicts, bad input.

mod common;

use std::process::Output;

use common::{Daemon, docker};

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

fn rootfs_tar(d: &Daemon) -> std::path::PathBuf {
    common::busybox_tar(d, &["sh"])
}

#[test]
fn import_tag_list_inspect_remove() {
    let d = Daemon::start();
    let tar = rootfs_tar(&d);
    let Some(out) = docker(
        &d,
        &[
            "import",
            "--change",
            r#"CMD ["sh"]"#,
            "--change",
            "ENV A=1",
            tar.to_str().unwrap(),
            "busybox:latest",
        ],
    ) else {
        return;
    };
    assert!(out.status.success(), "{}", err(&out));
    let id = text(&out);
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    assert!(
        docker(&d, &["tag", "busybox", "alpine:3.10"])
            .unwrap()
            .status
            .success()
    );
    let list = docker(
        &d,
        &["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
    )
    .unwrap();
    let mut lines: Vec<String> = text(&list).lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            format!("alpine:3.10 {}", &id[7..19]),
            format!("busybox:latest {}", &id[7..19])
        ]
    );

    let q = docker(&d, &["images", "-q"]).unwrap();
    assert_eq!(
        text(&q).lines().collect::<Vec<_>>(),
        vec![&id[7..19], &id[7..19]]
    );

    let inspect = docker(
        &d,
        &[
            "image",
            "inspect",
            "--format",
            "{{json .Config.Cmd}} {{json .Config.Env}} {{.Os}}",
            "alpine:3.10",
        ],
    )
    .unwrap();
    assert_eq!(text(&inspect), r#"["sh"] ["A=1"] linux"#);

    let by_id = docker(&d, &["rmi", &id[7..19]]).unwrap();
    assert!(!by_id.status.success());
    assert!(err(&by_id).contains("must be forced"), "{}", err(&by_id));

    let untag = docker(&d, &["rmi", "alpine:3.10"]).unwrap();
    assert_eq!(text(&untag), "Untagged: alpine:3.10");
    let gone = docker(&d, &["rmi", "busybox"]).unwrap();
    assert_eq!(
        text(&gone),
        format!("Untagged: busybox:latest\nDeleted: {id}")
    );
    assert_eq!(text(&docker(&d, &["images", "-q"]).unwrap()), "");
    let info = docker(&d, &["info", "--format", "{{.Images}}"]).unwrap();
    assert_eq!(text(&info), "0");
}

#[test]
fn filters_and_stdin_import() {
    let d = Daemon::start();
    let tar = rootfs_tar(&d);
    let gz = std::process::Command::new("gzip")
        .arg("-c")
        .arg(&tar)
        .output()
        .unwrap()
        .stdout;
    let Some(_) = docker(&d, &["version"]) else {
        return;
    };
    let mut child = std::process::Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .args(["import", "--change", "LABEL tier=web", "-", "web:1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &gz).unwrap();
    drop(child.stdin.take());
    assert!(child.wait_with_output().unwrap().status.success());
    assert!(
        docker(&d, &["import", tar.to_str().unwrap(), "db:1"])
            .unwrap()
            .status
            .success()
    );
    // Re-importing under the same tag leaves the old image dangling.
    assert!(
        docker(&d, &["import", tar.to_str().unwrap(), "db:1"])
            .unwrap()
            .status
            .success()
    );

    let web = docker(
        &d,
        &[
            "images",
            "--filter",
            "label=tier=web",
            "--format",
            "{{.Repository}}",
        ],
    )
    .unwrap();
    assert_eq!(text(&web), "web");
    let refs = docker(
        &d,
        &[
            "images",
            "--filter",
            "reference=d*",
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ],
    )
    .unwrap();
    assert_eq!(text(&refs), "db:1");
    let dangling = docker(
        &d,
        &[
            "images",
            "--filter",
            "dangling=true",
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ],
    )
    .unwrap();
    assert_eq!(text(&dangling), "<none>:<none>");
    let bad = docker(&d, &["images", "--filter", "color=red"]).unwrap();
    assert!(!bad.status.success());
    assert!(
        err(&bad).contains("invalid filter 'color'"),
        "{}",
        err(&bad)
    );
}

#[test]
fn bad_input_is_refused_with_one_line() {
    let d = Daemon::start();
    let junk = d.dir.path().join("junk.tar");
    std::fs::write(
        &junk,
        "not a tar archive, just text that is long enough ".repeat(20),
    )
    .unwrap();
    let Some(out) = docker(&d, &["import", junk.to_str().unwrap(), "junk"]) else {
        return;
    };
    assert!(!out.status.success());
    assert!(err(&out).contains("not a tar file"), "{}", err(&out));
    let tar = rootfs_tar(&d);
    let out = docker(
        &d,
        &["import", "--change", "RUN make", tar.to_str().unwrap(), "x"],
    )
    .unwrap();
    assert!(!out.status.success());
    assert!(
        err(&out).contains("RUN is not a valid change command"),
        "{}",
        err(&out)
    );
    let out = docker(&d, &["image", "inspect", "nosuch"]).unwrap();
    assert!(!out.status.success());
    assert!(err(&out).contains("No such image: nosuch"), "{}", err(&out));
    assert_eq!(text(&docker(&d, &["images", "-q"]).unwrap()), "");
    let blobs = std::fs::read_dir(d.dir.path().join("data/content/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0, "refused imports stored blobs");
}

#[test]
fn an_image_containers_use_is_not_removed_without_force_nor_while_running() {
    let Some(d) = common::daemon_with_busybox() else {
        return;
    };
    common::docker_ok(
        &d,
        &["run", "-d", "--name", "user", "busybox", "sleep", "60"],
    );
    let o = common::docker(&d, &["rmi", "busybox"]).unwrap();
    assert!(!o.status.success());
    assert!(
        common::err(&o).contains("(must force) - container"),
        "{}",
        common::err(&o)
    );
    let o = common::docker(&d, &["rmi", "-f", "busybox"]).unwrap();
    assert!(
        common::err(&o).contains("(cannot be forced) - image is being used by running container"),
        "{}",
        common::err(&o)
    );
    // One of two tags can go: the image stays for its other name.
    common::docker_ok(&d, &["tag", "busybox", "busybox:second"]);
    common::docker_ok(&d, &["rmi", "busybox:second"]);
    common::docker_ok(&d, &["stop", "-t", "0", "user"]);
    let o = common::docker(&d, &["rmi", "busybox"]).unwrap();
    assert!(
        !o.status.success(),
        "removed an image a stopped container uses"
    );
    common::docker_ok(&d, &["rm", "user"]);
    common::docker_ok(&d, &["rmi", "busybox"]);
    common::assert_clean(&d);
}

#[test]
fn image_and_system_prune_take_only_what_nothing_uses() {
    let Some(d) = common::daemon_with_busybox() else {
        return;
    };
    // The rootfs tar daemon_with_busybox imported.
    let tar = d.dir.path().join("rootfs.tar");
    let tar = tar.to_str().unwrap();
    let dangling = common::docker_ok(&d, &["import", tar]);
    common::docker_ok(&d, &["import", tar, "kept:v1"]);
    common::docker_ok(&d, &["import", tar, "used:v1"]);
    common::docker_ok(&d, &["create", "--name", "user", "used:v1", "sh"]);
    let out = common::docker_ok(&d, &["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {dangling}")), "{out}");
    let left = common::docker_ok(&d, &["images", "--format", "{{.Repository}}"]);
    assert_eq!(left.lines().count(), 3, "{left}");
    // -a: every image no container uses; the used one stays.
    common::docker_ok(&d, &["image", "prune", "-af"]);
    let left = common::docker_ok(&d, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(left, "used:v1");
    // system prune: the stopped container, then its image with -a.
    common::docker_ok(&d, &["network", "create", "spare"]);
    let out = common::docker_ok(&d, &["system", "prune", "-af"]);
    assert!(
        out.contains("Deleted Containers:")
            && out.contains("spare")
            && out.contains("untagged: used:v1"),
        "{out}"
    );
    assert_eq!(common::docker_ok(&d, &["images", "-q"]), "");
    common::assert_clean(&d);
}
