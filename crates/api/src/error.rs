//! Errors in Docker's shape: a status code and `{"message": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer. Construct it through the helpers so the status matches what dockerd
/// sends for the same kind of failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// One-line message for the user.
    pub message: String,
}

impl ApiError {
    /// 400: the request is malformed or a parameter is invalid.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 404: no such object.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// 409: the request conflicts with the object's state (name in use, image in use, ...).
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::CONFLICT,
            message: message.into(),
        }
    }

    /// 403: the object may not be changed that way (a predefined network).
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }

    /// 500: a real server fault.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "message": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

/// Swarm-mode endpoints: Berth never runs swarm (it runs under Kubernetes through
/// containerd instead), so it answers as dockerd does on a node outside a swarm: 503.
pub async fn not_in_swarm() -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: "This node is not part of a swarm: Berth does not run swarm mode (use Kubernetes through containerd and berth-runtime)".into(),
    }
}

/// The answer for paths no route matches, as dockerd gives it.
pub async fn not_found() -> ApiError {
    ApiError::not_found("page not found")
}
