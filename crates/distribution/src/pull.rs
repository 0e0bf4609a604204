//! `docker pull`: manifest resolution, platform selection, and layers that are verified,
//! stored and unpacked while they stream (see the crate doc).

use std::io::{self, Read};
use std::sync::Arc;

use berth_content::Digest;
use berth_images::NewImage;
use berth_images::reference::Reference;
use futures_util::TryStreamExt;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::io::{Counted, Tee};
use crate::progress::{Progress, Throttled};
use crate::registry::Registry;
use crate::sources::{self, LayerSource};
use crate::{Credentials, Distribution};

/// What to pull.
#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    /// `name[:tag]` or `name@digest`.
    pub reference: String,
    /// `os/arch[/variant]`; the host's when `None`.
    pub platform: Option<String>,
}

/// A blob a manifest points at.
#[derive(Debug, Clone)]
pub(crate) struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    fn from_json(v: &Value) -> Result<Self> {
        let digest = v["digest"]
            .as_str()
            .filter(|d| d.parse::<Digest>().is_ok())
            .ok_or_else(|| {
                Error::Registry(format!("manifest entry without a valid digest: {v}"))
            })?;
        Ok(Descriptor {
            media_type: v["mediaType"].as_str().unwrap_or("").to_string(),
            digest: digest.to_string(),
            size: v["size"].as_u64().unwrap_or(0),
        })
    }

    fn short(&self) -> &str {
        let hex = self.digest.strip_prefix("sha256:").unwrap_or(&self.digest);
        &hex[..hex.len().min(12)]
    }
}

/// A platform as manifest lists name them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Platform {
    os: String,
    arch: String,
    variant: Option<String>,
}

impl Platform {
    fn host() -> Self {
        Platform {
            os: "linux".into(),
            arch: berth_images::go_arch().into(),
            variant: None,
        }
    }

