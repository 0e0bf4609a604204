//! Image endpoints: pull and import (`POST /images/create`), push, login (`POST /auth`),
//! list, inspect, tag, remove.
//! Image names may contain `/` and `:`, so `/images/...` paths are dispatched here by
//! their last segment rather than by the router.

use std::io::Read;

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;

use crate::error::ApiError;
use crate::progress::ProgressSender;
use crate::query::{flag, param, query_pairs};
use crate::{Backends, blocking};

/// How an import was asked for.
#[derive(Debug, Default, Clone)]
pub struct ImportRequest {
    /// `repo` parameter (may carry a tag).
    pub repo: Option<String>,
    /// `tag` parameter.
    pub tag: Option<String>,
    /// `changes` parameters, in order.
    pub changes: Vec<String>,
    /// `message` parameter.
    pub message: Option<String>,
}

/// What `POST /images/create?fromImage=` asks for.
#[derive(Debug, Default, Clone)]
pub struct PullRequest {
    /// `fromImage` with `tag` folded in: `name:tag`, `name@digest`, or a bare name when
    /// every tag is wanted.
    pub reference: String,
    /// No tag was given: pull every tag (`docker pull -a`).
    pub all_tags: bool,
    /// `platform`.
    pub platform: Option<String>,
    /// The `X-Registry-Auth` header.
    pub auth: Option<String>,
}

/// What the image endpoints need. Methods block; the API runs them off the async threads.
pub trait ImageBackend: Send + Sync {
    /// Imports a root filesystem archive; returns the image id.
    fn import(
        &self,
        archive: &mut (dyn Read + Send),
        req: ImportRequest,
    ) -> Result<String, ApiError>;
    /// `GET /images/json`.
    fn list(&self, all: bool, filters: &str) -> Result<serde_json::Value, ApiError>;
    /// `GET /images/{name}/json`.
    fn inspect(&self, name: &str) -> Result<serde_json::Value, ApiError>;
    /// `POST /images/{name}/tag`.
    fn tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<(), ApiError>;
    /// `DELETE /images/{name}`.
    fn remove(&self, name: &str, force: bool) -> Result<serde_json::Value, ApiError>;
    /// `POST /images/prune`: `{"ImagesDeleted", "SpaceReclaimed"}`.
    fn prune(&self, filters: &str) -> Result<serde_json::Value, ApiError>;
    /// Pulls from a registry, reporting progress.
    fn pull(
        &self,
        req: PullRequest,
        progress: ProgressSender,
    ) -> BoxFuture<'static, Result<(), ApiError>>;
    /// `POST /images/{name}/push`: one tag, or all of the repository's when `tag` is
    /// `None`; `auth` is the `X-Registry-Auth` header.
    fn push(
        &self,
        name: String,
        tag: Option<String>,
        auth: Option<String>,
        progress: ProgressSender,
    ) -> BoxFuture<'static, Result<(), ApiError>>;
    /// Fails as a save of `names` would, before anything is streamed.
    fn check_save(&self, names: &[String]) -> Result<(), ApiError>;
    /// `GET /images/get`: the images as one archive.
    fn save(&self, names: &[String], out: &mut dyn std::io::Write) -> Result<(), ApiError>;
    /// `POST /images/load`: returns the `Loaded image: ...` lines.
    fn load(
        &self,
        archive: &mut (dyn Read + Send),
        progress: &mut dyn FnMut(serde_json::Value),
    ) -> Result<Vec<String>, ApiError>;
    /// `GET /images/{name}/history`.
    fn history(&self, name: &str) -> Result<serde_json::Value, ApiError>;
    /// `POST /build`: builds the context `context`, reporting output on `progress`.
    fn build(
        &self,
        req: crate::BuildRequest,
        context: &mut (dyn Read + Send),
        progress: ProgressSender,
    ) -> Result<(), ApiError>;
    /// `GET /distribution/{name}/json`: the registry's descriptor and platforms of `name`.
    fn distribution(
        &self,
        name: String,
        auth: Option<String>,
    ) -> BoxFuture<'static, Result<serde_json::Value, ApiError>>;
    /// `POST /auth`: checks credentials with the registry.
    fn login(
        &self,
        body: serde_json::Value,
    ) -> BoxFuture<'static, Result<serde_json::Value, ApiError>>;
}

