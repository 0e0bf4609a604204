//! The image store end to end on real files: import (plain and gzip), list, tag, inspect,
//! remove with Docker's conflict rules, and bad input that stores nothing.

use std::process::Command;
use std::sync::Arc;

use berth_content::Store;
use berth_images::{Filters, ImageStore, ImportOptions};
use berth_metadata::Db;

struct Env {
    dir: tempfile::TempDir,
    images: ImageStore,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let content = Store::open(dir.path().join("content")).unwrap();
    let db = Arc::new(Db::open(&dir.path().join("metadata.redb")).unwrap());
    Env {
        images: ImageStore::new(content, db),
        dir,
    }
}

fn rootfs_tar(env: &Env, marker: &str, gzip: bool) -> Vec<u8> {
    let root = env.dir.path().join(format!("rootfs-{marker}"));
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(root.join("marker"), marker).unwrap();
    let mut cmd = Command::new("tar");
    cmd.arg("-C").arg(&root);
    if gzip {
        cmd.arg("-z");
    }
    let out = cmd.args(["-cf", "-", "."]).output().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn import(
    env: &Env,
    tar: &[u8],
    reference: Option<&str>,
    changes: &[&str],
) -> berth_images::Result<String> {
    let opts = ImportOptions {
        reference: reference.map(str::to_string),
        changes: changes.iter().map(|s| s.to_string()).collect(),
        message: None,
        source: "-".into(),
    };
    env.images.import(tar, &opts)
}

fn blobs(env: &Env) -> usize {
    std::fs::read_dir(env.dir.path().join("content/blobs/sha256"))
        .unwrap()
        .count()
}

#[test]
fn import_list_inspect() {
    let e = env();
    let tar = rootfs_tar(&e, "one", true);
    let id = import(&e, &tar, Some("busybox"), &[r#"CMD ["sh"]"#, "ENV A=1"]).unwrap();
    assert!(id.starts_with("sha256:"));
    let list = e.images.list(&Filters::default(), false).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(list[0]["Id"], id.as_str());
    let inspect = e.images.inspect("busybox:latest").unwrap();
    assert_eq!(inspect["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(inspect["Config"]["Env"], serde_json::json!(["A=1"]));
    assert_eq!(inspect["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    // By short id and by full id too.
    assert_eq!(e.images.inspect(&id[7..19]).unwrap()["Id"], id.as_str());
    assert_eq!(e.images.inspect(&id).unwrap()["Id"], id.as_str());
}

#[test]
fn tag_and_remove_follow_dockers_rules() {
    let e = env();
    let tar = rootfs_tar(&e, "two", false);
    let id = import(&e, &tar, Some("a:1"), &[]).unwrap();
    e.images.tag("a:1", "b").unwrap();
    let short = &id[7..19];
    let err = e.images.remove(short, false).unwrap_err().to_string();
    assert!(
        err.contains("must be forced") && err.contains(short),
        "{err}"
    );
    let report = e.images.remove("b", false).unwrap();
    assert_eq!(report, vec![serde_json::json!({"Untagged": "b:latest"})]);
    let report = e.images.remove("a:1", false).unwrap();
    assert_eq!(report[0], serde_json::json!({"Untagged": "a:1"}));
    assert_eq!(report[1], serde_json::json!({"Deleted": id}));
    assert!(
        e.images
            .list(&Filters::default(), false)
            .unwrap()
            .is_empty()
    );
    assert_eq!(blobs(&e), 0, "config and layer blobs are freed");
    assert!(
        e.images
            .inspect("a:1")
            .unwrap_err()
            .to_string()
            .starts_with("No such image")
    );
}

#[test]
fn dangling_and_reference_filters() {
    let e = env();
    let first = import(&e, &rootfs_tar(&e, "x", false), Some("app"), &[]).unwrap();
    // Retagging app onto a new image leaves the first one dangling.
    import(
        &e,
        &rootfs_tar(&e, "y", false),
        Some("app"),
        &["LABEL tier=web"],
    )
    .unwrap();
    let dangling = e
        .images
        .list(
            &Filters::parse(r#"{"dangling":["true"]}"#, &["dangling"]).unwrap(),
            false,
        )
        .unwrap();
    assert_eq!(dangling.len(), 1);
    assert_eq!(dangling[0]["Id"], first.as_str());
    let web = e
        .images
        .list(
            &Filters::parse(r#"{"label":["tier=web"]}"#, &["label"]).unwrap(),
            false,
        )
        .unwrap();
    assert_eq!(web.len(), 1);
    let refs = e
        .images
        .list(
            &Filters::parse(r#"{"reference":["ap*"]}"#, &["reference"]).unwrap(),
            false,
        )
        .unwrap();
    assert_eq!(refs.len(), 1);
}

#[test]
fn bad_input_stores_nothing() {
    let e = env();
    assert!(import(&e, b"this is not a tar archive at all", Some("x"), &[]).is_err());
    assert!(import(&e, &rootfs_tar(&e, "z", false), Some("Bad Name"), &[]).is_err());
    assert!(import(&e, &rootfs_tar(&e, "z", false), Some("ok"), &["RUN make"]).is_err());
    assert_eq!(blobs(&e), 0);
    assert!(
        e.images
            .list(&Filters::default(), false)
            .unwrap()
            .is_empty()
    );
}
