//! Errors of the container service, by the kind the API maps to a status.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such container.
    #[error("No such container: {0}")]
    NotFound(String),
    /// Something a container refers to does not exist (an exec, a path in it, a
    /// network, a volume, a link): a 404 with its own message.
    #[error("{0}")]
    Missing(String),
    /// The request conflicts with the container's state or another container.
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed.
    #[error("{0}")]
    InvalidInput(String),
    /// The image store failed or has no such image.
    #[error(transparent)]
    Image(#[from] berth_images::Error),
    /// A server-side failure (mount, shim, store).
    #[error("{0}")]
    Internal(String),
}

impl From<berth_metadata::Error> for Error {
    fn from(e: berth_metadata::Error) -> Self {
        Error::Internal(e.to_string())
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
