//! The container backend of the API: `berth-containers` behind
//! `berth_api::ContainerBackend`, and the one place where container errors become HTTP
//! statuses.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_api::{
    ApiError, AttachRequest, ContainerBackend, ListRequest, LogsRequest, ProcessIo, Session,
    StdinCodec,
};
use berth_containers::{ContainerService, Error, LogOptions, WaitCondition};

/// Maps container errors to Docker's statuses.
pub fn api_error(e: Error) -> ApiError {
    match e {
        Error::NotFound(_) | Error::Missing(_) => ApiError::not_found(e.to_string()),
        Error::Conflict(m) => ApiError::conflict(m),
        Error::InvalidInput(m) => ApiError::bad_request(m),
        Error::Image(e) => crate::images::api_error(e),
        Error::Internal(m) => ApiError::internal(m),
    }
}

/// An attach client waiting for its container to start.
struct Waiter {
    tx: tokio::sync::oneshot::Sender<ProcessIo>,
    req: AttachRequest,
    codec: Option<StdinCodec>,
}

type Waiters = Vec<Waiter>;

/// Docker's detach keys when the client names none.
const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// How a client's input reaches a shim: frames, and on end of input either the
/// close-stdin frame (`StdinOnce` without a terminal, as Docker does) or the end of the
/// session.
fn stdin_codec(req: &AttachRequest, stdin_once: bool, tty: bool) -> Option<StdinCodec> {
    req.stdin.then(|| StdinCodec {
        frame: berth_types::shim::stdin_frame,
        end: (stdin_once && !tty).then(|| berth_types::shim::stdin_frame(b"")),
    })
}

fn session(
    tty: bool,
    detach_keys: &str,
    prelude: Vec<u8>,
    on_detach: impl Fn(berth_api::hijack::DetachCause) + Send + Sync + 'static,
) -> Result<Session, ApiError> {
    let keys = if detach_keys.is_empty() {
        DEFAULT_DETACH_KEYS
    } else {
        detach_keys
    };
    Ok(Session {
        tty,
        detach_keys: berth_api::hijack::parse_detach_keys(keys)?,
        prelude,
        on_detach: Some(berth_api::hijack::DetachHook(std::sync::Arc::new(
            on_detach,
        ))),
    })
}

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
            match self
                .service
                .connect_attach(id, w.req.stdin, w.req.stdout, w.req.stderr)
            {
                Ok(stream) => {
                    let io = ProcessIo {
                        stream,
                        stdin: w.codec,
                    };
                    if w.tx.send(io).is_err() {
                        tracing::warn!(container = id, "attach client left before start");
                    }
                }
                Err(e) => tracing::warn!(container = id, "attach: {e}"),
            }
        }
    }
}

