//! Copying an image's content into a new volume: directories, files, symlinks and device
//! nodes with their modes, owners and times. Symlinks are copied as links and never
//! followed, so image content cannot lead the copy out of the image's tree.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{AtFlags, CWD, Mode, Timestamps};
use rustix::time::Timespec;

/// Copies the tree at `src` into the existing directory `dst` (whose own mode and owner
/// become `src`'s). `src` itself is followed (callers pass a directory they resolved
/// safely, such as `/proc/self/fd/N`); nothing below it is. A `src` that is missing or
/// not a directory copies nothing.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let meta = match std::fs::metadata(src) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    copy_dir_contents(src, dst)?;
    copy_attributes(dst, &meta)
}

fn copy_dir_contents(src: &Path, dst: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            std::fs::create_dir(&to)?;
            copy_dir_contents(&from, &to)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if kind.is_file() {
            std::fs::copy(&from, &to)?;
        } else {
            // Device nodes, FIFOs and sockets: made anew with the same type and number.
            rustix::fs::mknodat(
                CWD,
                &to,
                rustix::fs::FileType::from_raw_mode(meta.mode()),
                Mode::from_raw_mode(meta.mode() & 0o7777),
                meta.rdev(),
            )?;
        }
        copy_attributes(&to, &meta)?;
    }
    Ok(())
}

/// Owner, mode and times of `meta` onto `path` (the link itself for symlinks).
fn copy_attributes(path: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    let owner = (
        Some(rustix::fs::Uid::from_raw(meta.uid())),
        Some(rustix::fs::Gid::from_raw(meta.gid())),
    );
    rustix::fs::chownat(CWD, path, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)?;
    if !meta.file_type().is_symlink() {
        // After chown, which clears set-id bits.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    let ts = |s: i64, ns: i64| Timespec {
        tv_sec: s,
        tv_nsec: ns as _,
    };
    let times = Timestamps {
        last_access: ts(meta.atime(), meta.atime_nsec()),
        last_modification: ts(meta.mtime(), meta.mtime_nsec()),
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_a_tree_with_modes_owners_and_links_without_following_them() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/file"), b"data").unwrap();
        std::fs::set_permissions(src.join("sub/file"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("escape")).unwrap();
        rustix::fs::chownat(
            CWD,
            src.join("sub/file"),
            Some(rustix::fs::Uid::from_raw(1234)),
            Some(rustix::fs::Gid::from_raw(4321)),
            AtFlags::empty(),
        )
        .unwrap();
        let dst = t.path().join("dst");
        std::fs::create_dir(&dst).unwrap();
        copy_tree(&src, &dst).unwrap();
        assert_eq!(std::fs::read(dst.join("sub/file")).unwrap(), b"data");
        let m = std::fs::metadata(dst.join("sub/file")).unwrap();
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o640, 1234, 4321));
        assert_eq!(
            std::fs::read_link(dst.join("escape")).unwrap(),
            Path::new("/etc/passwd")
        );
        // A source that is not a directory copies nothing.
        let other = t.path().join("other");
        std::fs::create_dir(&other).unwrap();
        copy_tree(&src.join("sub/file"), &other).unwrap();
        assert_eq!(std::fs::read_dir(&other).unwrap().count(), 0);
    }
}