fn registry_auth(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-registry-auth")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `GET /distribution/{name}/json` (names keep their `/` and `:`).
pub async fn distribution(
    State(b): State<Backends>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let raw = uri.path().strip_prefix("/distribution/").unwrap_or("");
    let name = percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned();
    let name = name
        .strip_suffix("/json")
        .ok_or_else(|| ApiError::not_found("page not found"))?
        .to_string();
    Ok(Json(
        b.images.distribution(name, registry_auth(&headers)).await?,
    ))
}

/// `POST /auth`.
pub async fn login(
    State(b): State<Backends>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid login request: {e}")))?;
    Ok(Json(b.images.login(body).await?))
}

/// The reference a pull names: `fromImage` and `tag` together, as dockerd combines them.
fn pull_reference(from: &str, tag: Option<&str>) -> (String, bool) {
    match tag.filter(|t| !t.is_empty()) {
        Some(t) if t.contains(':') => (format!("{from}@{t}"), false),
        Some(t) => (format!("{from}:{t}"), false),
        None => {
            let last = from.rsplit('/').next().unwrap_or(from);
            (from.to_string(), !last.contains(':') && !from.contains('@'))
        }
    }
}

/// `POST /images/prune`.
pub async fn prune(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let f = crate::query::filters(q.as_deref());
    let images = b.images.clone();
    Ok(Json(blocking(move || images.prune(&f)).await?))
}

/// `POST /build/prune`: Berth has no build cache yet, so there is nothing to free.
pub async fn build_prune() -> Json<serde_json::Value> {
    Json(serde_json::json!({"CachesDeleted": [], "SpaceReclaimed": 0}))
}

/// `POST /images/create`: a pull (`fromImage`) or an import (`fromSrc=-`, the body).
pub async fn create(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(q.as_deref());
    if let Some(from) = param(&pairs, "fromImage") {
        let (reference, all_tags) = pull_reference(from, param(&pairs, "tag"));
        let req = PullRequest {
            reference,
            all_tags,
            platform: param(&pairs, "platform")
                .filter(|p| !p.is_empty())
                .map(str::to_string),
            auth: registry_auth(&headers),
        };
        let images = b.images.clone();
        return crate::progress::stream(move |tx| images.pull(req, tx)).await;
    }
    match param(&pairs, "fromSrc") {
        Some("-") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "importing from {other} is not supported yet: pipe the archive in with docker import -"
            )));
        }
        None => return Err(ApiError::bad_request("fromImage or fromSrc is required")),
    }
    let req = ImportRequest {
        repo: param(&pairs, "repo")
            .map(str::to_string)
            .filter(|s| !s.is_empty()),
        tag: param(&pairs, "tag")
            .map(str::to_string)
            .filter(|s| !s.is_empty()),
        changes: pairs
            .iter()
            .filter(|(k, _)| k == "changes")
            .map(|(_, v)| v.clone())
            .collect(),
        message: param(&pairs, "message").map(str::to_string),
    };
    let reader = crate::upload::body_reader(body);
    let images = b.images.clone();
    let id = blocking(move || {
        let mut reader = reader;
        let result = images.import(&mut reader, req);
        // Read the rest of the upload in every case (after an error, or trailing padding
        // after the tar's end): a client still sending it would otherwise get a broken
        // pipe instead of our answer.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        result
    })
    .await?;
    let line = serde_json::json!({ "status": id }).to_string() + "\r\n";
    Ok(([("content-type", "application/json")], line).into_response())
}

/// `GET /images/json`.
pub async fn list(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let all = flag(&pairs, "all");
    let filters = param(&pairs, "filters").unwrap_or("").to_string();
    let images = b.images.clone();
    Ok(Json(blocking(move || images.list(all, &filters)).await?))
}

/// `GET /images/get?names=a&names=b`.
pub async fn save_many(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let names: Vec<String> = query_pairs(q.as_deref())
        .into_iter()
        .filter(|(k, _)| k == "names")
        .map(|(_, v)| v)
        .collect();
    save(b, names).await
}

