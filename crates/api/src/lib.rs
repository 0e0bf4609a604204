//! # berth-api
//!
//! The Docker Engine API as Berth serves it, over HTTP/1.1: the route table, the `/v1.NN`
//! version prefix and its negotiation, and Docker's error shape (`{"message": ...}` with
//! Docker's status codes).
//!
//! **Owns:** HTTP details only. Handlers call backend traits ([`SystemBackend`], and more as
//! the engine grows); this crate knows nothing of containers, images or storage.
//! **Called by:** `berthd`, which implements the backends and serves [`app`] on its sockets.

pub mod build;
pub mod containers;
pub mod error;
pub mod events;
pub mod hijack;
pub mod images;
pub mod legacy;
pub mod networks;
pub mod progress;
mod query;
pub mod system;
mod upload;
pub mod version;
pub mod volumes;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::routing::{get, post};

pub use build::BuildRequest;
pub use containers::{AttachRequest, CommitRequest, ContainerBackend, ListRequest, LogsRequest};
pub use error::ApiError;
pub use hijack::{ProcessIo, Session, StdinCodec};
pub use images::{ImageBackend, ImportRequest, PullRequest};
pub use networks::NetworkBackend;
pub use progress::ProgressSender;
pub use system::{SystemBackend, VersionInfo};
pub use version::{ApiVersion, MAX_API_VERSION, MIN_API_VERSION};
pub use volumes::VolumeBackend;

/// Everything the handlers need, shared by all requests.
#[derive(Clone)]
pub struct Backends {
    /// Version and host information.
    pub system: Arc<dyn SystemBackend>,
    /// The image store.
    pub images: Arc<dyn ImageBackend>,
    /// Containers.
    pub containers: Arc<dyn ContainerBackend>,
    /// Networks.
    pub networks: Arc<dyn NetworkBackend>,
    /// Volumes.
    pub volumes: Arc<dyn VolumeBackend>,
    /// The event bus `GET /events` reads.
    pub events: berth_events::Events,
}

/// Runs blocking backend work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("backend task failed: {e}")))?
}

/// The route table, without the version layer (see [`app`]).
pub fn router(backends: Backends) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping_head))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/system/df", get(system::df))
        .route("/events", get(events::events))
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/update", post(containers::update))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/exec", post(containers::exec_create))
        .route("/exec/{id}/start", post(containers::exec_start))
        .route("/exec/{id}/resize", post(containers::exec_resize))
        .route("/exec/{id}/json", get(containers::exec_inspect))
        .route(
            "/containers/{id}",
            axum::routing::delete(containers::remove),
        )
        .route(
            "/containers/{id}/archive",
            get(containers::archive)
                .head(containers::archive)
                .put(containers::archive),
        )
        .route("/containers/{id}/export", get(containers::export))
        .route(
            "/containers/{id}/stats/history",
            get(containers::stats_history),
        )
        .route("/commit", post(containers::commit))
        .route(
            "/containers/{id}/{action}",
            post(containers::action)
                .get(containers::action)
                .delete(containers::remove_link),
        )
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/auth", post(images::login))
        .route("/distribution/{*rest}", get(images::distribution))
        .route("/images/create", post(images::create))
        .route("/images/json", get(images::list))
        .route("/images/get", get(images::save_many))
        .route("/images/load", post(images::load))
        .route("/images/prune", post(images::prune))
        .route("/build", post(build::build))
        .route("/build/prune", post(images::build_prune))
        .route(
            "/images/{*rest}",
            get(images::dispatch)
                .post(images::dispatch)
                .delete(images::dispatch),
        )
        .route("/swarm", get(error::not_in_swarm))
        .route(
            "/swarm/{*rest}",
            get(error::not_in_swarm).post(error::not_in_swarm),
        )
        .route("/nodes", get(error::not_in_swarm))
        .route(
            "/nodes/{*rest}",
            get(error::not_in_swarm)
                .post(error::not_in_swarm)
                .delete(error::not_in_swarm),
        )
        .route("/services", get(error::not_in_swarm))
        .route(
            "/services/{*rest}",
            get(error::not_in_swarm)
                .post(error::not_in_swarm)
                .delete(error::not_in_swarm),
        )
        .route("/tasks", get(error::not_in_swarm))
        .route("/tasks/{*rest}", get(error::not_in_swarm))
        .route("/secrets", get(error::not_in_swarm))
        .route(
            "/secrets/{*rest}",
            get(error::not_in_swarm)
                .post(error::not_in_swarm)
                .delete(error::not_in_swarm),
        )
        .route("/configs", get(error::not_in_swarm))
        .route(
            "/configs/{*rest}",
            get(error::not_in_swarm)
                .post(error::not_in_swarm)
                .delete(error::not_in_swarm),
        )
        .fallback(error::not_found)
        .with_state(backends)
}

/// The version layer's function type.
type StripFn = fn(Request, axum::middleware::Next) -> version::StripFuture;

/// The complete API service: [`router`] behind the version layer.
pub type App = axum::middleware::FromFn<StripFn, (), Router, (Request,)>;

/// The complete service: the version prefix is stripped and checked before routing, so
/// every route answers with and without `/v1.NN`.
pub fn app(backends: Backends) -> App {
    use tower::Layer;
    let strip: StripFn = version::strip_prefix;
    axum::middleware::from_fn(strip).layer(router(backends))
}