impl ContainerBackend for Containers {
    fn create(
        &self,
        name: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<(String, Vec<String>), ApiError> {
        self.service
            .create_with_warnings(name, body)
            .map_err(api_error)
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
        req: &AttachRequest,
    ) -> Result<(tokio::sync::oneshot::Receiver<ProcessIo>, Session), ApiError> {
        let rec = self.service.get(id).map_err(api_error)?;
        let tty = rec.config["Tty"].as_bool().unwrap_or(false);
        let stdin_once = rec.config["StdinOnce"].as_bool().unwrap_or(false);
        let codec = stdin_codec(req, stdin_once, tty);
        let prelude = if req.logs {
            let opts = LogOptions {
                stdout: req.stdout,
                stderr: req.stderr,
                ..Default::default()
            };
            self.service.logs(&rec.id, &opts).map_err(api_error)?.0
        } else {
            Vec::new()
        };
        let (service, id) = (self.service.clone(), rec.id.clone());
        // dockerd reports a `detach` however the client left.
        let session = session(tty, &req.detach_keys, prelude, move |_| {
            service.emit_detach(&id, None);
        })?;
        if req.stream {
            self.service.emit(&rec, "attach");
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !req.stream {
            // The log (if asked for) and nothing live: a stream that is already over.
            let (ended, _) = std::os::unix::net::UnixStream::pair()
                .map_err(|e| ApiError::internal(format!("attach: {e}")))?;
            let _ = tx.send(ProcessIo {
                stream: ended,
                stdin: None,
            });
        } else if rec.state.status == "running" || rec.state.status == "paused" {
            let stream = self
                .service
                .connect_attach(&rec.id, req.stdin, req.stdout, req.stderr)
                .map_err(api_error)?;
            let _ = tx.send(ProcessIo {
                stream,
                stdin: codec,
            });
        } else {
            self.pending
                .lock()
                .expect("not poisoned")
                .entry(rec.id)
                .or_default()
                .push(Waiter {
                    tx,
                    req: req.clone(),
                    codec,
                });
        }
        Ok((rx, session))
    }

    fn resize(&self, id: &str, height: u16, width: u16) -> Result<(), ApiError> {
        self.service.resize(id, height, width).map_err(api_error)
    }

    fn exec_create(&self, container: &str, body: &serde_json::Value) -> Result<String, ApiError> {
        if !body["DetachKeys"].as_str().unwrap_or("").is_empty() {
            berth_api::hijack::parse_detach_keys(body["DetachKeys"].as_str().unwrap_or(""))?;
        }
        self.service.exec_create(container, body).map_err(api_error)
    }

    fn exec_start(
        &self,
        id: &str,
        attach: Option<&AttachRequest>,
        start_tty: bool,
    ) -> Result<Option<(ProcessIo, Session)>, ApiError> {
        let exec = self.service.exec_get(id).map_err(api_error)?;
        let c = &exec.config;
        let want = |k: &str| c[k].as_bool().unwrap_or(false);
        let req = attach.map(|_| AttachRequest {
            stdin: want("AttachStdin"),
            stdout: want("AttachStdout"),
            stderr: want("AttachStderr"),
            logs: false,
            stream: true,
            detach_keys: c["DetachKeys"].as_str().unwrap_or("").to_string(),
        });
        let tty = want("Tty");
        let mut connected = None;
        let mut connect_error = None;
        self.service
            .exec_start(id, start_tty, &mut |_| {
                if let Some(r) = &req {
                    match self
                        .service
                        .connect_exec_attach(&exec, r.stdin, r.stdout, r.stderr)
                    {
                        Ok(s) => connected = Some(s),
                        Err(e) => connect_error = Some(e),
                    }
                }
            })
            .map_err(api_error)?;
        if let Some(e) = connect_error {
            return Err(api_error(e));
        }
        match (req, connected) {
            (Some(r), Some(stream)) => {
                let io = ProcessIo {
                    stream,
                    // An exec's stdin is attached once: it closes with the client's input.
                    stdin: stdin_codec(&r, true, tty),
                };
                let (service, container, exec_id) = (
                    self.service.clone(),
                    exec.container_id.clone(),
                    exec.id.clone(),
                );
                // dockerd reports `exec_detach` only for the keys it saw itself.
                let on_detach = move |cause| {
                    if cause == berth_api::hijack::DetachCause::Keys {
                        service.emit_detach(&container, Some(&exec_id));
                    }
                };
                let session = session(start_tty, &r.detach_keys, Vec::new(), on_detach)?;
                Ok(Some((io, session)))
            }
            _ => Ok(None),
        }
    }

    fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<(), ApiError> {
        self.service
            .exec_resize(id, height, width)
            .map_err(api_error)
    }

    fn exec_inspect(&self, id: &str) -> Result<serde_json::Value, ApiError> {
        self.service.exec_inspect(id).map_err(api_error)
    }

    fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<(), ApiError> {
        self.service
            .remove_with_volumes(id, force, volumes)
            .map_err(api_error)
    }

    fn archive_stat(&self, id: &str, path: &str) -> Result<serde_json::Value, ApiError> {
        self.service.archive_stat(id, path).map_err(api_error)
    }

    fn archive_get(
        &self,
        id: &str,
        path: &str,
        out: &mut dyn std::io::Write,
    ) -> Result<(), ApiError> {
        self.service.archive_get(id, path, out).map_err(api_error)
    }

    fn archive_put(
        &self,
        id: &str,
        path: &str,
        copy_uid_gid: bool,
        input: &mut (dyn std::io::Read + Send),
    ) -> Result<(), ApiError> {
        self.service
            .archive_put(id, path, copy_uid_gid, input)
            .map_err(api_error)
    }

    fn stats(
        &self,
        id: &str,
        stream: bool,
        one_shot: bool,
        emit: &mut dyn FnMut(serde_json::Value) -> bool,
    ) -> Result<(), ApiError> {
        self.service
            .stats(id, stream, one_shot, emit)
            .map_err(api_error)
    }

    fn stats_history(
        &self,
        id: &str,
        since: u64,
        per_minute: bool,
    ) -> Result<serde_json::Value, ApiError> {
        let points = self
            .service
            .stats_history(id, since, per_minute)
            .map_err(api_error)?;
        serde_json::to_value(points).map_err(|e| ApiError::internal(e.to_string()))
    }

    fn commit(
        &self,
        req: &berth_api::CommitRequest,
        config: &serde_json::Value,
    ) -> Result<String, ApiError> {
        let reference = match (req.repo.as_str(), req.tag.as_str()) {
            ("", _) => None,
            (repo, "") => Some(repo.to_string()),
            (repo, tag) => Some(format!("{repo}:{tag}")),
        };
        let opts = berth_images::CommitOptions {
            reference,
            changes: req.changes.clone(),
            comment: req.comment.clone(),
            author: req.author.clone(),
            created_by: String::new(),
        };
        self.service
            .commit(&req.container, config, &opts, req.pause)
            .map_err(api_error)
    }

    fn export(&self, id: &str, out: &mut dyn std::io::Write) -> Result<(), ApiError> {
        self.service.export(id, out).map_err(api_error)
    }

    fn remove_link(&self, linker: &str, alias: &str) -> Result<(), ApiError> {
        self.service.remove_link(linker, alias).map_err(api_error)
    }

    fn list(&self, req: &ListRequest) -> Result<serde_json::Value, ApiError> {
        self.service
            .list(req.all, req.limit, &req.filters, req.size)
            .map(serde_json::Value::from)
            .map_err(api_error)
    }

    fn restart(&self, id: &str, timeout: Option<u64>) -> Result<(), ApiError> {
        let full = self.service.get(id).map_err(api_error)?.id;
        self.service
            .restart(&full, timeout, &mut |cid| self.connect_pending(cid))
            .map_err(api_error)
    }

    fn rename(&self, id: &str, name: &str) -> Result<(), ApiError> {
        self.service.rename(id, name).map_err(api_error)
    }

    fn pause(&self, id: &str) -> Result<(), ApiError> {
        self.service.pause(id).map_err(api_error)
    }

    fn unpause(&self, id: &str) -> Result<(), ApiError> {
        self.service.unpause(id).map_err(api_error)
    }

    fn top(&self, id: &str, ps_args: &str) -> Result<serde_json::Value, ApiError> {
        let (titles, rows) = self.service.top(id, ps_args).map_err(api_error)?;
        Ok(serde_json::json!({"Titles": titles, "Processes": rows}))
    }

    fn update(&self, id: &str, body: &serde_json::Value) -> Result<serde_json::Value, ApiError> {
        let warnings = self.service.update(id, body).map_err(api_error)?;
        Ok(serde_json::json!({"Warnings": warnings}))
    }

    fn changes(&self, id: &str) -> Result<serde_json::Value, ApiError> {
        let list = self.service.changes(id).map_err(api_error)?;
        if list.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        Ok(list
            .into_iter()
            .map(|(path, kind)| serde_json::json!({"Path": path, "Kind": kind as u8}))
            .collect())
    }

    fn prune(&self, filters: &str) -> Result<serde_json::Value, ApiError> {
        let f = berth_images::Filters::parse(filters, &["until", "label", "label!"])
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let until = match f.single("until") {
            Some(u) => Some(parse_until(u)?),
            None => None,
        };
        let keep = |summary: &serde_json::Value| {
            let created = summary["Created"].as_i64().unwrap_or(0);
            until.is_some_and(|u| created >= u) || !f.matches_labels(&summary["Labels"])
        };
        let (deleted, space) = self.service.prune(&keep).map_err(api_error)?;
        Ok(serde_json::json!({
            "ContainersDeleted": if deleted.is_empty() { serde_json::Value::Null } else { deleted.into() },
            "SpaceReclaimed": space,
        }))
    }

    fn inspect(&self, id: &str) -> Result<serde_json::Value, ApiError> {
        self.service.inspect(id).map_err(api_error)
    }

    fn logs(&self, id: &str, req: LogsRequest) -> Result<(Vec<u8>, bool), ApiError> {
        self.service.logs(id, &log_options(&req)).map_err(api_error)
    }

    fn has_tty(&self, id: &str) -> Result<bool, ApiError> {
        let rec = self.service.get(id).map_err(api_error)?;
        Ok(rec.config["Tty"].as_bool().unwrap_or(false))
    }

    fn follow_logs(
        &self,
        id: &str,
        req: LogsRequest,
        sink: &mut dyn FnMut(Vec<u8>) -> bool,
    ) -> Result<(), ApiError> {
        self.service
            .follow_logs(id, &log_options(&req), sink)
            .map_err(api_error)
    }
}

fn log_options(req: &LogsRequest) -> LogOptions {
    LogOptions {
        stdout: req.stdout,
        stderr: req.stderr,
        tail: req.tail,
        timestamps: req.timestamps,
        since: req.since,
        until: req.until,
        details: req.details,
    }
}

/// Docker's `until` filter (see `berth_types::time::parse_point_in_time`), as Unix
/// seconds.
fn parse_until(v: &str) -> Result<i64, ApiError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    berth_types::time::parse_point_in_time(v, now)
        .map(|t| t as i64)
        .ok_or_else(|| ApiError::bad_request(format!("invalid filter 'until={v}'")))
}
