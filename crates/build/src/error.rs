//! Build errors: what the user wrote or sent is wrong, a step failed, or Berth failed.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Dockerfile, the context or an option is wrong; the message says how.
    #[error("{0}")]
    User(String),
    /// A RUN step exited non-zero.
    #[error("{message}")]
    Step {
        /// Docker's "The command '...' returned a non-zero code: N".
        message: String,
        /// The exit code.
        code: i32,
    },
    /// Something of Berth's failed.
    #[error("{0}")]
    Internal(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl From<berth_containers::Error> for Error {
    fn from(e: berth_containers::Error) -> Self {
        match e {
            berth_containers::Error::NotFound(_) | berth_containers::Error::Missing(_) => {
                Error::User(e.to_string())
            }
            berth_containers::Error::InvalidInput(m) => Error::User(m),
            e => Error::Internal(e.to_string()),
        }
    }
}

impl From<berth_images::Error> for Error {
    fn from(e: berth_images::Error) -> Self {
        match e {
            berth_images::Error::NotFound(m) => Error::User(format!("No such image: {m}")),
            berth_images::Error::InvalidReference(m) | berth_images::Error::InvalidInput(m) => {
                Error::User(m)
            }
            e => Error::Internal(e.to_string()),
        }
    }
}

impl From<berth_metadata::Error> for Error {
    fn from(e: berth_metadata::Error) -> Self {
        Error::Internal(e.to_string())
    }
}
