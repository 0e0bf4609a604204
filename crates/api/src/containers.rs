//! Container endpoints: create, list, inspect, start, stop, kill, wait, logs, remove.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::hijack::{ProcessIo, Session};
use crate::query::{flag, param, query_pairs};
use crate::{Backends, blocking};

/// `POST /commit` parameters.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// The container.
    pub container: String,
    /// `repo` (may carry a tag).
    pub repo: String,
    /// `tag`.
    pub tag: String,
    /// `comment` (`-m`).
    pub comment: String,
    /// `author` (`-a`).
    pub author: String,
    /// Pause the container meanwhile (default true).
    pub pause: bool,
    /// `changes`, one Dockerfile line each.
    pub changes: Vec<String>,
}

/// `docker logs` parameters.
#[derive(Debug, Clone, Default)]
pub struct LogsRequest {
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// `tail`: a number of lines, or all.
    pub tail: Option<usize>,
    /// Prefix lines with their time.
    pub timestamps: bool,
    /// Keep streaming until the container stops.
    pub follow: bool,
    /// Only entries at or after this time (nanoseconds since the epoch).
    pub since: Option<i128>,
    /// Attributes before each line (`details`).
    pub details: bool,
    /// Only entries before this time (nanoseconds since the epoch).
    pub until: Option<i128>,
}

impl LogsRequest {
    fn from_query(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let time = |k: &str| -> Result<Option<i128>, ApiError> {
            match param(pairs, k).filter(|v| !v.is_empty() && *v != "0") {
                None => Ok(None),
                Some(v) => berth_types::time::parse_unix_nanos(v)
                    .map(Some)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "invalid value for \"{k}\": {v}: expected Unix seconds"
                        ))
                    }),
            }
        };
        let req = LogsRequest {
            stdout: flag(pairs, "stdout"),
            stderr: flag(pairs, "stderr"),
            tail: param(pairs, "tail").and_then(|t| t.parse().ok()),
            timestamps: flag(pairs, "timestamps"),
            follow: flag(pairs, "follow"),
            since: time("since")?,
            until: time("until")?,
            details: flag(pairs, "details"),
        };
        if !req.stdout && !req.stderr {
            return Err(ApiError::bad_request(
                "Bad parameters: you must choose at least one stream",
            ));
        }
        Ok(req)
    }
}

/// `GET /containers/json` parameters.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    /// Stopped containers too.
    pub all: bool,
    /// The n newest.
    pub limit: Option<usize>,
    /// Docker's filter JSON.
    pub filters: String,
    /// Add SizeRw and SizeRootFs.
    pub size: bool,
}

/// What an attach client asks for.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    /// Send the client's input to the process.
    pub stdin: bool,
    /// Stream stdout.
    pub stdout: bool,
    /// Stream stderr.
    pub stderr: bool,
    /// Replay the log first.
    pub logs: bool,
    /// Stream live output (with `logs` alone, the log is sent and the stream ends).
    pub stream: bool,
    /// Detach keys as the client gave them (Docker's default when empty).
    pub detach_keys: String,
}

impl AttachRequest {
    fn from_query(pairs: &[(String, String)]) -> Self {
        AttachRequest {
            stdin: flag(pairs, "stdin"),
            stdout: flag(pairs, "stdout"),
            stderr: flag(pairs, "stderr"),
            logs: flag(pairs, "logs"),
            stream: flag(pairs, "stream"),
            detach_keys: param(pairs, "detachKeys").unwrap_or_default().to_string(),
        }
    }
}

