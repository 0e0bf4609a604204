//! Noticing exits as they happen: one thread polls a pidfd per running container's shim
//! (a shim exits right after recording its container's exit) and refreshes the record
//! at once, so `--rm` containers go away and waiters wake without anyone asking.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use rustix::event::{PollFd, PollFlags, poll};

use crate::ContainerService;

/// The shims being watched, and a pipe that wakes the watcher when one is added.
pub(crate) struct Monitor {
    watched: Mutex<Vec<(String, Arc<OwnedFd>)>>,
    wake_r: OwnedFd,
    wake_w: OwnedFd,
}

impl Monitor {
    pub(crate) fn new() -> std::io::Result<Self> {
        let (wake_r, wake_w) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )?;
        Ok(Monitor {
            watched: Mutex::new(Vec::new()),
            wake_r,
            wake_w,
        })
    }

    /// Watches the shim `shim_pid` of container `id`.
    pub(crate) fn watch(&self, id: &str, shim_pid: i32) {
        let Ok(fd) = berth_runtime::sys::pidfd_open(shim_pid) else {
            return;
        };
        self.watched
            .lock()
            .expect("not poisoned")
            .push((id.to_string(), Arc::new(fd)));
        let _ = rustix::io::write(&self.wake_w, &[1]);
    }
}

impl ContainerService {
    /// Starts the thread that records exits as they happen (berthd runs one).
    pub fn spawn_exit_monitor(&self) -> std::thread::JoinHandle<()> {
        let service = self.clone();
        std::thread::Builder::new()
            .name("exit-monitor".into())
            .spawn(move || service.monitor_loop())
            .expect("spawn the exit monitor thread")
    }

    fn monitor_loop(&self) {
        let m = &self.monitor;
        loop {
            let snapshot: Vec<(String, Arc<OwnedFd>)> =
                m.watched.lock().expect("not poisoned").clone();
            let mut fds: Vec<PollFd<'_>> = snapshot
                .iter()
                .map(|(_, fd)| PollFd::new(fd.as_ref(), PollFlags::IN))
                .collect();
            fds.push(PollFd::new(&m.wake_r, PollFlags::IN));
            if poll(&mut fds, None).is_err() {
                continue;
            }
            let exited: Vec<usize> = fds[..snapshot.len()]
                .iter()
                .enumerate()
                .filter(|(_, f)| !f.revents().is_empty())
                .map(|(i, _)| i)
                .collect();
            drop(fds);
            let mut buf = [0u8; 64];
            while rustix::io::read(m.wake_r.as_fd(), &mut buf).is_ok_and(|n| n > 0) {}
            for i in exited {
                let (id, fd) = &snapshot[i];
                m.watched
                    .lock()
                    .expect("not poisoned")
                    .retain(|(_, f)| !Arc::ptr_eq(f, fd));
                // Refreshing records the exit (and removes an auto-remove container).
                if let Err(e) = self.get(id) {
                    tracing::debug!(container = id.as_str(), "after exit: {e}");
                }
            }
        }
    }
}
