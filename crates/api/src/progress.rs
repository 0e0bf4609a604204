//! Long operations that report progress (pull, push, load): Docker's stream of JSON
//! messages, one per line, ending with an `error` message if the operation fails after
//! it started talking.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::ApiError;

/// Where a backend sends its progress messages.
pub type ProgressSender = mpsc::UnboundedSender<Value>;

/// Runs `start(progress)` and streams what it reports. A failure before the first message
/// is an HTTP error with its status, as dockerd's are; a later one is the stream's last
/// line (`{"errorDetail": {"message": ...}, "error": ...}`).
pub(crate) async fn stream(
    start: impl FnOnce(ProgressSender) -> BoxFuture<'static, Result<(), ApiError>>,
) -> Result<Response, ApiError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let mut job = tokio::spawn(start(tx));
    let (first, finished) = tokio::select! {
        // Messages first: a job that finished has sent all of its messages already.
        biased;
        m = rx.recv() => (m, None),
        done = &mut job => (None, Some(done)),
    };
    if first.is_none() {
        // Finished without a word: its outcome is the HTTP answer.
        let done = match finished {
            Some(done) => done,
            None => job.await,
        };
        done.map_err(|e| ApiError::internal(format!("task failed: {e}")))??;
        return Ok(([("content-type", "application/json")], "").into_response());
    }
    // Each message goes out as soon as it is sent (a step's "Running in" must not wait
    // for the step's first output).
    let lines =
        futures_util::stream::unfold((first, rx, Some(job)), |(held, mut rx, job)| async move {
            let next = match held {
                Some(m) => Some(m),
                None => rx.recv().await,
            };
            if let Some(m) = next {
                return Some((line(&m), (None, rx, job)));
            }
            // The sender is gone: the job ended. Its error, if any, is the last line.
            let outcome = job?.await;
            let error = match outcome {
                Ok(Ok(())) => return None,
                Ok(Err(e)) => e.message,
                Err(e) => format!("task failed: {e}"),
            };
            let m = json!({"errorDetail": {"message": error}, "error": error});
            Some((line(&m), (None, rx, None)))
        });
    let body = Body::from_stream(futures_util::StreamExt::map(lines, Ok::<_, std::io::Error>));
    Ok(([("content-type", "application/json")], body).into_response())
}

fn line(m: &Value) -> String {
    m.to_string() + "\r\n"
}
