//! The container backend of the API: `berth-containers` behind
//! `berth_api::ContainerBackend`, and the one place where container errors become HTTP
//! statuses.

use berth_api::{ApiError, ContainerBackend, LogsRequest};
use berth_containers::{ContainerService, Error, LogOptions};

/// Maps container errors to Docker's statuses.
pub fn api_error(e: Error) -> ApiError {
    match e {
        Error::NotFound(_) => ApiError::not_found(e.to_string()),
        Error::Conflict(m) => ApiError::conflict(m),
        Error::InvalidInput(m) => ApiError::bad_request(m),
        Error::Image(e) => crate::images::api_error(e),
        Error::Internal(m) => ApiError::internal(m),
    }
}

/// The container service as the API sees it.
pub struct Containers(pub ContainerService);

impl ContainerBackend for Containers {
    fn create(&self, name: Option<&str>, body: &serde_json::Value) -> Result<String, ApiError> {
        self.0.create(name, body).map_err(api_error)
    }

    fn start(&self, id: &str) -> Result<(), ApiError> {
        self.0.start(id, &mut |_| {}).map_err(api_error)
    }

    fn stop(&self, id: &str, timeout: Option<u64>) -> Result<bool, ApiError> {
        self.0.stop(id, timeout).map_err(api_error)
    }

    fn kill(&self, id: &str, signal: &str) -> Result<(), ApiError> {
        let sig = if signal.is_empty() {
            libc::SIGKILL
        } else {
            berth_containers::signal_number(signal)
                .ok_or_else(|| ApiError::bad_request(format!("Invalid signal: {signal}")))?
        };
        self.0.kill(id, sig).map_err(api_error)
    }

    fn wait(&self, id: &str) -> Result<i32, ApiError> {
        self.0.wait(id, None).map_err(api_error)
    }

    fn remove(&self, id: &str, force: bool) -> Result<(), ApiError> {
        self.0.remove(id, force).map_err(api_error)
    }

    fn list(&self, all: bool, limit: Option<usize>) -> Result<serde_json::Value, ApiError> {
        self.0
            .list(all, limit)
            .map(serde_json::Value::from)
            .map_err(api_error)
    }

    fn inspect(&self, id: &str) -> Result<serde_json::Value, ApiError> {
        self.0.inspect(id).map_err(api_error)
    }

    fn logs(&self, id: &str, req: LogsRequest) -> Result<(Vec<u8>, bool), ApiError> {
        let opts = LogOptions {
            stdout: req.stdout,
            stderr: req.stderr,
            tail: req.tail,
            timestamps: req.timestamps,
        };
        self.0.logs(id, &opts).map_err(api_error)
    }
}
