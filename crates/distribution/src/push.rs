//! `docker push`: layers the registry lacks are gzipped and uploaded in chunks while
//! they are compressed; layers it has (or can mount from another repository) are not
//! sent at all; then the config and a Docker schema 2 manifest.

use std::io::{self, Read, Write};
use std::sync::Arc;

use berth_content::{Digest, Hasher};
use berth_images::NewImage;
use berth_images::reference::Reference;
use bytes::Bytes;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::io::Counted;
use crate::progress::{Progress, Throttled};
use crate::pull::Descriptor;
use crate::registry::Registry;
use crate::sources::{self, LayerSource};
use crate::{Credentials, Distribution};

/// What to push.
#[derive(Debug, Clone, Default)]
pub struct PushRequest {
    /// The repository (`localhost:5000/app`), possibly with a tag.
    pub name: String,
    /// The tag; every tag of the repository when neither this nor `name` has one.
    pub tag: Option<String>,
}

const MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG_V1: &str = "application/vnd.docker.container.image.v1+json";
const LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Upload chunk size: big enough for few requests, small enough that compression of the
/// next chunk overlaps the upload of this one.
const CHUNK: usize = 8 << 20;

impl Distribution {
    /// Pushes one tag, or every tag of a repository.
    pub async fn push(
        &self,
        req: &PushRequest,
        creds: Option<Credentials>,
        progress: &Progress,
    ) -> Result<()> {
        let r = Reference::parse(&req.name)?;
        if r.digest.is_some() {
            return Err(Error::BadRequest(
                "cannot push a digest reference: push a tag".into(),
            ));
        }
        let tags = match req.tag.clone().filter(|t| !t.is_empty()).or(r.tag.clone()) {
            Some(t) => vec![t],
            None => self.images.tags_in_repository(&r.repository())?,
        };
        if tags.is_empty() {
            return Err(Error::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                Reference {
                    tag: None,
                    ..r.clone()
                }
                .familiar()
            )));
        }
        progress.status(format!(
            "The push refers to repository [{}]",
            r.repository()
        ));
        let reg = Arc::new(Registry::connect(&r.domain, creds, &self.opts).await?);
        for tag in tags {
            self.push_tag(&reg, &r, &tag, progress).await?;
        }
        Ok(())
    }

    async fn push_tag(
        &self,
        reg: &Arc<Registry>,
        r: &Reference,
        tag: &str,
        progress: &Progress,
    ) -> Result<()> {
        let tagged = Reference {
            tag: Some(tag.to_string()),
            ..r.clone()
        };
        let rec = self.images.resolve(&tagged.normalized()).map_err(|_| {
            Error::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                tagged.familiar()
            ))
        })?;
        let config = self.images.config_bytes(&rec)?;
        let layers = self
            .push_layers(reg, &r.path, &rec.layers, progress)
            .await?;
        if !reg.has_blob(&r.path, &rec.id).await? {
            let location = reg.start_upload(&r.path).await?;
            reg.finish_upload(&r.path, &location, &rec.id, Bytes::from(config.clone()))
                .await?;
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {"mediaType": CONFIG_V1, "size": config.len(), "digest": rec.id},
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.media_type, "size": l.size, "digest": l.digest
            })).collect::<Vec<_>>(),
        });
        let body = serde_json::to_vec_pretty(&manifest).expect("json values serialize");
        let digest = Digest::of(&body);
        let size = body.len();
        reg.put_manifest(&r.path, tag, MANIFEST_V2, Bytes::from(body))
            .await?;
        progress.status(format!("{tag}: digest: {digest} size: {size}"));
        progress.aux(json!({"Tag": tag, "Digest": digest.to_string(), "Size": size}));
        self.images.add(&NewImage {
            config: rec.id.parse()?,
            layers: rec.layers.clone(),
            size: rec.size,
            tag: None,
            repo_digest: Some(format!("{}@{digest}", r.repository())),
        })?;
        Ok(())
    }

    /// Every layer made present in the registry, `max_concurrent_uploads` at a time; the
    /// descriptors come back in layer order.
    async fn push_layers(
        &self,
        reg: &Arc<Registry>,
        repo: &str,
        diff_ids: &[String],
        progress: &Progress,
    ) -> Result<Vec<Descriptor>> {
        let slots = Arc::new(Semaphore::new(self.opts.max_concurrent_uploads.max(1)));
        let mut tasks = JoinSet::new();
        let mut unique: Vec<&String> = Vec::new();
        for d in diff_ids {
            if !unique.contains(&d) {
                unique.push(d);
                progress.layer(short(d), "Preparing");
            }
        }
        for (i, diff_id) in unique.iter().enumerate() {
            let (this, reg, slots) = (self.clone(), reg.clone(), slots.clone());
            let (repo, diff_id, progress) =
                (repo.to_string(), diff_id.to_string(), progress.clone());
            tasks.spawn(async move {
                if slots.available_permits() == 0 {
                    progress.layer(short(&diff_id), "Waiting");
                }
                let _slot = slots.acquire_owned().await.expect("never closed");
                let desc = this.push_layer(&reg, &repo, &diff_id, &progress).await?;
                Ok::<_, Error>((i, desc))
            });
        }
        let mut found: Vec<Option<Descriptor>> = vec![None; unique.len()];
        while let Some(done) = tasks.join_next().await {
            let (i, desc) = done.map_err(|e| Error::Store(format!("layer upload task: {e}")))??;
            found[i] = Some(desc);
        }
        Ok(diff_ids
            .iter()
            .map(|d| {
                let i = unique
                    .iter()
                    .position(|u| *u == d)
                    .expect("every layer is unique'd");
                found[i].clone().expect("every task reported")
            })
            .collect())
    }

    /// One layer: already there, mounted from a repository that has it, or uploaded.
    async fn push_layer(
        &self,
        reg: &Registry,
        repo: &str,
        diff_id: &str,
        progress: &Progress,
    ) -> Result<Descriptor> {
        let id = short(diff_id);
        // Only gzip copies can be named in a schema 2 manifest.
        let known: Vec<LayerSource> = sources::lookup(&self.db, diff_id, &reg.domain)?
            .into_iter()
            .filter(|s| s.media_type == LAYER_GZIP || s.media_type == OCI_LAYER_GZIP)
            .collect();
        let descriptor = |s: &LayerSource| Descriptor {
            media_type: LAYER_GZIP.into(),
            digest: s.digest.clone(),
            size: s.size,
        };
        for s in &known {
            if reg.has_blob(repo, &s.digest).await? {
                progress.layer(id, "Layer already exists");
                return Ok(descriptor(s));
            }
        }
        for s in known.iter().filter(|s| s.repository != repo) {
            if let Ok(None) = reg.mount(repo, &s.digest, &s.repository).await {
                self.remember(diff_id, s, reg, repo)?;
                progress.layer(id, format!("Mounted from {}", s.repository));
                return Ok(descriptor(s));
            }
        }
        let pushed = self.upload_layer(reg, repo, diff_id, progress).await?;
        self.remember(diff_id, &pushed, reg, repo)?;
        progress.layer(id, "Pushed");
        Ok(descriptor(&pushed))
    }

    fn remember(&self, diff_id: &str, s: &LayerSource, reg: &Registry, repo: &str) -> Result<()> {
        sources::record(
            &self.db,
            diff_id,
            LayerSource {
                domain: reg.domain.clone(),
                repository: repo.to_string(),
                ..s.clone()
            },
        )
    }

    /// Gzips the stored layer on a blocking thread and uploads the output in chunks as it
    /// comes; the digest is known, and sent, at the end.
    async fn upload_layer(
        &self,
        reg: &Registry,
        repo: &str,
        diff_id: &str,
        progress: &Progress,
    ) -> Result<LayerSource> {
        let digest: Digest = diff_id.parse()?;
        let blob = self.content.open_blob(&digest)?;
        let total = self.content.size(&digest)?;
        let mut location = reg.start_upload(repo).await?;
        let (tx, mut rx) = mpsc::channel::<Bytes>(2);
        let meter = Throttled::new(progress.clone(), short(diff_id), "Pushing", total);
        let compressor = tokio::task::spawn_blocking(move || compress_into(blob, &meter, tx));
        let mut offset = 0u64;
        while let Some(chunk) = rx.recv().await {
            let len = chunk.len() as u64;
            location = reg.upload_chunk(repo, &location, offset, chunk).await?;
            offset += len;
        }
        let (compressed, size) = compressor
            .await
            .map_err(|e| Error::Store(format!("compress layer: {e}")))?
            .map_err(|e| Error::Store(format!("compress layer {}: {e}", short(diff_id))))?;
        reg.finish_upload(repo, &location, &compressed.to_string(), Bytes::new())
            .await?;
        Ok(LayerSource {
            digest: compressed.to_string(),
            size,
            media_type: LAYER_GZIP.into(),
            domain: reg.domain.clone(),
            repository: repo.to_string(),
        })
    }
}

/// Gzips `layer` into chunks sent down `tx`; returns the compressed digest and size.
fn compress_into(
    layer: impl Read,
    meter: &Throttled,
    tx: mpsc::Sender<Bytes>,
) -> io::Result<(Digest, u64)> {
    let mut input = Counted::new(layer, meter);
    let sink = ChunkSink {
        tx,
        buf: Vec::with_capacity(CHUNK),
        hasher: Hasher::new(),
        size: 0,
    };
    // Level 1: zlib-rs's quick deflate keeps compression off the critical path of a push
    // (measured: level 6 made push as slow as dockerd's), for output a few percent larger.
    let mut gz = flate2::write::GzEncoder::new(sink, flate2::Compression::fast());
    io::copy(&mut input, &mut gz)?;
    let mut sink = gz.finish()?;
    sink.send()?;
    Ok((sink.hasher.digest(), sink.size))
}

/// Collects compressed bytes into chunks, hashing them on the way.
struct ChunkSink {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    hasher: Hasher,
    size: u64,
}

impl ChunkSink {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Bytes::from(chunk))
            .map_err(|_| io::Error::other("the upload stopped"))
    }
}

impl Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.hasher.update(data);
        self.size += data.len() as u64;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}
