//! The one error type of the runtime library.

use std::io;
use std::path::PathBuf;

/// What went wrong, with enough context to act on it. Messages are one line, lower case,
/// and name the object, field or path involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle's config.json is missing, unreadable or inconsistent.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// A user-supplied argument (id, signal, path) is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// No container with this id exists under the state root.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// A container with this id already exists.
    #[error("container with id {0} already exists")]
    AlreadyExists(String),
    /// The operation does not fit the container's current status.
    #[error("{0}")]
    WrongStatus(String),
    /// A cgroup operation failed.
    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::Error),
    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path or object.
        context: String,
        /// The underlying OS error.
        source: io::Error,
    },
    /// The container's init process reported a failure while setting up.
    #[error("{0}")]
    Init(String),
    /// A hook exited non-zero or timed out.
    #[error("{0}")]
    Hook(String),
    /// A seccomp profile could not be compiled or loaded.
    #[error("seccomp: {0}")]
    Seccomp(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an OS error with what was being done.
    pub fn io(context: impl Into<String>, source: impl Into<io::Error>) -> Self {
        Error::Io {
            context: context.into(),
            source: source.into(),
        }
    }

    /// Wraps an OS error that happened on a path.
    pub fn path(action: &str, path: impl Into<PathBuf>, source: impl Into<io::Error>) -> Self {
        Error::io(format!("{action} {}", path.into().display()), source)
    }
}

/// Attaches context to OS errors, in the spirit of `anyhow::Context`.
pub trait IoContext<T> {
    /// Adds `what` as the context of an error.
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<io::Error>> IoContext<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}
