//! Network namespaces that exist before their container: made here, kept alive by a bind
//! mount under the exec root, and joined by the runtime by path.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::netlink::Netlink;

/// Makes a new network namespace, pins it at `path` and brings its loopback up.
/// Returns a netlink socket that lives inside it, for the rest of its setup.
pub fn create(path: &Path) -> io::Result<Netlink> {
    File::create(path)?;
    let target = path.to_path_buf();
    let made = std::thread::spawn(move || -> io::Result<Netlink> {
        // SAFETY: unshare(CLONE_NEWNET) moves only this short-lived thread, which owns no
        // file descriptors or state that other threads rely on, and ends right after.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }?;
        rustix::mount::mount_bind("/proc/thread-self/ns/net", &target)?;
        let mut nl = Netlink::open()?;
        nl.set_up(1, None)?;
        Ok(nl)
    })
    .join()
    .map_err(|_| io::Error::other("netns thread panicked"))?;
    if made.is_err() {
        remove(path);
    }
    made
}

/// Releases a namespace made by [`create`]; it goes once its last process has gone.
pub fn remove(path: &Path) {
    let _ = rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH);
    let _ = std::fs::remove_file(path);
}

/// Opens a pinned namespace for joining or for a netlink socket inside it.
pub fn open(path: &Path) -> io::Result<File> {
    File::open(path)
}
