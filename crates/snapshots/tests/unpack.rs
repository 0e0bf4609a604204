//! The extractor against crafted archives: every entry type, metadata, whiteouts, and the
//! tricks that make naive extractors write outside their destination.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use berth_snapshots::{Snapshotter, chain_ids, unpack::unpack};

/// Builds an archive entry by entry, writing names raw so `..` and absolute paths survive.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Self {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn entry(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        data: &[u8],
        link: Option<&str>,
    ) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1001);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            let raw = &mut h.as_old_mut().linkname;
            raw[..l.len()].copy_from_slice(l.as_bytes());
        }
        if kind == tar::EntryType::Char {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, tar::EntryType::Regular, 0o644, data, None)
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

#[test]
fn every_entry_type_with_metadata() {
    let dest = tempfile::tempdir().unwrap();
    let mut t = Tar::new();
    t.entry("bin/", tar::EntryType::Directory, 0o755, b"", None)
        .entry(
            "bin/tool",
            tar::EntryType::Regular,
            0o4755,
            b"#!/bin/sh\n",
            None,
        )
        .entry(
            "bin/alias",
            tar::EntryType::Symlink,
            0o777,
            b"",
            Some("tool"),
        )
        .entry(
            "bin/hard",
            tar::EntryType::Link,
            0o755,
            b"",
            Some("bin/tool"),
        )
        .entry("dev/null", tar::EntryType::Char, 0o666, b"", None)
        .entry("run/fifo", tar::EntryType::Fifo, 0o600, b"", None);
    unpack(t.bytes().as_slice(), dest.path()).unwrap();
    let d = dest.path();
    let tool = std::fs::metadata(d.join("bin/tool")).unwrap();
    assert_eq!(
        tool.permissions().mode() & 0o7777,
        0o4755,
        "setuid bit survives chown"
    );
    assert_eq!((tool.uid(), tool.gid()), (1000, 1001));
    assert_eq!(tool.mtime(), 1_600_000_000);
    assert_eq!(
        std::fs::read_link(d.join("bin/alias")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(
        std::fs::metadata(d.join("bin/hard")).unwrap().ino(),
        tool.ino()
    );
    let null = std::fs::symlink_metadata(d.join("dev/null")).unwrap();
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &std::fs::symlink_metadata(d.join("run/fifo"))
            .unwrap()
            .file_type()
    ));
    assert_eq!(
        std::fs::metadata(d.join("bin")).unwrap().mtime(),
        1_600_000_000,
        "directory times set last"
    );
}

#[test]
fn nothing_lands_outside_the_destination() {
    let outer = tempfile::tempdir().unwrap();
    let dest = outer.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let mut t = Tar::new();
    t.file("../../escape-dotdot", b"x")
        .file("/escape-abs", b"x")
        .entry(
            "evil",
            tar::EntryType::Symlink,
            0o777,
            b"",
            Some(outer.path().to_str().unwrap()),
        )
        .file("evil/escape-through-symlink", b"x")
        .entry(
            "up",
            tar::EntryType::Symlink,
            0o777,
            b"",
            Some("../../../../.."),
        )
        .file("up/escape-through-relative-symlink", b"x")
        .entry(
            "hl",
            tar::EntryType::Link,
            0o644,
            b"",
            Some("../../../etc/hostname"),
        );
    // The hard link's target does not exist inside: extraction fails rather than linking out.
    let result = unpack(t.bytes().as_slice(), &dest);
    assert!(result.is_err());
    let outside: Vec<_> = std::fs::read_dir(outer.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        outside,
        vec![std::ffi::OsString::from("dest")],
        "something was written beside dest"
    );
    assert!(dest.join("escape-dotdot").exists());
    assert!(dest.join("escape-abs").exists());
    assert!(dest.join("escape-through-relative-symlink").exists());
    assert!(
        dest.join(outer.path().strip_prefix("/").unwrap())
            .join("escape-through-symlink")
            .exists()
    );
}

#[test]
fn whiteouts_become_overlayfs_whiteouts() {
    let dest = tempfile::tempdir().unwrap();
    let mut t = Tar::new();
    t.entry("dir/", tar::EntryType::Directory, 0o755, b"", None)
        .file("dir/.wh..wh..opq", b"")
        .file(".wh.gone", b"");
    unpack(t.bytes().as_slice(), dest.path()).unwrap();
    let gone = std::fs::symlink_metadata(dest.path().join("gone")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &gone.file_type()
    ));
    assert_eq!(gone.rdev(), 0);
    let opaque = rustix::fs::getxattr(
        dest.path().join("dir"),
        "trusted.overlay.opaque",
        &mut [0u8; 4],
    );
    assert_eq!(opaque.unwrap(), 1);
    assert!(!dest.path().join("dir/.wh..wh..opq").exists());
}

#[test]
fn snapshots_are_all_or_nothing() {
    let root = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(root.path()).unwrap();
    let mut t = Tar::new();
    t.file("etc/hostname", b"berth\n");
    let good = t.bytes();
    let chain = chain_ids(&[format!("sha256:{}", "1".repeat(64))]);
    let dir = s.unpack(&chain[0], good.as_slice()).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("etc/hostname")).unwrap(),
        "berth\n"
    );
    assert!(s.exists(&chain[0]));
    // A truncated archive leaves neither a snapshot nor a temp directory.
    let bad_chain = format!("sha256:{}", "2".repeat(64));
    let mut t = Tar::new();
    t.file("big", &vec![7u8; 10_000]);
    let mut cut = t.bytes();
    cut.truncate(3000);
    assert!(s.unpack(&bad_chain, cut.as_slice()).is_err());
    assert!(!s.exists(&bad_chain));
    let names: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["1".repeat(64)]);
    assert_eq!(s.lowerdirs(&chain), vec![dir]);
}

#[test]
fn threads_unpacking_the_same_layer_all_succeed() {
    let root = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(root.path()).unwrap();
    let mut t = Tar::new();
    for i in 0..300 {
        t.file(&format!("d/f{i}"), b"x");
    }
    let layer = t.bytes();
    let chain = chain_ids(&[format!("sha256:{}", "3".repeat(64))]);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| s.unpack(&chain[0], layer.as_slice())))
            .collect();
        for h in handles {
            let dir = h.join().unwrap().unwrap();
            assert!(dir.join("d/f299").is_file());
        }
    });
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
}