/// What the container endpoints need. Methods block; the API runs them off the async
/// threads.
pub trait ContainerBackend: Send + Sync {
    /// Creates a container from Docker's create body; returns its id and dockerd's
    /// warnings.
    fn create(
        &self,
        name: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<(String, Vec<String>), ApiError>;
    /// Starts a container.
    fn start(&self, id: &str) -> Result<(), ApiError>;
    /// Stops a container; false if it was not running.
    fn stop(&self, id: &str, timeout: Option<u64>) -> Result<bool, ApiError>;
    /// Sends a signal (name or number; SIGKILL when empty).
    fn kill(&self, id: &str, signal: &str) -> Result<(), ApiError>;
    /// Waits for `condition` (not-running, next-exit, removed); returns the exit code.
    /// Gives up when `abandoned` turns true (the client disconnected).
    fn wait(
        &self,
        id: &str,
        condition: &str,
        abandoned: &dyn Fn() -> bool,
    ) -> Result<i32, ApiError>;
    /// Registers an attach client: the receiver yields the process's stream once it
    /// runs (at once for a running container, at start for a created one).
    fn attach(
        &self,
        id: &str,
        req: &AttachRequest,
    ) -> Result<(tokio::sync::oneshot::Receiver<ProcessIo>, Session), ApiError>;
    /// Resizes the container's terminal.
    fn resize(&self, id: &str, height: u16, width: u16) -> Result<(), ApiError>;
    /// Creates an exec instance from Docker's body; returns its id.
    fn exec_create(&self, container: &str, body: &serde_json::Value) -> Result<String, ApiError>;
    /// Starts an exec; with `attach`, returns its stream and session. `tty` is the start
    /// request's: raw output when true, Docker's frames otherwise.
    fn exec_start(
        &self,
        id: &str,
        attach: Option<&AttachRequest>,
        tty: bool,
    ) -> Result<Option<(ProcessIo, Session)>, ApiError>;
    /// Resizes an exec's terminal.
    fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<(), ApiError>;
    /// `GET /exec/{id}/json`.
    fn exec_inspect(&self, id: &str) -> Result<serde_json::Value, ApiError>;
    /// Removes a container.
    fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<(), ApiError>;
    /// `HEAD /containers/{id}/archive`: Docker's path stat of `path`.
    fn archive_stat(&self, id: &str, path: &str) -> Result<serde_json::Value, ApiError>;
    /// `GET /containers/{id}/archive`: a tar of `path` written to `out`.
    fn archive_get(
        &self,
        id: &str,
        path: &str,
        out: &mut dyn std::io::Write,
    ) -> Result<(), ApiError>;
    /// `PUT /containers/{id}/archive`: extracts `input` into the directory `path`.
    fn archive_put(
        &self,
        id: &str,
        path: &str,
        copy_uid_gid: bool,
        input: &mut (dyn std::io::Read + Send),
    ) -> Result<(), ApiError>;
    /// `GET /containers/{id}/stats`: samples to `emit` (one, or one a second with
    /// `stream` until `emit` returns false or the container stops).
    fn stats(
        &self,
        id: &str,
        stream: bool,
        one_shot: bool,
        emit: &mut dyn FnMut(serde_json::Value) -> bool,
    ) -> Result<(), ApiError>;
    /// `GET /containers/{id}/stats/history` (Berth's): the container's resource points
    /// since `since` (Unix seconds), per second or per minute.
    fn stats_history(
        &self,
        id: &str,
        since: u64,
        per_minute: bool,
    ) -> Result<serde_json::Value, ApiError>;
    /// `POST /commit`: a new image from the container; returns its id.
    fn commit(&self, req: &CommitRequest, config: &serde_json::Value) -> Result<String, ApiError>;
    /// `GET /containers/{id}/export`: the root filesystem as a tar.
    fn export(&self, id: &str, out: &mut dyn std::io::Write) -> Result<(), ApiError>;
    /// `DELETE /containers/{linker}/{alias}?link=1`: removes a legacy link.
    fn remove_link(&self, linker: &str, alias: &str) -> Result<(), ApiError>;
    /// `GET /containers/json`.
    fn list(&self, req: &ListRequest) -> Result<serde_json::Value, ApiError>;
    /// Stops (if running) and starts again.
    fn restart(&self, id: &str, timeout: Option<u64>) -> Result<(), ApiError>;
    /// Renames.
    fn rename(&self, id: &str, name: &str) -> Result<(), ApiError>;
    /// Freezes.
    fn pause(&self, id: &str) -> Result<(), ApiError>;
    /// Thaws.
    fn unpause(&self, id: &str) -> Result<(), ApiError>;
    /// `GET /containers/{id}/top` (`{"Titles", "Processes"}`).
    fn top(&self, id: &str, ps_args: &str) -> Result<serde_json::Value, ApiError>;
    /// `POST /containers/{id}/update` (`{"Warnings"}`).
    fn update(&self, id: &str, body: &serde_json::Value) -> Result<serde_json::Value, ApiError>;
    /// `GET /containers/{id}/changes` (`[{"Path", "Kind"}]`, null when none).
    fn changes(&self, id: &str) -> Result<serde_json::Value, ApiError>;
    /// `POST /containers/prune` (`{"ContainersDeleted", "SpaceReclaimed"}`).
    fn prune(&self, filters: &str) -> Result<serde_json::Value, ApiError>;
    /// `GET /containers/{id}/json`.
    fn inspect(&self, id: &str) -> Result<serde_json::Value, ApiError>;
    /// Log frames, and whether the container has a terminal (raw stream).
    fn logs(&self, id: &str, req: LogsRequest) -> Result<(Vec<u8>, bool), ApiError>;
    /// Whether the container has a terminal (its logs are a raw stream).
    fn has_tty(&self, id: &str) -> Result<bool, ApiError>;
    /// `logs -f`: hands log frames to `sink` until the container stops or `sink`
    /// returns false (an empty chunk only asks whether the client is still there).
    fn follow_logs(
        &self,
        id: &str,
        req: LogsRequest,
        sink: &mut dyn FnMut(Vec<u8>) -> bool,
    ) -> Result<(), ApiError>;
}

/// `POST /containers/create`.
pub async fn create(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let name = param(&pairs, "name").map(str::to_string);
    let body: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let c = b.containers.clone();
    let (id, warnings) = blocking(move || c.create(name.as_deref(), &body)).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"Id": id, "Warnings": warnings})),
    )
        .into_response())
}

