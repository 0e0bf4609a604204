//! Network endpoints: list, inspect, create, remove, prune, connect, disconnect.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde_json::Value;

use crate::error::ApiError;
use crate::query::{filters, json_body};
use crate::{Backends, blocking};

/// What the network endpoints need. Methods block; the API runs them off the async threads.
pub trait NetworkBackend: Send + Sync {
    /// `GET /networks` with Docker's filter JSON.
    fn list(&self, filters: &str) -> Result<Value, ApiError>;
    /// `GET /networks/{id}`.
    fn inspect(&self, id: &str) -> Result<Value, ApiError>;
    /// `POST /networks/create`: returns `{"Id", "Warning"}`.
    fn create(&self, body: &Value) -> Result<Value, ApiError>;
    /// `DELETE /networks/{id}`.
    fn remove(&self, id: &str) -> Result<(), ApiError>;
    /// `POST /networks/prune`: returns `{"NetworksDeleted"}`.
    fn prune(&self, filters: &str) -> Result<Value, ApiError>;
    /// `POST /networks/{id}/connect`.
    fn connect(&self, id: &str, body: &Value) -> Result<(), ApiError>;
    /// `POST /networks/{id}/disconnect`.
    fn disconnect(&self, id: &str, body: &Value) -> Result<(), ApiError>;
}

/// `GET /networks`.
pub async fn list(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let f = filters(q.as_deref());
    let n = b.networks.clone();
    Ok(Json(blocking(move || n.list(&f)).await?))
}

/// `GET /networks/{id}`.
pub async fn inspect(
    State(b): State<Backends>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let n = b.networks.clone();
    Ok(Json(blocking(move || n.inspect(&id)).await?))
}

/// `POST /networks/create`.
pub async fn create(
    State(b): State<Backends>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = json_body(&body)?;
    let n = b.networks.clone();
    let v = blocking(move || n.create(&body)).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// `DELETE /networks/{id}`.
pub async fn remove(
    State(b): State<Backends>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let n = b.networks.clone();
    blocking(move || n.remove(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /networks/prune`.
pub async fn prune(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let f = filters(q.as_deref());
    let n = b.networks.clone();
    Ok(Json(blocking(move || n.prune(&f)).await?))
}

/// `POST /networks/{id}/connect`.
pub async fn connect(
    State(b): State<Backends>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let body = json_body(&body)?;
    let n = b.networks.clone();
    blocking(move || n.connect(&id, &body)).await?;
    Ok(StatusCode::OK)
}

/// `POST /networks/{id}/disconnect`.
pub async fn disconnect(
    State(b): State<Backends>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let body = json_body(&body)?;
    let n = b.networks.clone();
    blocking(move || n.disconnect(&id, &body)).await?;
    Ok(StatusCode::OK)
}
