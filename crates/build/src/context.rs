//! What COPY and ADD take from the build context: sources found by path or wildcard
//! (never outside the context), a checksum of their content for the cache, and the tar
//! that places them at the destination with the asked-for owner and mode.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// `a/../b/./c` → `b/c`, never above the root.
pub(crate) fn clean(p: &str) -> PathBuf {
    berth_snapshots::unpack::clean(Path::new(p))
}

fn has_wildcards(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

/// Go's `filepath.Match` for one path component: `*`, `?`, `[a-z]`, `[^x]`, `\` escapes.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    fn rec(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| rec(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && rec(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().skip(1).position(|c| *c == ']').map(|i| i + 1) else {
                    return false;
                };
                let Some(&c) = n.first() else { return false };
                let set = &p[1..end];
                let (negate, set) = match set.first() {
                    Some('^' | '!') => (true, &set[1..]),
                    _ => (false, set),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != negate && rec(&p[end + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && rec(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && rec(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    rec(&p, &n)
}

/// The context paths (relative) a COPY source names; a missing one is an error.
pub(crate) fn find_sources(root: &Path, src: &str) -> Result<Vec<PathBuf>> {
    let rel = clean(src);
    let not_found = || {
        Error::User(format!(
            "file not found in build context or excluded by .dockerignore: stat {src}: file does not exist"
        ))
    };
    if !has_wildcards(src) {
        return if inside(root, &rel) {
            Ok(vec![rel])
        } else {
            Err(not_found())
        };
    }
    let mut found = vec![PathBuf::new()];
    for part in rel.components() {
        let part = part.as_os_str().to_string_lossy().into_owned();
        let mut next = Vec::new();
        for dir in &found {
            if !has_wildcards(&part) {
                next.push(dir.join(&part));
                continue;
            }
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| glob_match(&part, n))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        found = next;
    }
    found.retain(|p| inside(root, p));
    if found.is_empty() {
        return Err(not_found());
    }
    Ok(found)
}

/// Whether `rel` exists and resolves (symlinks followed) inside `root`.
fn inside(root: &Path, rel: &Path) -> bool {
    let (Ok(root), Ok(full)) = (root.canonicalize(), root.join(rel).canonicalize()) else {
        return false;
    };
    full.starts_with(root)
}

/// One thing to put in the image: a context path and where it lands.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    /// Context-relative source.
    pub src: PathBuf,
    /// Absolute destination in the image (file, or directory whose content it gets).
    pub dest: String,
}

/// Owner and mode COPY/ADD give what they copy.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Attrs {
    pub uid: u32,
    pub gid: u32,
    pub mode: Option<u32>,
}

/// Hashes the content and shape of what `placements` copy (not times): the cache key
/// part of a COPY. `known` has the digests of context files hashed as they arrived;
/// others are read.
pub(crate) fn checksum(
    root: &Path,
    placements: &[Placement],
    known: &HashMap<PathBuf, String>,
) -> Result<String> {
    let mut h = berth_content::Hasher::new();
    for p in placements {
        h.update(p.dest.as_bytes());
        h.update(&[0]);
        walk(root, &p.src, &mut |rel, meta, path| {
            h.update(rel.to_string_lossy().as_bytes());
            h.update(&[0]);
            h.update(&std::os::unix::fs::PermissionsExt::mode(&meta.permissions()).to_le_bytes());
            if meta.file_type().is_symlink() {
                h.update(std::fs::read_link(path)?.to_string_lossy().as_bytes());
            } else if meta.is_file() {
                h.update(&meta.len().to_le_bytes());
                let digest = match path.strip_prefix(root).ok().and_then(|r| known.get(r)) {
                    Some(d) => d.clone(),
                    None => file_digest(path)?,
                };
                h.update(digest.as_bytes());
            }
            Ok(())
        })?;
    }
    Ok(h.digest().hex().to_string())
}

/// A context file's digest for the cache (BLAKE3: the cached rebuild hashes every copied
/// byte, and BLAKE3 does it several times faster than SHA-256 here).
#[derive(Default)]
pub struct FileHasher(blake3::Hasher);

impl FileHasher {
    /// A hasher that has seen nothing.
    pub fn new() -> Self {
        FileHasher(blake3::Hasher::new())
    }

    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest, in hex.
    pub fn hex(&self) -> String {
        self.0.finalize().to_hex().to_string()
    }
}

/// The digest of a file's content, as [`FileHasher`] makes it.
pub(crate) fn file_digest(path: &Path) -> io::Result<String> {
    let mut h = FileHasher::new();
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.hex());
        }
        h.update(&buf[..n]);
    }
}

