//! API versions: the `/v1.NN` prefix, its range, and negotiation as dockerd does it (a
//! client asks `/_ping`, reads `API-Version`, and downgrades to it).

use std::future::Future;
use std::pin::Pin;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// An Engine API version, `1.NN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    /// Major version (always 1 so far).
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

/// The newest version served; requests without a prefix get this one.
pub const MAX_API_VERSION: ApiVersion = ApiVersion {
    major: 1,
    minor: 47,
};
/// The oldest version served.
pub const MIN_API_VERSION: ApiVersion = ApiVersion {
    major: 1,
    minor: 24,
};

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl std::str::FromStr for ApiVersion {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (major, minor) = s.split_once('.').ok_or(())?;
        Ok(ApiVersion {
            major: major.parse().map_err(|_| ())?,
            minor: minor.parse().map_err(|_| ())?,
        })
    }
}

/// Splits `/v1.NN/rest` into the version and `/rest`; other paths have no version.
pub fn split_prefix(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (version, tail) = rest.split_at(end);
    let looks_like_version =
        version.contains('.') && version.chars().all(|c| c.is_ascii_digit() || c == '.');
    looks_like_version.then_some((version, if tail.is_empty() { "/" } else { tail }))
}

/// Checks a requested version against the served range, with dockerd's messages.
pub fn check(requested: &str) -> Result<ApiVersion, ApiError> {
    let v: ApiVersion = requested
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid API version {requested:?}")))?;
    if v > MAX_API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too new. Maximum supported API version is {MAX_API_VERSION}"
        )));
    }
    if v < MIN_API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok(v)
}

/// The future type of [`strip_prefix`], named so the service type can be spelled out.
pub type StripFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// Middleware run before routing: strips `/v1.NN`, refuses versions outside the range,
/// and records the version in the request's extensions for handlers that vary by version.
pub fn strip_prefix(mut req: Request, next: Next) -> StripFuture {
    Box::pin(async move {
        let path = req.uri().path().to_string();
        let version = match split_prefix(&path) {
            Some((requested, rest)) => match check(requested) {
                Ok(v) => {
                    let query = req
                        .uri()
                        .query()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default();
                    match format!("{rest}{query}").parse() {
                        Ok(uri) => *req.uri_mut() = uri,
                        Err(_) => {
                            return ApiError::bad_request("invalid request path").into_response();
                        }
                    }
                    v
                }
                Err(e) => return e.into_response(),
            },
            None => MAX_API_VERSION,
        };
        req.extensions_mut().insert(version);
        next.run(req).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(
            split_prefix("/v1.47/containers/json"),
            Some(("1.47", "/containers/json"))
        );
        assert_eq!(split_prefix("/v1.24/_ping"), Some(("1.24", "/_ping")));
        assert_eq!(split_prefix("/v1.41"), Some(("1.41", "/")));
        assert_eq!(split_prefix("/volumes/v1.2"), None);
        assert_eq!(split_prefix("/version"), None);
    }

    #[test]
    fn range_and_messages() {
        assert_eq!(
            check("1.40").unwrap(),
            ApiVersion {
                major: 1,
                minor: 40
            }
        );
        assert!(
            check("1.50")
                .unwrap_err()
                .message
                .contains("is too new. Maximum supported API version is 1.47")
        );
        assert!(check("1.12").unwrap_err().message.contains("too old"));
        assert_eq!(
            check("x.y").unwrap_err().status,
            axum::http::StatusCode::BAD_REQUEST
        );
        assert!(
            ApiVersion { major: 1, minor: 9 }
                < ApiVersion {
                    major: 1,
                    minor: 10
                }
        );
    }
}
