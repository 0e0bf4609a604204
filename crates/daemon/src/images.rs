//! The image backend of the API: `berth-images` behind `berth_api::ImageBackend`, and the
//! one place where image errors become HTTP statuses.

use std::io::Read;

use berth_api::{ApiError, ImageBackend, ImportRequest};
use berth_images::{Error, Filters, ImageStore, ImportOptions};

/// Maps image-store errors to Docker's statuses.
pub fn api_error(e: Error) -> ApiError {
    match e {
        Error::InvalidReference(m) | Error::InvalidInput(m) => ApiError::bad_request(m),
        Error::NotFound(_) => ApiError::not_found(e.to_string()),
        Error::Conflict(m) => ApiError::conflict(m),
        Error::Io(m) => ApiError::bad_request(m),
        Error::Content(_) | Error::Metadata(_) => ApiError::internal(e.to_string()),
    }
}

/// Filter keys `GET /images/json` accepts.
const LIST_FILTERS: &[&str] = &["dangling", "reference", "label", "before", "since"];

/// The image store as the API sees it.
pub struct ImageService(pub ImageStore);

impl ImageBackend for ImageService {
    fn import(
        &self,
        archive: &mut (dyn Read + Send),
        req: ImportRequest,
    ) -> Result<String, ApiError> {
        let reference = match (req.repo, req.tag) {
            (Some(repo), Some(tag)) => Some(format!("{repo}:{tag}")),
            (repo, _) => repo,
        };
        let opts = ImportOptions {
            reference,
            changes: req.changes,
            message: req.message,
            source: "-".into(),
        };
        self.0.import(archive, &opts).map_err(api_error)
    }

    fn list(&self, _all: bool, filters: &str) -> Result<serde_json::Value, ApiError> {
        let filters = Filters::parse(filters, LIST_FILTERS).map_err(api_error)?;
        self.0
            .list(&filters)
            .map(serde_json::Value::from)
            .map_err(api_error)
    }

    fn inspect(&self, name: &str) -> Result<serde_json::Value, ApiError> {
        self.0.inspect(name).map_err(api_error)
    }

    fn tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<(), ApiError> {
        let target = match tag {
            Some(t) => format!("{repo}:{t}"),
            None => repo.to_string(),
        };
        self.0.tag(name, &target).map_err(api_error)
    }

    fn remove(&self, name: &str, force: bool) -> Result<serde_json::Value, ApiError> {
        self.0
            .remove(name, force)
            .map(serde_json::Value::from)
            .map_err(api_error)
    }
}