async fn save(b: Backends, names: Vec<String>) -> Result<Response, ApiError> {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image named: give at least one"));
    }
    let images = b.images.clone();
    let probe = names.clone();
    let checker = images.clone();
    blocking(move || checker.check_save(&probe)).await?;
    Ok(crate::containers::tar_body(move |out| {
        images.save(&names, out)
    }))
}

/// `POST /images/load`.
pub async fn load(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let quiet = flag(&query_pairs(q.as_deref()), "quiet");
    let reader = crate::upload::body_reader(body);
    let images = b.images.clone();
    let (loaded, mut messages) = blocking(move || {
        let mut reader = reader;
        let mut progress = Vec::new();
        let result = images.load(&mut reader, &mut |m| {
            if !quiet {
                progress.push(m)
            }
        });
        // Read what is left, as for imports: the client may still be sending.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        Ok((result, progress))
    })
    .await?;
    // dockerd answers a bad archive inside the stream, where clients look for it
    // (docker-py raises ImageLoadError from there).
    match loaded {
        Ok(lines) => messages.extend(
            lines
                .iter()
                .map(|l| serde_json::json!({"stream": format!("{l}\n")})),
        ),
        Err(e) => messages
            .push(serde_json::json!({"errorDetail": {"message": e.message}, "error": e.message})),
    };
    // A stream, so the answer goes out chunked as dockerd's does: clients such as
    // docker-py read a chunked answer line by line but parse a sized one as one JSON.
    let lines: Vec<Result<String, std::io::Error>> = messages
        .iter()
        .map(|m| Ok(m.to_string() + "\r\n"))
        .collect();
    let body = Body::from_stream(futures_util::stream::iter(lines));
    Ok(([("content-type", "application/json")], body).into_response())
}

/// Every other `/images/...` path, by method and last segment.
pub async fn dispatch(
    State(b): State<Backends>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Image names keep their `/` and `:` in the path; anything else may be escaped.
    let raw = uri.path().strip_prefix("/images/").unwrap_or("");
    let rest = percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned();
    let pairs = query_pairs(uri.query());
    let images = b.images.clone();
    if method == Method::DELETE {
        let force = flag(&pairs, "force");
        let out = blocking(move || images.remove(&rest, force)).await?;
        return Ok(Json(out).into_response());
    }
    let (name, action) = rest
        .rsplit_once('/')
        .ok_or_else(|| ApiError::not_found("page not found"))?;
    let name = name.to_string();
    match (method, action) {
        (Method::POST, "push") => {
            let tag = param(&pairs, "tag")
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            let auth = registry_auth(&headers);
            crate::progress::stream(move |tx| images.push(name, tag, auth, tx)).await
        }
        (Method::GET, "get") => save(b, vec![name]).await,
        (Method::GET, "history") => {
            Ok(Json(blocking(move || images.history(&name)).await?).into_response())
        }
        (Method::GET, "json") => {
            Ok(Json(blocking(move || images.inspect(&name)).await?).into_response())
        }
        (Method::POST, "tag") => {
            let repo = param(&pairs, "repo").unwrap_or("").to_string();
            let tag = param(&pairs, "tag")
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if repo.is_empty() {
                return Err(ApiError::bad_request(
                    "repository name must have at least one component",
                ));
            }
            blocking(move || images.tag(&name, &repo, tag.as_deref())).await?;
            Ok(StatusCode::CREATED.into_response())
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

#[cfg(test)]
mod tests {
    use super::pull_reference;

    #[test]
    fn pull_references_as_dockerd_combines_them() {
        assert_eq!(
            pull_reference("busybox", Some("1.36")),
            ("busybox:1.36".into(), false)
        );
        assert_eq!(
            pull_reference("localhost:5000/app", Some("sha256:abc")),
            ("localhost:5000/app@sha256:abc".into(), false)
        );
        assert_eq!(
            pull_reference("localhost:5000/app", None),
            ("localhost:5000/app".into(), true)
        );
        assert_eq!(pull_reference("app:v1", None), ("app:v1".into(), false));
    }
}
