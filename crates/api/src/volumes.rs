//! Volume endpoints: create, list, inspect, remove, prune.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde_json::Value;

use crate::error::ApiError;
use crate::query::{filters, flag, json_body, query_pairs};
use crate::{Backends, blocking};

/// What the volume endpoints need. Methods block; the API runs them off the async threads.
pub trait VolumeBackend: Send + Sync {
    /// `POST /volumes/create`: the volume's JSON.
    fn create(&self, body: &Value) -> Result<Value, ApiError>;
    /// `GET /volumes` with Docker's filter JSON: `{"Volumes", "Warnings"}`.
    fn list(&self, filters: &str) -> Result<Value, ApiError>;
    /// `GET /volumes/{name}`.
    fn inspect(&self, name: &str) -> Result<Value, ApiError>;
    /// `DELETE /volumes/{name}`.
    fn remove(&self, name: &str, force: bool) -> Result<(), ApiError>;
    /// `POST /volumes/prune`: `{"VolumesDeleted", "SpaceReclaimed"}`.
    fn prune(&self, filters: &str) -> Result<Value, ApiError>;
}

/// `POST /volumes/create`.
pub async fn create(
    State(b): State<Backends>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = json_body(&body)?;
    let v = b.volumes.clone();
    Ok((
        StatusCode::CREATED,
        Json(blocking(move || v.create(&body)).await?),
    ))
}

/// `GET /volumes`.
pub async fn list(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let f = filters(q.as_deref());
    let v = b.volumes.clone();
    Ok(Json(blocking(move || v.list(&f)).await?))
}

/// `GET /volumes/{name}`.
pub async fn inspect(
    State(b): State<Backends>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let v = b.volumes.clone();
    Ok(Json(blocking(move || v.inspect(&name)).await?))
}

/// `DELETE /volumes/{name}`.
pub async fn remove(
    State(b): State<Backends>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<StatusCode, ApiError> {
    let force = flag(&query_pairs(q.as_deref()), "force");
    let v = b.volumes.clone();
    blocking(move || v.remove(&name, force)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /volumes/prune`.
pub async fn prune(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let f = filters(q.as_deref());
    let v = b.volumes.clone();
    Ok(Json(blocking(move || v.prune(&f)).await?))
}
