//! `/_ping`, `/version` and `/info`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::Backends;
use crate::version::{MAX_API_VERSION, MIN_API_VERSION};

/// What `/version` reports about the engine, in dockerd's field names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionInfo {
    /// Engine version.
    pub version: String,
    /// Source revision.
    pub git_commit: String,
    /// Toolchain the engine was built with.
    pub go_version: String,
    /// Kernel release.
    pub kernel_version: String,
    /// Build time (RFC 3339), or empty.
    pub build_time: String,
}

/// Host and engine facts the system endpoints need.
pub trait SystemBackend: Send + Sync {
    /// Version facts.
    fn version(&self) -> VersionInfo;
    /// The `/info` document (dockerd's field names).
    fn info(&self) -> serde_json::Value;
    /// `GET /system/df`: images, containers and volumes with their disk use.
    fn df(&self) -> Result<serde_json::Value, crate::ApiError>;
}

fn ping_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    let set = |h: &mut HeaderMap, k: &'static str, v: &str| {
        h.insert(
            k,
            HeaderValue::from_str(v).expect("static header values are valid"),
        );
    };
    set(&mut h, "api-version", &MAX_API_VERSION.to_string());
    set(&mut h, "ostype", "linux");
    set(&mut h, "builder-version", "1");
    set(&mut h, "docker-experimental", "false");
    set(
        &mut h,
        "cache-control",
        "no-cache, no-store, must-revalidate",
    );
    set(&mut h, "pragma", "no-cache");
    h
}

/// `GET /_ping`.
pub async fn ping() -> Response {
    (ping_headers(), "OK").into_response()
}

/// `HEAD /_ping`: the same headers, no body.
pub async fn ping_head() -> Response {
    (ping_headers(), "").into_response()
}

/// `GET /version`.
pub async fn version(State(b): State<Backends>) -> Json<serde_json::Value> {
    let v = b.system.version();
    let arch = std::env::consts::ARCH;
    let arch = if arch == "x86_64" {
        "amd64"
    } else if arch == "aarch64" {
        "arm64"
    } else {
        arch
    };
    Json(serde_json::json!({
        "Platform": {"Name": "Berth"},
        "Components": [{
            "Name": "Engine",
            "Version": v.version,
            "Details": {
                "ApiVersion": MAX_API_VERSION.to_string(),
                "Arch": arch,
                "BuildTime": v.build_time,
                "Experimental": "false",
                "GitCommit": v.git_commit,
                "GoVersion": v.go_version,
                "KernelVersion": v.kernel_version,
                "MinAPIVersion": MIN_API_VERSION.to_string(),
                "Os": "linux"
            }
        }],
        "Version": v.version,
        "ApiVersion": MAX_API_VERSION.to_string(),
        "MinAPIVersion": MIN_API_VERSION.to_string(),
        "GitCommit": v.git_commit,
        "GoVersion": v.go_version,
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": v.kernel_version,
        "BuildTime": v.build_time
    }))
}

/// `GET /info`.
pub async fn info(State(b): State<Backends>) -> Json<serde_json::Value> {
    Json(b.system.info())
}

/// `GET /system/df`.
pub async fn df(State(b): State<Backends>) -> Result<Json<serde_json::Value>, crate::ApiError> {
    let s = b.system.clone();
    Ok(Json(crate::blocking(move || s.df()).await?))
}
