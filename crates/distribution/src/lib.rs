//! # berth-distribution
//!
//! How images travel between Berth and registries: `pull` and `push` over the OCI
//! distribution API (Docker schema 2 and OCI manifests, manifest lists and indexes),
//! `login`, and the credentials and TLS settings they use.
//!
//! ## How a pull goes
//! The manifest (and, for a list, the platform's manifest) and the config are fetched and
//! checked against their digests; then up to `max_concurrent_downloads` layers stream at
//! once, each through one pipeline on a blocking thread: the compressed bytes are hashed
//! as they arrive, decompressed, written to the content store (checked against the
//! config's diff id) and unpacked into a private snapshot directory *at the same time*.
//! Only when both digests match does the snapshot become visible and, after the last
//! layer, the image record (one transaction). A failed or interrupted pull leaves no image
//! and no snapshot; blobs it finished are shared content that garbage collection reclaims
//! if nothing ends up using them.
//!
//! ## How a push goes
//! Layers are kept uncompressed; each is gzipped again as it is uploaded in chunks, unless
//! the registry already has it (`HEAD`) or can link it from another repository (blob
//! mount), which Berth knows from where the layer was pulled from or pushed to before
//! (the `layer_sources` table).
//!
//! **Owns:** the registry client (endpoint discovery, Basic and Bearer authentication,
//! certs.d), pull, push, login, and the layer-source records.
//! **Does not:** parse Dockerfiles, serve HTTP, or keep credentials (clients send them with
//! each request, as docker does).

pub mod auth;
pub mod error;
mod io;
pub mod progress;
mod pull;
mod push;
pub mod registry;
mod sources;

use std::path::PathBuf;
use std::sync::Arc;

use berth_content::Store;
use berth_images::ImageStore;
use berth_metadata::Db;
use berth_snapshots::Snapshotter;

pub use auth::Credentials;
pub use error::{Error, Result};
pub use progress::Progress;
pub use pull::PullRequest;
pub use push::PushRequest;

/// Daemon settings that shape how registries are reached.
#[derive(Debug, Clone)]
pub struct Options {
    /// `certs.d`: per-registry CAs (`*.crt`) and client certificates (`*.cert` + `*.key`)
    /// in `<dir>/<host:port>/`.
    pub certs_dir: PathBuf,
    /// Registries (host[:port] or CIDR) spoken to without TLS checks, or over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Layers downloaded at once per pull.
    pub max_concurrent_downloads: usize,
    /// Layers uploaded at once per push.
    pub max_concurrent_uploads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            certs_dir: PathBuf::from("/etc/berth/certs.d"),
            insecure_registries: Vec::new(),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
        }
    }
}

impl Options {
    fn is_insecure(&self, host: &str) -> bool {
        registry::is_insecure(host, &self.insecure_registries)
    }
}

/// Pull, push and login over Berth's stores.
#[derive(Clone)]
pub struct Distribution {
    images: ImageStore,
    content: Store,
    snapshots: Snapshotter,
    db: Arc<Db>,
    opts: Arc<Options>,
}

impl Distribution {
    /// The service over the daemon's stores.
    pub fn new(
        images: ImageStore,
        content: Store,
        snapshots: Snapshotter,
        db: Arc<Db>,
        opts: Options,
    ) -> Self {
        // reqwest is built without a default TLS provider (aws-lc would double the cold
        // build); ring is ours. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Distribution {
            images,
            content,
            snapshots,
            db,
            opts: Arc::new(opts),
        }
    }

    /// `POST /auth`: checks credentials against a registry (`server` as the docker CLI
    /// sends it: a host, or Docker Hub's index URL).
    pub async fn login(&self, server: &str, creds: Credentials) -> Result<()> {
        let domain = login_domain(server);
        let reg = registry::Registry::connect(&domain, Some(creds), &self.opts).await?;
        reg.check_login().await
    }
}

impl Distribution {
    /// Downloads `url` into the file `dest` (a build's `ADD <url>`), with the system's
    /// roots; a status other than 2xx is an error.
    pub async fn download(&self, url: &str, dest: &std::path::Path) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let client = registry::client(None, false)?;
        let mut resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| Error::Registry(registry::describe(&e)))?;
        if !resp.status().is_success() {
            return Err(Error::NotFound(format!("{url}: {}", resp.status())));
        }
        let io = |e: std::io::Error| Error::Store(format!("{}: {e}", dest.display()));
        let mut f = tokio::fs::File::create(dest).await.map_err(io)?;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Error::Registry(registry::describe(&e)))?
        {
            f.write_all(&chunk).await.map_err(io)?;
        }
        f.flush().await.map_err(io)
    }
}

/// The registry domain of a login server address: `https://index.docker.io/v1/` is Docker
/// Hub, a URL is reduced to its host.
pub fn login_domain(server: &str) -> String {
    let s = server.trim();
    if s.is_empty() || s.contains("index.docker.io") || s == "docker.io" {
        return "docker.io".into();
    }
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    s.split('/').next().unwrap_or(s).to_string()
}
