//! Errors of the image store, with the kinds the API maps to status codes.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A reference string does not parse.
    #[error("{0}")]
    InvalidReference(String),
    /// Bad input other than a reference (a `changes` line, an archive).
    #[error("{0}")]
    InvalidInput(String),
    /// No image by that name or id.
    #[error("No such image: {0}")]
    NotFound(String),
    /// The operation conflicts with the image's state.
    #[error("{0}")]
    Conflict(String),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] berth_content::Error),
    /// The metadata store failed.
    #[error(transparent)]
    Metadata(#[from] berth_metadata::Error),
    /// Reading the input failed.
    #[error("{0}")]
    Io(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
