//! `POST /build`: the classic builder's endpoint. The body is the build context (a tar,
//! possibly compressed); the answer streams the build's output as JSON messages.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::Response;

use crate::Backends;
use crate::error::ApiError;
use crate::query::{flag, flag_or, param, query_pairs};

/// What `POST /build` asks for.
#[derive(Debug, Default, Clone)]
pub struct BuildRequest {
    /// `dockerfile`: its path in the context.
    pub dockerfile: String,
    /// `t` (repeatable).
    pub tags: Vec<String>,
    /// `buildargs` (JSON object; a null value means unset).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `labels` (JSON object).
    pub labels: BTreeMap<String, String>,
    /// `target`.
    pub target: Option<String>,
    /// `nocache`.
    pub no_cache: bool,
    /// `pull`.
    pub pull: bool,
    /// `q`.
    pub quiet: bool,
    /// `rm` (default true).
    pub remove: bool,
    /// `forcerm`.
    pub force_remove: bool,
    /// `networkmode`.
    pub network: Option<String>,
    /// `extrahosts` (repeatable or comma-separated).
    pub extra_hosts: Vec<String>,
    /// `platform`.
    pub platform: Option<String>,
    /// `cachefrom` (JSON array of images).
    pub cache_from: Vec<String>,
    /// `remote`: a Git repository or an http(s) URL to take the context from instead of
    /// the body.
    pub remote: Option<String>,
    /// `X-Registry-Config` (credentials for FROM pulls).
    pub registry_config: Option<String>,
}

fn json_map<T: serde::de::DeserializeOwned>(
    raw: Option<&str>,
    what: &str,
) -> Result<BTreeMap<String, T>, ApiError> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(s) => serde_json::from_str(s)
            .map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}"))),
    }
}

fn request(q: Option<&str>, headers: &axum::http::HeaderMap) -> Result<BuildRequest, ApiError> {
    let pairs = query_pairs(q);
    let all = |k: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(key, v)| key == k && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    };
    Ok(BuildRequest {
        remote: param(&pairs, "remote")
            .filter(|r| !r.is_empty())
            .map(str::to_string),
        dockerfile: param(&pairs, "dockerfile")
            .unwrap_or("Dockerfile")
            .to_string(),
        tags: all("t"),
        build_args: json_map(param(&pairs, "buildargs"), "buildargs")?,
        labels: json_map(param(&pairs, "labels"), "labels")?,
        target: param(&pairs, "target")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        no_cache: flag(&pairs, "nocache"),
        pull: flag(&pairs, "pull"),
        quiet: flag(&pairs, "q"),
        remove: flag_or(&pairs, "rm", true),
        force_remove: flag(&pairs, "forcerm"),
        network: param(&pairs, "networkmode")
            .filter(|n| !n.is_empty() && *n != "default")
            .map(str::to_string),
        extra_hosts: all("extrahosts")
            .iter()
            .flat_map(|h| h.split(',').map(str::to_string).collect::<Vec<_>>())
            .collect(),
        platform: param(&pairs, "platform")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        cache_from: match param(&pairs, "cachefrom").filter(|s| !s.is_empty()) {
            Some(s) => serde_json::from_str(s)
                .map_err(|e| ApiError::bad_request(format!("invalid cachefrom: {e}")))?,
            None => Vec::new(),
        },
        registry_config: headers
            .get("x-registry-config")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    })
}

/// `POST /build`.
pub async fn build(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req = request(q.as_deref(), &headers)?;
    let images = b.images.clone();
    let reader = crate::upload::body_reader(body);
    crate::progress::stream(move |tx| {
        Box::pin(async move {
            crate::blocking(move || {
                let mut reader = reader;
                let result = images.build(req, &mut reader, tx);
                // As for imports: read what the client is still sending.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
                result
            })
            .await
        })
    })
    .await
}
