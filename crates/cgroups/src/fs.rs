//! Small file-system helpers shared by the v1 and v2 back ends.
//!
//! Cgroup files are tiny and must be written with a single write(2) each
//! (the kernel parses one value per write), so everything goes through
//! `std::fs::write` / `read_to_string` with errors that name the file.

use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Write `value` to `dir/file`.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|err| Error::Write {
        path,
        value: value.to_string(),
        err,
    })
}

/// Read `dir/file` as text.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|err| Error::Read { path, err })
}

/// Read `dir/file`, or `None` if it does not exist (optional kernel features).
pub(crate) fn read_optional(dir: &Path, file: &str) -> Result<Option<String>> {
    match read(dir, file) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Parse a file holding one unsigned number; "max" reads as `u64::MAX`
/// (this is how runc reports "unlimited").
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let text = read(dir, file)?;
    parse_u64(&text).ok_or_else(|| Error::Parse {
        path: dir.join(file),
        content: text.trim().to_string(),
    })
}

/// Like [`read_u64`] but a missing file reads as 0.
pub(crate) fn read_u64_or_zero(dir: &Path, file: &str) -> Result<u64> {
    match read_u64(dir, file) {
        Err(e) if e.is_not_found() => Ok(0),
        other => other,
    }
}

/// Parse one number as cgroup files print it.
pub(crate) fn parse_u64(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return Some(u64::MAX);
    }
    text.parse().ok()
}

/// Parse "key value" lines (memory.stat, cpu.stat, pids.events, ...).
pub(crate) fn parse_flat_keyed(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key.to_string(), parse_u64(value)?))
        })
        .collect()
}

/// Read a "key value" file into a lookup function result for `key`.
pub(crate) fn flat_keyed_value(text: &str, key: &str) -> Option<u64> {
    parse_flat_keyed(text)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Whether `dir/file` exists (used to probe optional kernel features without
/// touching anything).
pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// `mkdir -p dir`, returning the directories that did not exist before, in
/// creation order (outermost first) so the caller can remove exactly those.
///
/// Another container's removal may take away an empty shared parent (`/berth`) between
/// our making it (or finding it) and making the leaf: that shows as ENOENT, and the walk
/// starts over.
pub(crate) fn create_dir_all_tracked(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut created = Vec::new();
    let mut attempts = 0;
    'again: loop {
        attempts += 1;
        let mut missing: Vec<&Path> = dir.ancestors().take_while(|p| !p.exists()).collect();
        missing.reverse();
        for path in missing {
            match std::fs::create_dir(path) {
                Ok(()) => created.push(path.to_path_buf()),
                // Another runtime raced us to it; it is not ours to remove.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 10 => {
                    created.retain(|c| c.exists());
                    continue 'again;
                }
                Err(err) => {
                    return Err(Error::Mkdir {
                        path: path.to_path_buf(),
                        err,
                    });
                }
            }
        }
        created.retain(|c| c.exists());
        return Ok(created);
    }
}

/// How long `remove_cgroup_dir` keeps retrying a busy directory. The kernel
/// keeps a cgroup busy for a moment after its last process was reaped.
const RMDIR_PATIENCE: Duration = Duration::from_millis(1000);

/// Remove a cgroup directory and any child cgroups below it (a container may
/// have made its own). A directory that is already gone is fine.
pub(crate) fn remove_cgroup_tree(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(Error::Read {
                path: dir.to_path_buf(),
                err,
            });
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&entry.path())?;
        }
    }
    remove_cgroup_dir(dir)
}

/// rmdir with retries while the kernel says EBUSY.
fn remove_cgroup_dir(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + RMDIR_PATIENCE;
    let mut pause = Duration::from_millis(5);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(err) => {
                return Err(Error::Rmdir {
                    path: dir.to_path_buf(),
                    err,
                });
            }
        }
    }
}

/// Remove a parent directory that `create` made, unless something else now
/// lives in it (another container under the same parent): then leave it.
pub(crate) fn remove_parent_if_unused(dir: &Path) -> Result<()> {
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                || matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) =>
        {
            Ok(())
        }
        Err(err) => Err(Error::Rmdir {
            path: dir.to_path_buf(),
            err,
        }),
    }
}

/// After the leaves are gone, remove the directories `create` made above
/// them, deepest first, leaving any that are still in use.
pub(crate) fn remove_created_parents(created: &[PathBuf], leaves: &[&Path]) -> Result<()> {
    let mut parents: Vec<&PathBuf> = created
        .iter()
        .filter(|dir| !leaves.contains(&dir.as_path()))
        .collect();
    parents.sort_by_key(|dir| std::cmp::Reverse(dir.components().count()));
    for dir in parents {
        remove_parent_if_unused(dir)?;
    }
    Ok(())
}

/// Pids listed in `dir/cgroup.procs` and in every child cgroup below it.
pub(crate) fn procs_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut pids = Vec::new();
    collect_procs(dir, &mut pids)?;
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

fn collect_procs(dir: &Path, pids: &mut Vec<i32>) -> Result<()> {
    let text = read(dir, "cgroup.procs")?;
    pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    let entries = std::fs::read_dir(dir).map_err(|err| Error::Read {
        path: dir.to_path_buf(),
        err,
    })?;
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            match collect_procs(&entry.path(), pids) {
                // A child cgroup removed while we walked: nothing to list.
                Err(e) if e.is_not_found() => {}
                other => other?,
            }
        }
    }
    Ok(())
}

/// Poll `check` until it returns true or `timeout` passes. Returns whether it
/// succeeded. `on_tick` runs after each failed check with the attempt number
/// (used to re-kick a stuck v1 freezer).
pub(crate) fn poll_until(
    timeout: Duration,
    mut check: impl FnMut() -> Result<bool>,
    mut on_tick: impl FnMut(u32) -> Result<()>,
) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    let mut attempt = 0u32;
    loop {
        if check()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        attempt += 1;
        on_tick(attempt)?;
        sleep(Duration::from_millis(if attempt < 10 { 1 } else { 10 }));
    }
}

/// Send `signal` to `pid`; a process that already exited is not an error.
pub(crate) fn send_signal(pid: i32, signal: i32) -> Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours;
    // the pid came from cgroup.procs, so it is a real process (or gone).
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        return Ok(());
    }
    Err(Error::Signal { pid, signal, err })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_max() {
        assert_eq!(parse_u64("12\n"), Some(12));
        assert_eq!(parse_u64("max\n"), Some(u64::MAX));
        assert_eq!(parse_u64("x"), None);
    }

    #[test]
    fn parses_flat_keyed_files() {
        let text = "usage_usec 10\nuser_usec 7\nsystem_usec 3\n";
        assert_eq!(flat_keyed_value(text, "user_usec"), Some(7));
        assert_eq!(flat_keyed_value(text, "nope"), None);
        assert_eq!(parse_flat_keyed(text).len(), 3);
    }
}
