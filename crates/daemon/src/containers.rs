//! The container backend of the API: `berth-containers` behind
//! `berth_api::ContainerBackend`, and the one place where container errors become HTTP
//! statuses.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_api::{ApiError, ContainerBackend, LogsRequest};
use berth_containers::{ContainerService, Error, LogOptions, WaitCondition};

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

type Waiters = Vec<tokio::sync::oneshot::Sender<std::os::unix::net::UnixStream>>;

/// The container service as the API sees it, with the attach clients that wait for their
/// container to start.
pub struct Containers {
    service: ContainerService,
    pending: Mutex<HashMap<String, Waiters>>,
}

impl Containers {
    /// Wraps the service.
    pub fn new(service: ContainerService) -> Self {
        Containers {
            service,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Connects every waiting attach client of `id` to the shim's stream.
    fn connect_pending(&self, id: &str) {
        let waiters = self
            .pending
            .lock()
            .expect("not poisoned")
            .remove(id)
            .unwrap_or_default();
        for w in waiters {
            match self.service.connect_attach(id) {
                Ok(stream) => {
                    if w.send(stream).is_err() {
                        tracing::warn!(container = id, "attach client left before start");
                    }
                }
                Err(e) => tracing::warn!(container = id, "attach: {e}"),
            }
        }
    }
}

impl ContainerBackend for Containers {
    fn create(&self, name: Option<&str>, body: &serde_json::Value) -> Result<String, ApiError> {
        self.service.create(name, body).map_err(api_error)
    }

    fn start(&self, id: &str) -> Result<(), ApiError> {
        // Attach clients connect after the container exists and before its process runs,
        // so they see all of its output.
        let full = self.service.get(id).map_err(api_error)?.id;
        let started = self
            .service
            .start(&full, &mut |cid| self.connect_pending(cid));
        if started.is_err() {
            // Attach clients waiting for this start get end-of-stream, not a hang.
            self.pending.lock().expect("not poisoned").remove(&full);
        }
        started.map_err(api_error)
    }

    fn stop(&self, id: &str, timeout: Option<u64>) -> Result<bool, ApiError> {
        self.service.stop(id, timeout).map_err(api_error)
    }

    fn kill(&self, id: &str, signal: &str) -> Result<(), ApiError> {
        let sig = if signal.is_empty() {
            libc::SIGKILL
        } else {
            berth_containers::signal::parse(signal)
                .map_err(|_| ApiError::bad_request(format!("Invalid signal: {signal}")))?
        };
        self.service.kill(id, sig).map_err(api_error)
    }

    fn wait(
        &self,
        id: &str,
        condition: &str,
        abandoned: &dyn Fn() -> bool,
    ) -> Result<i32, ApiError> {
        let cond: WaitCondition = condition.parse().map_err(api_error)?;
        self.service
            .wait_for(id, cond, None, abandoned)
            .map_err(api_error)
    }

    fn attach(
        &self,
        id: &str,
    ) -> Result<
        (
            tokio::sync::oneshot::Receiver<std::os::unix::net::UnixStream>,
            bool,
        ),
        ApiError,
    > {
        let rec = self.service.get(id).map_err(api_error)?;
        let tty = rec.config["Tty"].as_bool().unwrap_or(false);
        let (tx, rx) = tokio::sync::oneshot::channel();
        if rec.state.status == "running" {
            let stream = self.service.connect_attach(&rec.id).map_err(api_error)?;
            let _ = tx.send(stream);
        } else {
            self.pending
                .lock()
                .expect("not poisoned")
                .entry(rec.id)
                .or_default()
                .push(tx);
        }
        Ok((rx, tty))
    }

    fn remove(&self, id: &str, force: bool) -> Result<(), ApiError> {
        self.service.remove(id, force).map_err(api_error)
    }

    fn list(&self, all: bool, limit: Option<usize>) -> Result<serde_json::Value, ApiError> {
        self.service
            .list(all, limit)
            .map(serde_json::Value::from)
            .map_err(api_error)
    }

    fn inspect(&self, id: &str) -> Result<serde_json::Value, ApiError> {
        self.service.inspect(id).map_err(api_error)
    }

    fn logs(&self, id: &str, req: LogsRequest) -> Result<(Vec<u8>, bool), ApiError> {
        let opts = LogOptions {
            stdout: req.stdout,
            stderr: req.stderr,
            tail: req.tail,
            timestamps: req.timestamps,
        };
        self.service.logs(id, &opts).map_err(api_error)
    }
}
