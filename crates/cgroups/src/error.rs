//! The crate's error type.
//!
//! Every message is one lower-case line that names the file or config field
//! involved and the value, so the runtime can show it to the user unchanged.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while managing a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `linux.cgroupsPath` (or the container id used to build it) is not usable.
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A `linux.resources` field has a value this host or the kernel cannot take.
    #[error("{field} {problem}")]
    Resource {
        /// The config field, e.g. `linux.resources.memory.swap`.
        field: String,
        /// What is wrong, starting with the value, e.g. `(100) must be >= ...`.
        problem: String,
    },

    /// A controller needed for an operation is not mounted / not available.
    #[error("no {controller} cgroup controller on this host (needed to {purpose})")]
    MissingController {
        /// Controller name, e.g. `freezer`.
        controller: String,
        /// What it was needed for.
        purpose: String,
    },

    /// No cgroup hierarchy of the expected kind is mounted under the root.
    #[error("no cgroup {kind} hierarchy mounted under {}", root.display())]
    NoHierarchy {
        /// "v1" or "v2".
        kind: &'static str,
        /// The cgroup root searched.
        root: PathBuf,
    },

    /// Writing a cgroup file failed (the kernel refused the value).
    #[error("write {value} to {}: {}", path.display(), os_text(err))]
    Write {
        /// File written.
        path: PathBuf,
        /// Value written.
        value: String,
        /// What the kernel said.
        err: io::Error,
    },

    /// Reading a cgroup file failed.
    #[error("read {}: {}", path.display(), os_text(err))]
    Read {
        /// File read.
        path: PathBuf,
        /// Underlying error.
        err: io::Error,
    },

    /// A cgroup file held something we could not parse.
    #[error("parse {}: unexpected content {content:?}", path.display())]
    Parse {
        /// File read.
        path: PathBuf,
        /// The offending text.
        content: String,
    },

    /// Creating a cgroup directory failed.
    #[error("mkdir {}: {}", path.display(), os_text(err))]
    Mkdir {
        /// Directory.
        path: PathBuf,
        /// Underlying error.
        err: io::Error,
    },

    /// Removing a cgroup directory failed.
    #[error("rmdir {}: {}", path.display(), os_text(err))]
    Rmdir {
        /// Directory.
        path: PathBuf,
        /// Underlying error.
        err: io::Error,
    },

    /// A state change (freeze, thaw) did not complete in time.
    #[error("timed out waiting for {} to show {expected}", path.display())]
    Timeout {
        /// File polled.
        path: PathBuf,
        /// The state we waited for.
        expected: String,
    },

    /// Sending a signal to a process in the cgroup failed.
    #[error("kill pid {pid} with signal {signal}: {}", os_text(err))]
    Signal {
        /// Target pid.
        pid: i32,
        /// Signal number.
        signal: i32,
        /// Underlying error.
        err: io::Error,
    },

    /// A bpf(2) call for the cgroup v2 device filter failed.
    #[error("bpf {op} for {}: {}{log}", path.display(), os_text(err))]
    Bpf {
        /// The bpf command, e.g. `prog_load`.
        op: &'static str,
        /// The cgroup directory.
        path: PathBuf,
        /// Underlying error.
        err: io::Error,
        /// Verifier log (with a leading separator) or empty.
        log: String,
    },
}

impl Error {
    /// True when the error comes from a file or directory that does not exist.
    pub fn is_not_found(&self) -> bool {
        self.io_error()
            .is_some_and(|e| e.kind() == io::ErrorKind::NotFound)
    }

    /// The operating-system error behind this error, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Write { err, .. }
            | Error::Read { err, .. }
            | Error::Mkdir { err, .. }
            | Error::Rmdir { err, .. }
            | Error::Signal { err, .. }
            | Error::Bpf { err, .. } => Some(err),
            _ => None,
        }
    }

    /// Shorthand for [`Error::Resource`].
    pub(crate) fn resource(field: impl Into<String>, problem: impl Into<String>) -> Error {
        Error::Resource {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// The kernel's text for an error without Rust's " (os error N)" suffix, so
/// messages read like the shell's ("Device or resource busy").
fn os_text(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// Crate-wide result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_error_reads_like_the_shell() {
        let err = Error::Write {
            path: PathBuf::from("/sys/fs/cgroup/memory/berth/x/memory.limit_in_bytes"),
            value: "100".to_string(),
            err: io::Error::from_raw_os_error(libc::EBUSY),
        };
        assert_eq!(
            err.to_string(),
            "write 100 to /sys/fs/cgroup/memory/berth/x/memory.limit_in_bytes: Device or resource busy"
        );
        assert!(!err.is_not_found());
        let missing = Error::Read {
            path: PathBuf::from("/x"),
            err: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert!(missing.is_not_found());
    }
}