/// Calls `f(relative path, metadata, full path)` for `src` and, if a directory, what is
/// under it (not following symlinks), in sorted order.
fn walk(
    root: &Path,
    src: &Path,
    f: &mut dyn FnMut(&Path, &std::fs::Metadata, &Path) -> io::Result<()>,
) -> Result<()> {
    let full = root.join(src);
    // The top is followed if it is a link (COPY link/ copies what it points to).
    let meta =
        std::fs::metadata(&full).map_err(|e| Error::User(format!("{}: {e}", src.display())))?;
    f(Path::new(""), &meta, &full).map_err(|e| Error::User(format!("{}: {e}", src.display())))?;
    if meta.is_dir() {
        walk_dir(&full, Path::new(""), f)?;
    }
    Ok(())
}

fn walk_dir(
    dir: &Path,
    rel: &Path,
    f: &mut dyn FnMut(&Path, &std::fs::Metadata, &Path) -> io::Result<()>,
) -> Result<()> {
    let io = |e: io::Error| Error::User(format!("{}: {e}", dir.display()));
    let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(io)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let meta = std::fs::symlink_metadata(&path).map_err(io)?;
        let r = rel.join(e.file_name());
        f(&r, &meta, &path).map_err(io)?;
        if meta.is_dir() {
            walk_dir(&path, &r, f)?;
        }
    }
    Ok(())
}

/// Appends to `tar` what puts every placement at its destination (paths relative to the
/// image's root), owned and moded as `attrs` says.
pub(crate) fn append_placements<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    placements: &[Placement],
    attrs: Attrs,
) -> Result<()> {
    for p in placements {
        let dest = clean(&p.dest);
        walk(root, &p.src, &mut |rel, meta, path| {
            let target = if rel.as_os_str().is_empty() {
                dest.clone()
            } else {
                dest.join(rel)
            };
            if target.as_os_str().is_empty() {
                return Ok(()); // the image's root itself
            }
            append(tar, &target, meta, path, attrs)
        })?;
    }
    Ok(())
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    target: &Path,
    meta: &std::fs::Metadata,
    path: &Path,
    attrs: Attrs,
) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mut h = tar::Header::new_gnu();
    let mode = attrs.mode.unwrap_or(meta.permissions().mode() & 0o7777);
    h.set_mode(mode);
    h.set_uid(attrs.uid.into());
    h.set_gid(attrs.gid.into());
    h.set_mtime(meta.mtime().max(0) as u64);
    let ft = meta.file_type();
    if ft.is_symlink() {
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        tar.append_link(&mut h, target, std::fs::read_link(path)?)
    } else if ft.is_dir() {
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        tar.append_data(&mut h, target, io::empty())
    } else if ft.is_file() {
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(meta.len());
        tar.append_data(&mut h, target, std::fs::File::open(path)?)
    } else {
        // Sockets, devices and FIFOs in a context are not copied (Docker skips them too).
        Ok(())
    }
}

/// ADD of a local archive: its entries re-rooted under `dest`, written into `tar`.
pub(crate) fn append_archive_under<W: Write>(
    tar: &mut tar::Builder<W>,
    archive: impl Read,
    dest: &Path,
) -> Result<()> {
    let bad = |e: io::Error| Error::User(format!("ADD: invalid archive: {e}"));
    let mut a = tar::Archive::new(archive);
    for entry in a.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = clean(&entry.path().map_err(bad)?.to_string_lossy());
        if path.as_os_str().is_empty() {
            continue;
        }
        let mut h = entry.header().clone();
        let target = dest.join(&path);
        if h.entry_type() == tar::EntryType::Link
            && let Some(link) = entry.link_name().map_err(bad)?
        {
            let link = dest.join(clean(&link.to_string_lossy()));
            tar.append_link(&mut h, &target, link).map_err(bad)?;
            continue;
        }
        tar.append_data(&mut h, &target, &mut entry).map_err(bad)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_go() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "a.txt.bak"));
        assert!(glob_match("file?", "file1"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[^a-c]x", "bx"));
        assert!(glob_match("\\*", "*"));
    }

    #[test]
    fn sources_stay_in_the_context() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.txt"), "a").unwrap();
        std::fs::write(d.path().join("b.txt"), "b").unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("out")).unwrap();
        let found = find_sources(d.path(), "*.txt").unwrap();
        assert_eq!(found, [PathBuf::from("a.txt"), PathBuf::from("b.txt")]);
        assert_eq!(
            find_sources(d.path(), "../../a.txt").unwrap(),
            [PathBuf::from("a.txt")]
        );
        assert!(find_sources(d.path(), "out/passwd").is_err());
        assert!(find_sources(d.path(), "missing").is_err());
    }
}
