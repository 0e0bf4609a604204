//! Errors of pulls, pushes and logins, in words a user can act on.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong (reference, platform, header).
    #[error("{0}")]
    BadRequest(String),
    /// The registry has no such repository, tag or manifest.
    #[error("{0}")]
    NotFound(String),
    /// The registry refused our credentials (or wants some).
    #[error("{0}")]
    Unauthorized(String),
    /// The registry could not be reached or answered something we cannot use.
    #[error("{0}")]
    Registry(String),
    /// Content did not hash to what its descriptor promised.
    #[error("{0}")]
    Verification(String),
    /// The local stores failed.
    #[error("{0}")]
    Store(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl From<berth_content::Error> for Error {
    fn from(e: berth_content::Error) -> Self {
        match e {
            berth_content::Error::DigestMismatch { expected, actual } => Error::Verification(
                format!("content verification failed: expected {expected}, got {actual}"),
            ),
            e => Error::Store(e.to_string()),
        }
    }
}

impl From<berth_images::Error> for Error {
    fn from(e: berth_images::Error) -> Self {
        match e {
            berth_images::Error::InvalidReference(m) | berth_images::Error::InvalidInput(m) => {
                Error::BadRequest(m)
            }
            berth_images::Error::NotFound(m) => Error::NotFound(format!("No such image: {m}")),
            e => Error::Store(e.to_string()),
        }
    }
}

impl From<berth_snapshots::Error> for Error {
    fn from(e: berth_snapshots::Error) -> Self {
        Error::Store(e.to_string())
    }
}

impl From<berth_metadata::Error> for Error {
    fn from(e: berth_metadata::Error) -> Self {
        Error::Store(e.to_string())
    }
}
