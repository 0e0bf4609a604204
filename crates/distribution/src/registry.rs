//! One registry endpoint spoken to over the OCI distribution API (`/v2/`): which scheme
//! it answers on, what authentication it asks for, and the requests pulls and pushes make.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use crate::Options;
use crate::auth::{Challenge, Credentials, TokenResponse};
use crate::error::{Error, Result};

/// The media types a pull accepts for a manifest, most specific first.
pub(crate) const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json";

/// The host requests go to for a reference's domain (Docker Hub's API lives elsewhere).
pub fn api_host(domain: &str) -> &str {
    if domain == "docker.io" || domain == "index.docker.io" {
        "registry-1.docker.io"
    } else {
        domain
    }
}

/// Where credentials for a domain live in the docker client's config.json.
pub fn auth_key(domain: &str) -> String {
    if domain == "docker.io" || domain == "index.docker.io" || domain == "registry-1.docker.io" {
        "https://index.docker.io/v1/".into()
    } else {
        domain.to_string()
    }
}

/// A connected registry.
pub(crate) struct Registry {
    /// The domain as references name it (`localhost:5000`, `docker.io`).
    pub domain: String,
    base: String,
    http: reqwest::Client,
    creds: Option<Credentials>,
    challenge: Challenge,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl Registry {
    /// Finds the registry's endpoint like dockerd: HTTPS (with the CAs and client
    /// certificates of `certs.d/<host>`), then plain HTTP when the registry is insecure.
    pub async fn connect(domain: &str, creds: Option<Credentials>, opts: &Options) -> Result<Self> {
        let host = api_host(domain);
        let insecure = opts.is_insecure(host);
        let https = client(Some(&opts.certs_dir.join(host)), insecure)?;
        let base = format!("https://{host}");
        let (http, base, challenge) = match ping(&https, &base).await {
            Ok(ch) => (https, base, ch),
            Err(_) if insecure => {
                let plain = client(None, true)?;
                let base = format!("http://{host}");
                match ping(&plain, &base).await {
                    Ok(ch) => (plain, base, ch),
                    // Plain HTTP was the last thing tried, as with dockerd.
                    Err(plain_err) => return Err(plain_err),
                }
            }
            Err(e) => return Err(e),
        };
        Ok(Registry {
            domain: domain.to_string(),
            base,
            http,
            creds,
            challenge,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Checks the credentials the way `docker login` does: a token for no scope, or the
    /// `/v2/` endpoint with basic auth.
    pub async fn check_login(&self) -> Result<()> {
        match &self.challenge {
            Challenge::None => Ok(()),
            Challenge::Bearer { .. } => self.fetch_token("").await.map(|_| ()),
            Challenge::Basic => {
                let resp = self.send("", || self.http.get(self.url("/v2/"))).await?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(Error::Unauthorized(
                        "unauthorized: incorrect username or password".into(),
                    ))
                }
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request built by `build` with the authentication the registry wants for
    /// `scope`, fetching a new token once if the cached one is refused.
    pub async fn send(&self, scope: &str, build: impl Fn() -> RequestBuilder) -> Result<Response> {
        for attempt in 0..2 {
            let mut req = build();
            match &self.challenge {
                Challenge::None => {}
                Challenge::Basic => {
                    if let Some(c) = &self.creds {
                        req = req.header(AUTHORIZATION, c.basic());
                    }
                }
                Challenge::Bearer { .. } => {
                    if attempt > 0 {
                        self.tokens.lock().expect("token cache").remove(scope);
                    }
                    req = req.bearer_auth(self.token(scope).await?);
                }
            }
            let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
            let retry = resp.status() == StatusCode::UNAUTHORIZED
                && attempt == 0
                && matches!(self.challenge, Challenge::Bearer { .. });
            if !retry {
                return Ok(resp);
            }
        }
        unreachable!("the second attempt returns")
    }

    async fn token(&self, scope: &str) -> Result<String> {
        if let Some(c) = &self.creds
            && !c.registry_token.is_empty()
        {
            return Ok(c.registry_token.clone());
        }
        if let Some((t, until)) = self.tokens.lock().expect("token cache").get(scope)
            && *until > Instant::now()
        {
            return Ok(t.clone());
        }
        let (token, expires) = self.fetch_token(scope).await?;
        // Renew a little early so a token never expires in the middle of a request.
        let until = Instant::now() + Duration::from_secs(expires.max(60) - 10);
        self.tokens
            .lock()
            .expect("token cache")
            .insert(scope.to_string(), (token.clone(), until));
        Ok(token)
    }

    async fn fetch_token(&self, scope: &str) -> Result<(String, u64)> {
        let Challenge::Bearer { realm, service } = &self.challenge else {
            return Err(Error::Registry("the registry asked for no token".into()));
        };
        let scopes: Vec<(&str, &str)> = scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|s| ("scope", s))
            .collect();
        let creds = self.creds.as_ref();
        let req = match creds.filter(|c| !c.identity_token.is_empty()) {
            Some(c) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", c.identity_token.as_str()),
                    ("service", service.as_str()),
                    ("client_id", "berth"),
                ];
                form.extend(scopes.iter().copied());
                self.http.post(realm).form(&form)
            }
            None => {
                let mut query = vec![("service", service.as_str())];
                query.extend(scopes.iter().copied());
                let mut req = self.http.get(realm).query(&query);
                if let Some(c) = creds.filter(|c| !c.username.is_empty()) {
                    req = req.header(AUTHORIZATION, c.basic());
                }
                req
            }
        };
        let resp = req
            .send()
            .await
            .map_err(|e| Error::Registry(format!("token service {realm}: {}", describe(&e))))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Error::Unauthorized(if creds.is_some() {
                "unauthorized: incorrect username or password".into()
            } else {
                format!(
                    "unauthorized: authentication required: log in first (docker login {})",
                    self.domain
                )
            }));
        }
        if !status.is_success() {
            return Err(Error::Registry(format!(
                "token service {realm} answered {status}"
            )));
        }
        let body: TokenResponse = resp
            .json()
            .await
            .map_err(|e| Error::Registry(format!("token service {realm}: {}", describe(&e))))?;
        let expires = body.expires_in.unwrap_or(60);
        let token = body
            .into_token()
            .ok_or_else(|| Error::Registry(format!("token service {realm} gave no token")))?;
        Ok((token, expires))
    }

    fn unreachable(&self, e: &reqwest::Error) -> Error {
        Error::Registry(format!("registry {}: {}", self.domain, describe(e)))
    }

    /// `GET /v2/<repo>/manifests/<reference>`: the bytes and their media type.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Result<(Bytes, String)> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self
            .send(&pull_scope(repo), || {
                self.http.get(&url).header(ACCEPT, MANIFEST_TYPES)
            })
            .await?;
        let resp = check(resp, || {
            format!("manifest for {}/{repo}:{reference}", self.domain)
        })
        .await?;
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        Ok((body, media_type))
    }