/// `GET /containers/json`.
pub async fn list(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let req = ListRequest {
        all: flag(&pairs, "all"),
        limit: param(&pairs, "limit")
            .and_then(|l| l.parse::<i64>().ok())
            .filter(|l| *l > 0)
            .map(|l| l as usize),
        filters: param(&pairs, "filters").unwrap_or("").to_string(),
        size: flag(&pairs, "size"),
    };
    let c = b.containers.clone();
    Ok(Json(blocking(move || c.list(&req)).await?))
}

/// `POST /containers/prune`.
pub async fn prune(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let filters = param(&query_pairs(q.as_deref()), "filters")
        .unwrap_or("")
        .to_string();
    let c = b.containers.clone();
    Ok(Json(blocking(move || c.prune(&filters)).await?))
}

/// `GET /containers/{id}/json`.
pub async fn inspect(
    State(b): State<Backends>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = b.containers.clone();
    Ok(Json(blocking(move || c.inspect(&id)).await?))
}

/// `DELETE /containers/{linker}/{alias}?link=1`.
pub async fn remove_link(
    State(b): State<Backends>,
    Path((linker, alias)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<StatusCode, ApiError> {
    if !flag(&query_pairs(q.as_deref()), "link") {
        return Err(ApiError::not_found(format!(
            "No such container: {linker}/{alias}"
        )));
    }
    let c = b.containers.clone();
    blocking(move || c.remove_link(&linker, &alias)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /containers/{id}`.
pub async fn remove(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<StatusCode, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let force = flag(&pairs, "force");
    let volumes = flag(&pairs, "v");
    let c = b.containers.clone();
    blocking(move || c.remove(&id, force, volumes)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/{action}` and `GET /containers/{id}/logs`.
pub async fn action(
    State(b): State<Backends>,
    Path((id, action)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let c = b.containers.clone();
    match action.as_str() {
        "start" => {
            blocking(move || c.start(&id)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "stop" => {
            let t = param(&pairs, "t").and_then(|t| t.parse().ok());
            let stopped = blocking(move || c.stop(&id, t)).await?;
            Ok(if stopped {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::NOT_MODIFIED
            }
            .into_response())
        }
        "restart" => {
            let t = param(&pairs, "t").and_then(|t| t.parse().ok());
            blocking(move || c.restart(&id, t)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "rename" => {
            let name = param(&pairs, "name").unwrap_or_default().to_string();
            blocking(move || c.rename(&id, &name)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "pause" => {
            blocking(move || c.pause(&id)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "unpause" => {
            blocking(move || c.unpause(&id)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "changes" => Ok(Json(blocking(move || c.changes(&id)).await?).into_response()),
        "stats" => {
            let stream = crate::query::flag_or(&pairs, "stream", true);
            let one_shot = flag(&pairs, "one-shot");
            if !stream {
                let sample = blocking(move || {
                    let mut out = serde_json::Value::Null;
                    c.stats(&id, false, one_shot, &mut |v| {
                        out = v;
                        false
                    })?;
                    Ok(out)
                })
                .await?;
                return Ok(Json(sample).into_response());
            }
            let (probe, probe_id) = (c.clone(), id.clone());
            blocking(move || probe.inspect(&probe_id).map(drop)).await?;
            let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
            tokio::task::spawn_blocking(move || {
                let _ = c.stats(&id, true, false, &mut |v| {
                    tx.blocking_send(format!("{v}\n").into_bytes()).is_ok()
                });
            });
            let body = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv()
                    .await
                    .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
            });
            Ok((
                [("content-type", "application/json")],
                axum::body::Body::from_stream(body),
            )
                .into_response())
        }
        "top" => {
            let ps_args = param(&pairs, "ps_args").unwrap_or_default().to_string();
            Ok(Json(blocking(move || c.top(&id, &ps_args)).await?).into_response())
        }
        "kill" => {
            let signal = param(&pairs, "signal").unwrap_or_default().to_string();
            blocking(move || c.kill(&id, &signal)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "wait" => {
            // Like dockerd: the status line and headers go out at once (the docker CLI
            // waits for them before it starts the container), the body when it exits.
            let condition = param(&pairs, "condition").unwrap_or_default().to_string();
            let probe = c.clone();
            let probe_id = id.clone();
            blocking(move || probe.inspect(&probe_id).map(|_| ())).await?;
            let (tx, rx) = tokio::sync::oneshot::channel::<Vec<u8>>();
            tokio::task::spawn_blocking(move || {
                let body = match c.wait(&id, &condition, &|| tx.is_closed()) {
                    Ok(code) => serde_json::json!({"StatusCode": code, "Error": null}),
                    Err(e) => {
                        serde_json::json!({"StatusCode": -1, "Error": {"Message": e.message}})
                    }
                };
                let _ = tx.send(body.to_string().into_bytes());
            });
            let body = futures_util::stream::once(async move {
                rx.await
                    .map_err(|_| std::io::Error::other("wait was abandoned"))
            });
            Ok((
                [("content-type", "application/json")],
                axum::body::Body::from_stream(body),
            )
                .into_response())
        }
        "logs" => {
            let req = LogsRequest::from_query(&pairs)?;
            if req.follow {
                return follow_logs(c, id, req).await;
            }
            let (data, tty) = blocking(move || c.logs(&id, req)).await?;
            Ok(([("content-type", crate::hijack::content_type(tty))], data).into_response())
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// `POST /containers/{id}/attach`: answers 101 and, once the container's process runs,
/// connects it with the hijacked connection until the container exits or the client
/// detaches.
pub async fn attach(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    mut req: axum::extract::Request,
) -> Result<Response, ApiError> {
    require_upgrade(&req)?;
    let attach = AttachRequest::from_query(&query_pairs(q.as_deref()));
    let c = b.containers.clone();
    let (io, session) = blocking(move || c.attach(&id, &attach)).await?;
    Ok(crate::hijack::upgrade(&mut req, io, session))
}

/// Hijacking needs `Upgrade: tcp` (the legacy plain-200 hijack is not served).
fn require_upgrade(req: &axum::extract::Request) -> Result<(), ApiError> {
    let wants_upgrade = req
        .headers()
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    if wants_upgrade {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "attach needs a hijackable connection: send Connection: Upgrade and Upgrade: tcp",
        ))
    }
}

fn size(pairs: &[(String, String)]) -> Result<(u16, u16), ApiError> {
    let get = |k: &str| {
        param(pairs, k)
            .unwrap_or("0")
            .parse::<u16>()
            .map_err(|_| ApiError::bad_request(format!("invalid {k}: expected a number of cells")))
    };
    Ok((get("h")?, get("w")?))
}

/// `POST /containers/{id}/resize`.
pub async fn resize(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<StatusCode, ApiError> {
    let (h, w) = size(&query_pairs(q.as_deref()))?;
    let c = b.containers.clone();
    blocking(move || c.resize(&id, h, w)).await?;
    Ok(StatusCode::OK)
}

/// `POST /containers/{id}/exec`.
pub async fn exec_create(
    State(b): State<Backends>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let c = b.containers.clone();
    let exec_id = blocking(move || c.exec_create(&id, &body)).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"Id": exec_id})),
    )
        .into_response())
}

/// `POST /exec/{id}/start`: detached (200, empty) or hijacked (101). Like dockerd, the
/// connection is hijacked before the process starts, so its first output cannot arrive
/// along with the response head (clients that read the raw socket would lose it).
pub async fn exec_start(
    State(b): State<Backends>,
    Path(id): Path<String>,
    mut req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let body = axum::body::to_bytes(std::mem::take(req.body_mut()), 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("read body: {e}")))?;
    let body: serde_json::Value = if body.is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let field = |k: &str| {
        body.as_object()
            .and_then(|o| o.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)))
            .and_then(|(_, v)| v.as_bool())
            .unwrap_or(false)
    };
    let (detach, tty) = (field("Detach"), field("Tty"));
    let c = b.containers.clone();
    if detach {
        blocking(move || c.exec_start(&id, None, tty).map(drop)).await?;
        return Ok(StatusCode::OK.into_response());
    }
    require_upgrade(&req)?;
    // What a client must see as a status: no such exec, one already started.
    let probe = c.clone();
    let probe_id = id.clone();
    let state = blocking(move || probe.exec_inspect(&probe_id)).await?;
    if state["Running"] == true || !state["ExitCode"].is_null() {
        return Err(ApiError::conflict(format!(
            "Error: Exec command {id} is already running"
        )));
    }
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let Ok(upgraded) = upgrade.await else { return };
        let mut client = hyper_util::rt::TokioIo::new(upgraded);
        let attach = AttachRequest {
            stdin: true,
            stdout: true,
            stderr: true,
            logs: false,
            stream: true,
            detach_keys: String::new(),
        };
        let started =
            tokio::task::spawn_blocking(move || c.exec_start(&id, Some(&attach), tty)).await;
        match started {
            Ok(Ok(Some((io, session)))) => crate::hijack::run(client, io, session).await,
            Ok(Ok(None)) => {
                let _ = client.shutdown().await;
            }
            Ok(Err(e)) => {
                // A process that cannot start is reported in the stream; its exit code
                // (126 or 127) is in exec inspect.
                let text = format!("{}\r\n", e.message);
                let _ = client
                    .write_all(&crate::hijack::stdout_frame(tty, text.as_bytes()))
                    .await;
                let _ = client.shutdown().await;
            }
            Err(_) => {
                let _ = client.shutdown().await;
            }
        }
    });
    Ok(crate::hijack::switching_protocols(tty))
}

/// `POST /exec/{id}/resize`.
pub async fn exec_resize(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<StatusCode, ApiError> {
    let (h, w) = size(&query_pairs(q.as_deref()))?;
    let c = b.containers.clone();
    blocking(move || c.exec_resize(&id, h, w)).await?;
    Ok(StatusCode::OK)
}

/// `GET /exec/{id}/json`.
pub async fn exec_inspect(
    State(b): State<Backends>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = b.containers.clone();
    Ok(Json(blocking(move || c.exec_inspect(&id)).await?))
}

/// `POST /containers/{id}/update`.
pub async fn update(
    State(b): State<Backends>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let c = b.containers.clone();
    Ok(Json(blocking(move || c.update(&id, &body)).await?))
}

/// A streaming `logs -f` response: entries as the container writes them.
async fn follow_logs(
    c: std::sync::Arc<dyn ContainerBackend>,
    id: String,
    req: LogsRequest,
) -> Result<Response, ApiError> {
    let probe = c.clone();
    let probe_id = id.clone();
    let tty = blocking(move || probe.has_tty(&probe_id)).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    tokio::task::spawn_blocking(move || {
        let _ = c.follow_logs(&id, req, &mut |chunk| {
            if chunk.is_empty() {
                !tx.is_closed()
            } else {
                tx.blocking_send(chunk).is_ok()
            }
        });
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    Ok((
        [("content-type", crate::hijack::content_type(tty))],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

/// A `Write` that hands its bytes to an HTTP body, in chunks.
struct BodyWriter(tokio::sync::mpsc::Sender<Vec<u8>>);

impl std::io::Write for BodyWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(buf.to_vec())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streams what `produce` writes as a response body (a tar), produced off the async
/// threads; an error after the first bytes can only cut the body short.
pub(crate) fn tar_body(
    produce: impl FnOnce(&mut dyn std::io::Write) -> Result<(), ApiError> + Send + 'static,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    tokio::task::spawn_blocking(move || {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, BodyWriter(tx));
        if let Err(e) = produce(&mut out) {
            tracing::warn!("archive: {}", e.message);
        }
        let _ = std::io::Write::flush(&mut out);
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    (
        [("content-type", "application/x-tar")],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

fn stat_header(stat: &serde_json::Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(stat.to_string())
}

/// `HEAD|GET|PUT /containers/{id}/archive`.
pub async fn archive(
    State(b): State<Backends>,
    method: axum::http::Method,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let path = param(&pairs, "path")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("path is required"))?
        .to_string();
    let c = b.containers.clone();
    if method == axum::http::Method::PUT {
        let copy_uid_gid = crate::query::flag(&pairs, "copyUIDGID");
        let reader = crate::upload::body_reader(body);
        blocking(move || {
            let mut reader = reader;
            let result = c.archive_put(&id, &path, copy_uid_gid, &mut reader);
            // The rest of the upload is read in every case: a tar reader stops at the
            // first end-of-archive block, and a client still sending the padding after
            // it would get a broken pipe instead of our answer.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            result
        })
        .await?;
        return Ok(StatusCode::OK.into_response());
    }
    let (probe, probe_id, probe_path) = (c.clone(), id.clone(), path.clone());
    let stat = blocking(move || probe.archive_stat(&probe_id, &probe_path)).await?;
    let header = stat_header(&stat);
    if method == axum::http::Method::HEAD {
        return Ok(([("x-docker-container-path-stat", header)], StatusCode::OK).into_response());
    }
    let mut resp = tar_body(move |out| c.archive_get(&id, &path, out));
    if let Ok(v) = axum::http::HeaderValue::from_str(&header) {
        resp.headers_mut().insert("x-docker-container-path-stat", v);
    }
    Ok(resp)
}

/// `GET /containers/{id}/stats/history?since=&interval=1s|1m` (Berth's own): what the
/// daemon kept of the container's resource use.
pub async fn stats_history(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let since = match param(&pairs, "since").filter(|s| !s.is_empty()) {
        None => 0,
        Some(v) => berth_types::time::parse_point_in_time(v, now)
            .ok_or_else(|| ApiError::bad_request(format!("invalid since: {v:?}")))?
            .max(0.0) as u64,
    };
    let per_minute = match param(&pairs, "interval").unwrap_or("1s") {
        "1s" | "" => false,
        "1m" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid interval {other:?}: history is kept per second (1s, the last 15 minutes) and per minute (1m, the last 24 hours)"
            )));
        }
    };
    let c = b.containers.clone();
    Ok(Json(
        blocking(move || c.stats_history(&id, since, per_minute)).await?,
    ))
}

/// `GET /containers/{id}/export`.
pub async fn export(
    State(b): State<Backends>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = b.containers.clone();
    let (probe, probe_id) = (c.clone(), id.clone());
    blocking(move || probe.inspect(&probe_id).map(drop)).await?;
    Ok(tar_body(move |out| c.export(&id, out)))
}

/// `POST /commit`.
pub async fn commit(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let pairs = query_pairs(q.as_deref());
    let text = |k: &str| param(&pairs, k).unwrap_or("").to_string();
    let req = CommitRequest {
        container: text("container"),
        repo: text("repo"),
        tag: text("tag"),
        comment: text("comment"),
        author: text("author"),
        pause: crate::query::flag_or(&pairs, "pause", true),
        changes: pairs
            .iter()
            .filter(|(k, _)| k == "changes")
            .flat_map(|(_, v)| v.lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|l| !l.trim().is_empty())
            .collect(),
    };
    if req.container.is_empty() {
        return Err(ApiError::bad_request("container is required"));
    }
    let config = crate::query::json_body(&body)?;
    let c = b.containers.clone();
    let id = blocking(move || c.commit(&req, &config)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({"Id": id}))))
}