    /// `linux/amd64`, `linux/arm/v7`, `linux/arm64/v8`.
    fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || {
            Error::BadRequest(format!(
                "invalid platform {s:?}: expected os/arch or os/arch/variant, e.g. linux/amd64"
            ))
        };
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        Ok(Platform {
            os: parts[0].to_lowercase(),
            arch: normalize_arch(parts[1]).to_string(),
            variant: parts.get(2).map(|v| v.to_lowercase()),
        })
    }

    fn matches(&self, p: &Value) -> bool {
        p["os"].as_str() == Some(self.os.as_str())
            && p["architecture"].as_str().map(normalize_arch) == Some(self.arch.as_str())
            && self
                .variant
                .as_deref()
                .is_none_or(|v| p["variant"].as_str() == Some(v))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

fn is_index(media_type: &str, manifest: &Value) -> bool {
    media_type.contains("manifest.list")
        || media_type.contains("image.index")
        || manifest["manifests"].is_array()
}

impl Distribution {
    /// Pulls an image; returns its id.
    pub async fn pull(
        &self,
        req: &PullRequest,
        creds: Option<Credentials>,
        progress: &Progress,
    ) -> Result<String> {
        let r = Reference::parse(&req.reference)?.with_default_tag();
        let _ingest = self.images.ingest();
        let explicit = req.platform.as_deref().filter(|p| !p.is_empty());
        let want = explicit
            .map(Platform::parse)
            .transpose()?
            .unwrap_or_else(Platform::host);
        let reg = Arc::new(Registry::connect(&r.domain, creds, &self.opts).await?);
        let target = r
            .digest
            .clone()
            .or_else(|| r.tag.clone())
            .unwrap_or_default();
        let (body, media_type) = reg.manifest(&r.path, &target).await?;
        let repo_digest = Digest::of(&body);
        if r.digest
            .as_deref()
            .is_some_and(|d| d != repo_digest.to_string())
        {
            return Err(Error::Verification(format!(
                "manifest verification failed for digest {target}"
            )));
        }
        progress.status_id(&target, format!("Pulling from {}", r.path));
        let mut manifest: Value = parse_json(&body, "manifest")?;
        if is_index(&media_type, &manifest) {
            let entry = manifest["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| want.matches(&m["platform"]))
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "no matching manifest for {want} in the manifest list entries"
                    ))
                })?;
            let entry = Descriptor::from_json(entry)?;
            let (body, _) = reg.manifest(&r.path, &entry.digest).await?;
            if Digest::of(&body).to_string() != entry.digest {
                return Err(Error::Verification(format!(
                    "manifest verification failed for digest {}",
                    entry.digest
                )));
            }
            manifest = parse_json(&body, "manifest")?;
        }
        if manifest["schemaVersion"].as_u64() == Some(1) {
            return Err(Error::BadRequest(format!(
                "{}: Docker Image manifest version 2, schema 1 is no longer supported: push it again with a current client",
                r.familiar()
            )));
        }
        let config = self
            .fetch_config(&reg, &r.path, &manifest["config"])
            .await?;
        let image: Value = parse_json(&self.content.read(&config)?, "image config")?;
        if explicit.is_some() && !want.matches(&serde_json::json!({"os": image["os"], "architecture": image["architecture"], "variant": image["variant"]})) {
            return Err(Error::NotFound(format!(
                "image with reference {} was found but does not match the specified platform: wanted {want}, actual: {}/{}",
                r.familiar(),
                image["os"].as_str().unwrap_or(""),
                image["architecture"].as_str().unwrap_or("")
            )));
        }
        let layers: Vec<Descriptor> = manifest["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Descriptor::from_json)
            .collect::<Result<_>>()?;
        let diff_ids = berth_images::diff_ids(&image);
        if diff_ids.len() != layers.len() {
            return Err(Error::Verification(format!(
                "the image config lists {} layers but the manifest {}",
                diff_ids.len(),
                layers.len()
            )));
        }
        self.fetch_layers(&reg, &r.path, &layers, &diff_ids, progress)
            .await?;
        let mut size = 0;
        for d in &diff_ids {
            size += self.content.size(&d.parse()?)?;
        }
        let up_to_date = self.images.add(&NewImage {
            config: config.clone(),
            layers: diff_ids,
            size,
            tag: r.digest.is_none().then(|| r.normalized()),
            repo_digest: Some(format!("{}@{repo_digest}", r.repository())),
        })?;
        progress.status(format!("Digest: {repo_digest}"));
        progress.status(if up_to_date {
            format!("Status: Image is up to date for {}", r.familiar())
        } else {
            format!("Status: Downloaded newer image for {}", r.familiar())
        });
        Ok(config.to_string())
    }

    /// `GET /distribution/{name}/json`: the manifest (or list) `name` points at in its
    /// registry, and the platforms it offers, without pulling anything.
    pub async fn inspect_remote(&self, name: &str, creds: Option<Credentials>) -> Result<Value> {
        let r = Reference::parse(name)?.with_default_tag();
        let reg = Registry::connect(&r.domain, creds, &self.opts).await?;
        let target = r
            .digest
            .clone()
            .or_else(|| r.tag.clone())
            .unwrap_or_default();
        let (body, media_type) = reg.manifest(&r.path, &target).await?;
        let manifest: Value = parse_json(&body, "manifest")?;
        let media_type = if media_type.is_empty() {
            manifest["mediaType"].as_str().unwrap_or("").to_string()
        } else {
            media_type
        };
        let platforms: Vec<Value> = if is_index(&media_type, &manifest) {
            manifest["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m.get("platform").cloned())
                .collect()
        } else {
            let config = self
                .fetch_config(&reg, &r.path, &manifest["config"])
                .await?;
            let image: Value = parse_json(&self.content.read(&config)?, "image config")?;
            vec![serde_json::json!({
                "architecture": image["architecture"],
                "os": image["os"],
            })]
        };
        Ok(serde_json::json!({
            "Descriptor": {
                "mediaType": media_type,
                "digest": Digest::of(&body).to_string(),
                "size": body.len(),
            },
            "Platforms": platforms,
        }))
    }

    /// `docker pull -a`: every tag of the repository `name`.
    pub async fn pull_all_tags(
        &self,
        name: &str,
        platform: Option<String>,
        creds: Option<Credentials>,
        progress: &Progress,
    ) -> Result<()> {
        let r = Reference::parse(name)?;
        let reg = Registry::connect(&r.domain, creds.clone(), &self.opts).await?;
        let tags = reg.tags(&r.path).await?;
        if tags.is_empty() {
            return Err(Error::NotFound(format!(
                "repository {} has no tags",
                r.familiar()
            )));
        }
        for tag in tags {
            let req = PullRequest {
                reference: format!("{}:{tag}", r.repository()),
                platform: platform.clone(),
            };
            self.pull(&req, creds.clone(), progress).await?;
        }
        Ok(())
    }

    /// The config blob, fetched and verified unless stored.
    async fn fetch_config(&self, reg: &Registry, repo: &str, desc: &Value) -> Result<Digest> {
        let desc = Descriptor::from_json(desc)?;
        let digest: Digest = desc.digest.parse()?;
        if self.content.contains(&digest) {
            return Ok(digest);
        }
        let bytes = reg.blob_bytes(repo, &desc.digest).await?;
        if Digest::of(&bytes) != digest {
            return Err(Error::Verification(format!(
                "image config verification failed for digest {digest}"
            )));
        }
        self.content.put(&bytes)?;
        Ok(digest)
    }

    /// Streams the layers not yet stored, `max_concurrent_downloads` at a time; the first
    /// failure stops the others.
    async fn fetch_layers(
        &self,
        reg: &Arc<Registry>,
        repo: &str,
        layers: &[Descriptor],
        diff_ids: &[String],
        progress: &Progress,
    ) -> Result<()> {
        let chain = berth_snapshots::chain_ids(diff_ids);
        let slots = Arc::new(Semaphore::new(self.opts.max_concurrent_downloads.max(1)));
        let mut tasks = JoinSet::new();
        let mut seen = std::collections::HashSet::new();
        for ((desc, diff_id), chain_id) in layers.iter().zip(diff_ids).zip(&chain) {
            let diff: Digest = diff_id.parse()?;
            if self.content.contains(&diff) || !seen.insert(diff_id.clone()) {
                progress.layer(desc.short(), "Already exists");
                continue;
            }
            progress.layer(desc.short(), "Pulling fs layer");
            let job = LayerJob {
                reg: reg.clone(),
                repo: repo.to_string(),
                desc: desc.clone(),
                diff_id: diff,
                chain_id: chain_id.clone(),
                progress: progress.clone(),
            };
            let this = self.clone();
            let slots = slots.clone();
            tasks.spawn(async move {
                if slots.available_permits() == 0 {
                    job.progress.layer(job.desc.short(), "Waiting");
                }
                let _slot = slots.acquire_owned().await.expect("never closed");
                this.fetch_layer(job).await
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| Error::Store(format!("layer download task: {e}")))??;
        }
        Ok(())
    }

    async fn fetch_layer(&self, job: LayerJob) -> Result<()> {
        let resp = job.reg.blob(&job.repo, &job.desc.digest).await?;
        let total = resp.content_length().unwrap_or(job.desc.size);
        let stream = resp.bytes_stream().map_err(io::Error::other);
        let body = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
        let this = self.clone();
        let id = job.desc.short().to_string();
        let meter = Throttled::new(job.progress.clone(), &id, "Downloading", total);
        let (desc, diff_id, chain_id) = (job.desc.clone(), job.diff_id.clone(), job.chain_id);
        tokio::task::spawn_blocking(move || {
            this.store_layer(body, &desc, &diff_id, &chain_id, &meter)
        })
        .await
        .map_err(|e| Error::Store(format!("layer {id}: {e}")))??;
        job.progress.layer(&id, "Download complete");
        sources::record(
            &self.db,
            job.diff_id.to_string().as_str(),
            LayerSource {
                digest: job.desc.digest.clone(),
                size: job.desc.size,
                media_type: job.desc.media_type.clone(),
                domain: job.reg.domain.clone(),
                repository: job.repo.clone(),
            },
        )?;
        job.progress.layer(&id, "Pull complete");
        Ok(())
    }

    /// One layer's pipeline: hash the compressed bytes, decompress, store the tar and
    /// unpack it at once; publish both only if every digest matches.
    fn store_layer(
        &self,
        body: impl Read,
        desc: &Descriptor,
        diff_id: &Digest,
        chain_id: &str,
        meter: &Throttled,
    ) -> Result<()> {
        let layer_err =
            |e: &dyn std::fmt::Display| Error::Registry(format!("layer {}: {e}", desc.short()));
        let mut counted = Counted::new(body, meter);
        let unpacked = (|| {
            let decompressed = berth_images::decompress(&mut counted).map_err(|e| layer_err(&e))?;
            let mut tee = Tee {
                inner: decompressed,
                out: self.content.writer()?,
            };
            let snapshot = self.snapshots.prepare(chain_id)?;
            if let Some(s) = &snapshot {
                berth_snapshots::unpack::unpack(&mut tee, s.path()).map_err(|e| layer_err(&e))?;
            }
            // The tar's end may be followed by padding the extractor did not read.
            io::copy(&mut tee, &mut io::sink()).map_err(|e| layer_err(&e))?;
            Ok::<_, Error>((tee.out, snapshot))
        })();
        // Read to the end even after a failure: bytes that are not what the manifest
        // promised explain any failure better than what they made the extractor say.
        let drained = io::copy(&mut counted, &mut io::sink());
        if counted.hasher.digest().to_string() != desc.digest && drained.is_ok() {
            return Err(Error::Verification(format!(
                "filesystem layer verification failed for digest {}",
                desc.digest
            )));
        }
        let (blob, snapshot) = unpacked?;
        drained.map_err(|e| layer_err(&e))?;
        blob.commit(Some(diff_id)).map_err(|_| {
            Error::Verification(format!(
                "layer {} does not match the diff id {diff_id} its image config promises",
                desc.digest
            ))
        })?;
        if let Some(s) = snapshot {
            s.commit()?;
        }
        Ok(())
    }
}

struct LayerJob {
    reg: Arc<Registry>,
    repo: String,
    desc: Descriptor,
    diff_id: Digest,
    chain_id: String,
    progress: Progress,
}

fn parse_json(bytes: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::Registry(format!("invalid {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_match_manifest_list_entries() {
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert!(
            p.matches(&serde_json::json!({"os": "linux", "architecture": "arm", "variant": "v7"}))
        );
        assert!(
            !p.matches(&serde_json::json!({"os": "linux", "architecture": "arm", "variant": "v6"}))
        );
        let p = Platform::parse("linux/aarch64").unwrap();
        assert!(p.matches(
            &serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8"})
        ));
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//").is_err());
    }
}