    /// `GET /v2/<repo>/tags/list`.
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let url = self.url(&format!("/v2/{repo}/tags/list"));
        let resp = self.send(&pull_scope(repo), || self.http.get(&url)).await?;
        let resp = check(resp, || format!("repository {}/{repo}", self.domain)).await?;
        let tags: Tags = resp.json().await.map_err(|e| self.unreachable(&e))?;
        Ok(tags.tags.unwrap_or_default())
    }

    /// `GET /v2/<repo>/blobs/<digest>`, as a response to stream.
    pub async fn blob(&self, repo: &str, digest: &str) -> Result<Response> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self.send(&pull_scope(repo), || self.http.get(&url)).await?;
        check(resp, || format!("blob {digest} of {}/{repo}", self.domain)).await
    }

    /// A whole (small) blob: image configs.
    pub async fn blob_bytes(&self, repo: &str, digest: &str) -> Result<Bytes> {
        let resp = self.blob(repo, digest).await?;
        resp.bytes().await.map_err(|e| self.unreachable(&e))
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`.
    pub async fn has_blob(&self, repo: &str, digest: &str) -> Result<bool> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self
            .send(&push_scope(repo), || self.http.head(&url))
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => check(resp, || format!("blob {digest}"))
                .await
                .map(|_| false),
        }
    }

    /// Asks the registry to link a blob it has in `from` into `repo`: `Ok(None)` when it
    /// did, else the upload session it opened instead.
    pub async fn mount(&self, repo: &str, digest: &str, from: &str) -> Result<Option<String>> {
        let url = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        let scope = format!("{} {}", push_scope(repo), pull_scope(from));
        let resp = self
            .send(&scope, || {
                self.http
                    .post(&url)
                    .query(&[("mount", digest), ("from", from)])
                    .header(CONTENT_LENGTH, "0")
            })
            .await?;
        if resp.status() == StatusCode::CREATED {
            return Ok(None);
        }
        let resp = check(resp, || format!("upload to {}/{repo}", self.domain)).await?;
        Ok(Some(self.location(&resp)?))
    }

    /// Opens an upload session; returns its location.
    pub async fn start_upload(&self, repo: &str) -> Result<String> {
        let url = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        let resp = self
            .send(&push_scope(repo), || {
                self.http.post(&url).header(CONTENT_LENGTH, "0")
            })
            .await?;
        let resp = check(resp, || format!("upload to {}/{repo}", self.domain)).await?;
        self.location(&resp)
    }

    /// Sends one chunk at `offset` (`PATCH` with `Content-Range`); returns the session's
    /// next location.
    pub async fn upload_chunk(
        &self,
        repo: &str,
        location: &str,
        offset: u64,
        chunk: Bytes,
    ) -> Result<String> {
        let end = offset + chunk.len() as u64 - 1;
        let resp = self
            .send(&push_scope(repo), || {
                self.http
                    .request(Method::PATCH, location)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_RANGE, format!("{offset}-{end}"))
                    .body(chunk.clone())
            })
            .await?;
        let resp = check(resp, || format!("upload to {}/{repo}", self.domain)).await?;
        self.location(&resp)
    }

    /// Closes an upload session with the blob's digest (and its bytes, for a monolithic
    /// upload).
    pub async fn finish_upload(
        &self,
        repo: &str,
        location: &str,
        digest: &str,
        body: Bytes,
    ) -> Result<()> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={digest}");
        let resp = self
            .send(&push_scope(repo), || {
                self.http
                    .put(&url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone())
            })
            .await?;
        check(resp, || {
            format!("upload of {digest} to {}/{repo}", self.domain)
        })
        .await?;
        Ok(())
    }

    /// `PUT /v2/<repo>/manifests/<tag>`.
    pub async fn put_manifest(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        body: Bytes,
    ) -> Result<()> {
        let url = self.url(&format!("/v2/{repo}/manifests/{tag}"));
        let resp = self
            .send(&push_scope(repo), || {
                self.http
                    .put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(body.clone())
            })
            .await?;
        check(resp, || format!("manifest {}/{repo}:{tag}", self.domain)).await?;
        Ok(())
    }

    /// An upload location made absolute.
    fn location(&self, resp: &Response) -> Result<String> {
        let loc = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Registry("the registry gave no upload location".into()))?;
        Ok(
            if loc.starts_with("http://") || loc.starts_with("https://") {
                loc.to_string()
            } else {
                self.url(loc)
            },
        )
    }
}

fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

/// The registry's error body: `{"errors":[{"code":..,"message":..}]}`.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Passes a successful response; turns any other into Docker's kind of message.
async fn check(resp: Response, what: impl FnOnce() -> String) -> Result<Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body: Option<ErrorBody> = resp.json().await.ok();
    let detail = body
        .and_then(|b| b.errors.into_iter().next())
        .map(|e| format!("{}: {}", e.code.to_lowercase().replace('_', " "), e.message))
        .unwrap_or_else(|| status.to_string());
    let what = what();
    Err(match status {
        StatusCode::NOT_FOUND => Error::NotFound(format!("{what} not found: {detail}")),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Error::Unauthorized(format!("{what}: access denied: {detail}"))
        }
        _ => Error::Registry(format!("{what}: {detail}")),
    })
}

async fn ping(http: &reqwest::Client, base: &str) -> Result<Challenge> {
    let resp = http
        .get(format!("{base}/v2/"))
        .send()
        .await
        .map_err(|e| Error::Registry(describe(&e)))?;
    match resp.status() {
        s if s.is_success() => Ok(Challenge::None),
        StatusCode::UNAUTHORIZED => Ok(resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(Challenge::parse)
            .unwrap_or(Challenge::None)),
        s => Err(Error::Registry(format!(
            "{base}/v2/ answered {s}: not a registry"
        ))),
    }
}

/// An HTTP client for one registry: its own CAs and client certificate from `certs`,
/// and no certificate checks at all when the registry is insecure.
pub(crate) fn client(certs: Option<&Path>, insecure: bool) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(120));
    if insecure {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    if let Some(dir) = certs {
        for file in certs_in(dir)? {
            b = match file {
                CertFile::Ca(pem) => {
                    let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                        Error::BadRequest(format!("CA certificate in {}: {e}", dir.display()))
                    })?;
                    b.add_root_certificate(cert)
                }
                CertFile::Identity(pem) => {
                    let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                        Error::BadRequest(format!("client certificate in {}: {e}", dir.display()))
                    })?;
                    b.identity(id)
                }
            };
        }
    }
    b.build()
        .map_err(|e| Error::Registry(format!("HTTP client: {}", describe(&e))))
}

/// A PEM file of a certs.d directory.
enum CertFile {
    /// A CA to trust (`*.crt`).
    Ca(Vec<u8>),
    /// A client certificate with its key (`X.cert` + `X.key`).
    Identity(Vec<u8>),
}

/// `*.crt` files (CAs) and `X.cert` + `X.key` pairs (client identities) of a certs.d
/// directory, as dockerd reads them.
fn certs_in(dir: &Path) -> Result<Vec<CertFile>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| Error::BadRequest(format!("read {}: {e}", p.display())))
    };
    let mut out = Vec::new();
    let mut names: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    for p in names {
        match p.extension().and_then(|e| e.to_str()) {
            Some("crt") => out.push(CertFile::Ca(read(&p)?)),
            Some("cert") => {
                let key = p.with_extension("key");
                if !key.exists() {
                    return Err(Error::BadRequest(format!(
                        "missing key {} for client certificate {}",
                        key.display(),
                        p.display()
                    )));
                }
                let mut pem = read(&p)?;
                pem.push(b'\n');
                pem.extend(read(&key)?);
                out.push(CertFile::Identity(pem));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A reqwest error with its causes, which hold the useful part ("connection refused",
/// "invalid peer certificate: UnknownIssuer").
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// Whether `host` (with port) is insecure: listed by name or within a listed CIDR, or on
/// the loopback network (as dockerd treats 127.0.0.0/8 and localhost).
pub(crate) fn is_insecure(host: &str, listed: &[String]) -> bool {
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(n, _)| n);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if name == "localhost" {
        return true;
    }
    let ip: Option<IpAddr> = name.parse().ok();
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    listed.iter().any(|l| {
        l == host
            || l == name
            || ip.is_some_and(|ip| {
                l.split_once('/').is_some_and(|(net, len)| {
                    let (Ok(net), Ok(len)) = (net.parse::<IpAddr>(), len.parse::<u32>()) else {
                        return false;
                    };
                    in_cidr(ip, net, len)
                })
            })
    })
}

fn in_cidr(ip: IpAddr, net: IpAddr, len: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_like_dockerd() {
        let listed = vec!["10.0.0.0/8".to_string(), "myreg:5000".to_string()];
        assert!(is_insecure("localhost:5000", &[]));
        assert!(is_insecure("127.0.0.1:5000", &[]));
        assert!(is_insecure("10.1.2.3:443", &listed));
        assert!(is_insecure("myreg:5000", &listed));
        assert!(!is_insecure("myreg:5001", &listed));
        assert!(!is_insecure("192.168.1.1:5000", &listed));
        assert!(!is_insecure("registry-1.docker.io", &listed));
    }
}
