//! # berth-images
//!
//! The image store: images as Docker sees them (an id that is the digest of the image
//! config, layers by digest, tags), kept in the content store (config and layer blobs) and
//! the metadata store (image records and the tag → id table, changed in one transaction).
//!
//! **Owns:** import from a tar stream, save/load archives, tag, untag/remove with
//! Docker's conflict rules, listing with filters, history, and Docker's inspect shape.
//! **Does not:** unpack layers into snapshots, talk to registries, or know HTTP.

mod archive;
mod changes;
pub mod error;
mod filters;
pub mod reference;

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;

use berth_content::{Digest, Store};
use berth_metadata::{Db, PrefixMatch, Table};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub use error::{Error, Result};
pub use filters::Filters;
use reference::Reference;

/// What the metadata store keeps per image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `sha256:` digest of the config blob.
    pub id: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Total uncompressed size of the layers.
    pub size: u64,
    /// Layer blob digests, bottom first (uncompressed tars: digest = diff id).
    pub layers: Vec<String>,
    /// When a tag last pointed here.
    pub last_tag_time: Option<String>,
    /// `repo@sha256:...` of the manifests this image was pulled by or pushed as.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// The image this one was made from (commit, build step).
    #[serde(default)]
    pub parent: Option<String>,
}

/// An image whose blobs are already in the content store (a pull, a load).
#[derive(Debug, Clone)]
pub struct NewImage {
    /// The config blob's digest: the image id.
    pub config: Digest,
    /// Uncompressed layer digests (diff ids), bottom first.
    pub layers: Vec<String>,
    /// Their total size.
    pub size: u64,
    /// A normalized or familiar `repo:tag` to point at it.
    pub tag: Option<String>,
    /// `repo@sha256:...` it came by.
    pub repo_digest: Option<String>,
}

const IMAGES: Table<ImageRecord> = Table::new("images");
/// Normalized reference → image id.
const REFS: Table<String> = Table::new("image_refs");

/// Options of [`ImageStore::import`].
#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    /// `repo[:tag]` to tag the new image with.
    pub reference: Option<String>,
    /// `--change` lines.
    pub changes: Vec<String>,
    /// Commit message (the config's comment).
    pub message: Option<String>,
    /// Where the archive came from, for the history entry (`-` for the request body).
    pub source: String,
}

/// What `docker commit` asks for.
#[derive(Debug, Default, Clone)]
pub struct CommitOptions {
    /// `repo[:tag]` for the new image.
    pub reference: Option<String>,
    /// `--change` lines, applied over the container's config.
    pub changes: Vec<String>,
    /// `-m`.
    pub comment: String,
    /// `-a`.
    pub author: String,
    /// The history line (`created_by`): the container's command.
    pub created_by: String,
}

/// The container config keys an image config keeps.
const IMAGE_CONFIG_KEYS: &[&str] = &[
    "User",
    "ExposedPorts",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Entrypoint",
    "Volumes",
    "WorkingDir",
    "Labels",
    "OnBuild",
    "StopSignal",
    "Shell",
];

/// The image store.
#[derive(Clone)]
pub struct ImageStore {
    content: Store,
    db: Arc<Db>,
    /// Pulls and loads in flight: they store blobs before the image that references them
    /// exists, so blob deletion waits for none to be running (see [`ImageStore::ingest`]).
    ingesting: Arc<std::sync::Mutex<usize>>,
}

/// Marks an ingest (pull, load) in flight while alive; see [`ImageStore::ingest`].
pub struct IngestGuard {
    count: Arc<std::sync::Mutex<usize>>,
}

impl Drop for IngestGuard {
    fn drop(&mut self) {
        *self.count.lock().expect("ingest count") -= 1;
    }
}

impl ImageStore {
    /// A store over shared content and metadata stores.
    pub fn new(content: Store, db: Arc<Db>) -> Self {
        ImageStore {
            content,
            db,
            ingesting: Arc::default(),
        }
    }

    /// Declares an ingest: while the guard lives, removals leave blobs in place (for the
    /// garbage collection at the next start) instead of deleting ones the ingest may have
    /// just found present and counts on.
    pub fn ingest(&self) -> IngestGuard {
        *self.ingesting.lock().expect("ingest count") += 1;
        IngestGuard {
            count: self.ingesting.clone(),
        }
    }

    /// Deletes every blob no image references (configs and layers), unless an ingest is in
    /// flight. Returns how many blobs and bytes were freed.
    pub fn collect_garbage(&self) -> Result<(usize, u64)> {
        let busy = self.ingesting.lock().expect("ingest count");
        if *busy > 0 {
            return Ok((0, 0));
        }
        let mut keep = std::collections::HashSet::new();
        for (_, rec) in self.db.read(|tx| tx.list(&IMAGES))? {
            keep.insert(rec.id.clone());
            keep.extend(rec.layers);
        }
        let (mut n, mut bytes) = (0, 0);
        for d in self.content.list()? {
            if !keep.contains(&d.to_string()) {
                bytes += self.content.size(&d).unwrap_or(0);
                self.content.delete(&d)?;
                n += 1;
            }
        }
        Ok((n, bytes))
    }

    /// The layer lists (diff ids, bottom first) of every image.
    pub fn all_layers(&self) -> Result<Vec<Vec<String>>> {
        Ok(self
            .db
            .read(|tx| tx.list(&IMAGES))?
            .into_iter()
            .map(|(_, r)| r.layers)
            .collect())
    }

    /// Imports a root filesystem tar (plain, gzip or zstd) as a one-layer image and tags it
    /// if asked. Everything is validated before the image becomes visible.
    pub fn import(&self, input: impl Read, opts: &ImportOptions) -> Result<String> {
        let reference = opts
            .reference
            .as_deref()
            .filter(|r| !r.is_empty())
            .map(|r| Reference::parse(r).map(Reference::with_default_tag))
            .transpose()?;
        let mut config_obj = Map::new();
        changes::apply(&mut config_obj, &opts.changes)?;
        let _ingest = self.ingest();
        let (layer, size) = self.store_layer(input)?;
        let now = berth_types::time::now_rfc3339();
        let comment = opts
            .message
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("Imported from {}", opts.source));
        let config = json!({
            "architecture": go_arch(),
            "os": "linux",
            "created": now,
            "comment": comment,
            "config": config_obj,
            "rootfs": {"type": "layers", "diff_ids": [layer.to_string()]},
            "history": [{"created": now, "comment": comment}]
        });
        let config_bytes = serde_json::to_vec(&config).expect("json values serialize");
        let id = self.content.put(&config_bytes)?;
        let record = ImageRecord {
            id: id.to_string(),
            created: now.clone(),
            size,
            layers: vec![layer.to_string()],
            last_tag_time: reference.as_ref().map(|_| now),
            repo_digests: Vec::new(),
            parent: None,
        };
        self.db.write(|tx| -> Result<()> {
            tx.put(&IMAGES, id.hex(), &record)?;
            if let Some(r) = &reference {
                tx.put(&REFS, &r.normalized(), &id.to_string())?;
            }
            Ok(())
        })?;
        Ok(id.to_string())
    }

    /// `docker commit`: a new image of `base`'s layers plus `layer` (an uncompressed tar
    /// with OCI whiteouts), configured from the container's `config` with `changes`.
    pub fn commit(
        &self,
        base: &str,
        layer: impl Read,
        config: &Value,
        opts: &CommitOptions,
    ) -> Result<String> {
        let reference = opts
            .reference
            .as_deref()
            .filter(|r| !r.is_empty())
            .map(|r| Reference::parse(r).map(Reference::with_default_tag))
            .transpose()?;
        let base_rec = self.resolve(base)?;
        let base_config = self.config(&base_rec)?;
        let mut config_obj: Map<String, Value> = config
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| IMAGE_CONFIG_KEYS.contains(&k.as_str()) && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        changes::apply(&mut config_obj, &opts.changes)?;
        let _ingest = self.ingest();
        let (layer, size) = self.store_layer(layer)?;
        let now = berth_types::time::now_rfc3339();
        let mut diff_ids = base_config["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        diff_ids.push(json!(layer.to_string()));
        let mut history = base_config["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut entry = json!({"created": now, "created_by": opts.created_by});
        if !opts.comment.is_empty() {
            entry["comment"] = json!(opts.comment);
        }
        if !opts.author.is_empty() {
            entry["author"] = json!(opts.author);
        }
        history.push(entry);
        let mut image = json!({
            "architecture": base_config["architecture"],
            "os": base_config["os"],
            "created": now,
            "config": config_obj,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history
        });
        if !opts.comment.is_empty() {
            image["comment"] = json!(opts.comment);
        }
        if !opts.author.is_empty() {
            image["author"] = json!(opts.author);
        }
        image["container_config"] = container_config(&image["config"], &opts.created_by);
        let config_bytes = serde_json::to_vec(&image).expect("json values serialize");
        let id = self.content.put(&config_bytes)?;
        let mut layers = base_rec.layers.clone();
        layers.push(layer.to_string());
        let record = ImageRecord {
            id: id.to_string(),
            created: now.clone(),
            size: base_rec.size + size,
            layers,
            last_tag_time: reference.as_ref().map(|_| now),
            repo_digests: Vec::new(),
            parent: Some(base_rec.id.clone()),
        };
        self.db.write(|tx| -> Result<()> {
            tx.put(&IMAGES, id.hex(), &record)?;
            if let Some(r) = &reference {
                tx.put(&REFS, &r.normalized(), &id.to_string())?;
            }
            Ok(())
        })?;
        Ok(id.to_string())
    }

    /// Records an image whose config and layer blobs are stored (validated by the
    /// caller), tags it and notes its repo digest, in one transaction. Returns whether
    /// the tag (or, without one, the repo digest) already pointed at this image (Docker's
    /// "Image is up to date").
    pub fn add(&self, image: &NewImage) -> Result<bool> {
        let tag = image
            .tag
            .as_deref()
            .map(|r| Reference::parse(r).map(Reference::with_default_tag))
            .transpose()?;
        let config: Value = serde_json::from_slice(&self.content.read(&image.config)?)
            .map_err(|e| Error::InvalidInput(format!("image config {}: {e}", image.config)))?;
        let created = config["created"]
            .as_str()
            .unwrap_or("0001-01-01T00:00:00Z")
            .to_string();
        let id = image.config.to_string();
        self.db.write(|tx| -> Result<bool> {
            let mut rec = tx.get(&IMAGES, image.config.hex())?.unwrap_or(ImageRecord {
                id: id.clone(),
                created,
                size: image.size,
                layers: image.layers.clone(),
                last_tag_time: None,
                repo_digests: Vec::new(),
                parent: None,
            });
            let mut up_to_date = false;
            if let Some(t) = &tag {
                up_to_date = tx.get(&REFS, &t.normalized())?.as_deref() == Some(id.as_str());
                if !up_to_date {
                    rec.last_tag_time = Some(berth_types::time::now_rfc3339());
                }
                tx.put(&REFS, &t.normalized(), &id)?;
            }
            if tag.is_none() {
                up_to_date = image
                    .repo_digest
                    .as_ref()
                    .is_some_and(|d| rec.repo_digests.contains(d));
            }
            if let Some(d) = &image.repo_digest {
                // One digest per repository, as Docker keeps them: the newest wins.
                let repo = d.split_once('@').map_or(d.as_str(), |(r, _)| r);
                rec.repo_digests
                    .retain(|x| x.split_once('@').map_or(x.as_str(), |(r, _)| r) != repo);
                rec.repo_digests.push(d.clone());
            }
            tx.put(&IMAGES, image.config.hex(), &rec)?;
            Ok(up_to_date)
        })
    }

    /// The stored config blob of an image, byte for byte (its digest is the image id).
    pub fn config_bytes(&self, rec: &ImageRecord) -> Result<Vec<u8>> {
        Ok(self.content.read(&rec.id.parse()?)?)
    }

    /// Every normalized `repo:tag` pointing at an image.
    pub fn tags_of(&self, rec: &ImageRecord) -> Result<Vec<String>> {
        let refs = self.db.read(|tx| tx.list(&REFS))?;
        Ok(Self::refs_of(&refs, &rec.id))
    }

    /// The tags of a normalized repository (`localhost:5000/app` → `["v1", "latest"]`).
    pub fn tags_in_repository(&self, repository: &str) -> Result<Vec<String>> {
        let refs = self.db.read(|tx| tx.list(&REFS))?;
        let prefix = format!("{repository}:");
        Ok(refs
            .into_iter()
            .filter_map(|(k, _)| k.strip_prefix(&prefix).map(str::to_string))
            .filter(|t| !t.contains(['/', '@']))
            .collect())
    }

    /// A build step that changes only the config (ENV, CMD, LABEL...): a new image with
    /// `parent`'s layers (none for `scratch`), the container config `config`, and a
    /// history entry without a layer.
    pub fn derive(
        &self,
        parent: Option<&str>,
        config: &Value,
        created_by: &str,
        author: &str,
    ) -> Result<String> {
        let now = berth_types::time::now_rfc3339();
        let (base, base_rec) = match parent {
            Some(p) => {
                let rec = self.resolve(p)?;
                (self.config(&rec)?, Some(rec))
            }
            None => (
                json!({
                    "architecture": go_arch(),
                    "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": []},
                    "history": []
                }),
                None,
            ),
        };
        let mut image = base.clone();
        image["created"] = json!(now);
        image["config"] = config.clone();
        if !author.is_empty() {
            image["author"] = json!(author);
        }
        let mut history = base["history"].as_array().cloned().unwrap_or_default();
        history.push(json!({"created": now, "created_by": created_by, "empty_layer": true}));
        image["history"] = json!(history);
        if let Some(o) = image.as_object_mut() {
            o.remove("container");
        }
        image["container_config"] = container_config(config, created_by);
        let bytes = serde_json::to_vec(&image).expect("json values serialize");
        let _ingest = self.ingest();
        let id = self.content.put(&bytes)?;
        let record = ImageRecord {
            id: id.to_string(),
            created: now,
            size: base_rec.as_ref().map_or(0, |r| r.size),
            layers: base_rec
                .as_ref()
                .map(|r| r.layers.clone())
                .unwrap_or_default(),
            last_tag_time: None,
            repo_digests: Vec::new(),
            parent: base_rec.map(|r| r.id),
        };
        self.db.write(|tx| -> Result<()> {
            if tx.get(&IMAGES, id.hex())?.is_none() {
                tx.put(&IMAGES, id.hex(), &record)?;
            }
            Ok(())
        })?;
        Ok(id.to_string())
    }

    /// The full image config of an image (architecture, config, rootfs, history).
    pub fn image_config(&self, name: &str) -> Result<(ImageRecord, Value)> {
        let rec = self.resolve(name)?;
        let config = self.config(&rec)?;
        Ok((rec, config))
    }

    fn store_layer(&self, input: impl Read) -> Result<(Digest, u64)> {
        let mut reader = decompress(input)?;
        let mut w = self.content.writer()?;
        let mut first_block = Vec::with_capacity(512);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| Error::Io(format!("read archive: {e}")))?;
            if n == 0 {
                break;
            }
            if first_block.len() < 512 {
                let take = (512 - first_block.len()).min(n);
                first_block.extend_from_slice(&buf[..take]);
            }
            w.write_all(&buf[..n])
                .map_err(|e| Error::Io(format!("store layer: {e}")))?;
        }
        if !looks_like_tar(&first_block) {
            return Err(Error::InvalidInput(
                "the archive is not a tar file (plain, gzip, zstd, bzip2 or xz)".into(),
            ));
        }
        let size = w.size();
        Ok((w.commit(None)?, size))
    }

    /// Finds an image by reference, full id, or unique id prefix.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        self.db.read(|tx| -> Result<ImageRecord> {
            if let Ok(r) = Reference::parse(name)
                && let Some(digest) = &r.digest
            {
                // `repo@sha256:...`: the image pulled or pushed by that manifest.
                let wanted = format!("{}@{digest}", r.repository());
                return tx
                    .list(&IMAGES)?
                    .into_iter()
                    .map(|(_, rec)| rec)
                    .find(|rec| rec.repo_digests.contains(&wanted))
                    .ok_or_else(|| Error::NotFound(name.into()));
            }
            if let Ok(r) = Reference::parse(name)
                && let Some(id) = tx.get(&REFS, &r.with_default_tag().normalized())?
            {
                let digest: Digest = id.parse()?;
                return tx
                    .get(&IMAGES, digest.hex())?
                    .ok_or_else(|| Error::NotFound(name.into()));
            }
            let prefix = name.strip_prefix("sha256:").unwrap_or(name);
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::NotFound(name.into()));
            }
            match tx.by_unique_prefix(&IMAGES, prefix)? {
                PrefixMatch::One(rec) => Ok(rec),
                PrefixMatch::Many => Err(Error::NotFound(format!(
                    "{name} (ambiguous: give more of the id)"
                ))),
                PrefixMatch::None => Err(Error::NotFound(name.into())),
            }
        })
    }

    fn refs_of(refs: &[(String, String)], id: &str) -> Vec<String> {
        refs.iter()
            .filter(|(_, v)| v == id)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Number of images.
    pub fn count(&self) -> Result<usize> {
        Ok(self.db.read(|tx| tx.list(&IMAGES))?.len())
    }

    /// `GET /images/json`: summaries in Docker's shape, newest first.
    /// Untagged images with children (a build's intermediate steps) only with `all`.
    pub fn list(&self, filters: &Filters, all: bool) -> Result<Vec<Value>> {
        let (images, refs) = self
            .db
            .read(|tx| -> Result<_> { Ok((tx.list(&IMAGES)?, tx.list(&REFS)?)) })?;
        let parents: std::collections::HashSet<String> = images
            .iter()
            .filter_map(|(_, r)| r.parent.clone())
            .collect();
        let lookup_created = |name: &str| self.resolve(name).map(|r| r.created);
        let before = filters.single("before").map(&lookup_created).transpose()?;
        let since = filters.single("since").map(&lookup_created).transpose()?;
        let mut out: Vec<(String, Value)> = Vec::new();
        for (_, rec) in images {
            let tags: Vec<String> = Self::refs_of(&refs, &rec.id)
                .iter()
                .map(|r| reference::familiar(r))
                .collect();
            let has_children = parents.contains(&rec.id);
            if tags.is_empty() && has_children && !all {
                continue;
            }
            let config = self.config(&rec)?;
            let labels = config["config"]["Labels"].clone();
            // An untagged parent is an intermediate image, not a dangling one.
            if !filters.matches_image(&tags, &labels)
                || (tags.is_empty() && has_children && filters.single("dangling").is_some())
            {
                continue;
            }
            if before.as_ref().is_some_and(|b| rec.created >= *b)
                || since.as_ref().is_some_and(|s| rec.created <= *s)
            {
                continue;
            }
            let created = berth_types::time::parse_rfc3339_seconds(&rec.created).unwrap_or(0);
            out.push((
                rec.created.clone(),
                json!({
                    "Containers": -1,
                    "Created": created,
                    "Id": rec.id,
                    "Labels": if labels.is_null() { json!({}) } else { labels },
                    "ParentId": rec.parent.clone().unwrap_or_default(),
                    "RepoDigests": familiar_digests(&rec),
                    "RepoTags": tags,
                    "SharedSize": -1,
                    "Size": rec.size,
                }),
            ));
        }
        out.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(out.into_iter().map(|(_, v)| v).collect())
    }

    fn config(&self, rec: &ImageRecord) -> Result<Value> {
        let digest: Digest = rec.id.parse()?;
        serde_json::from_slice(&self.content.read(&digest)?)
            .map_err(|e| Error::Io(format!("image config {}: {e}", rec.id)))
    }

    /// The image's config object (`config` of the image config), for creating containers.
    pub fn container_config(&self, name: &str) -> Result<Value> {
        let rec = self.resolve(name)?;
        Ok(self.config(&rec)?["config"].clone())
    }

    /// `GET /images/{name}/json` in Docker's shape.
    pub fn inspect(&self, name: &str) -> Result<Value> {
        let rec = self.resolve(name)?;
        let refs = self.db.read(|tx| tx.list(&REFS))?;
        let tags: Vec<String> = Self::refs_of(&refs, &rec.id)
            .iter()
            .map(|r| reference::familiar(r))
            .collect();
        let image = self.config(&rec)?;
        Ok(json!({
            "Id": rec.id,
            "RepoTags": tags,
            "RepoDigests": familiar_digests(&rec),
            "Parent": rec.parent.clone().unwrap_or_default(),
            "Comment": image["comment"].as_str().unwrap_or(""),
            "Created": rec.created,
            "DockerVersion": "",
            "Author": image["author"].as_str().unwrap_or(""),
            "Config": docker_container_config(&image["config"]),
            // dockerd sends these below API 1.45; docker-compose v1 reads
            // ContainerConfig.Volumes on every recreate.
            "Container": image["container"].as_str().unwrap_or(""),
            "ContainerConfig": docker_container_config(
                if image["container_config"].is_object() { &image["container_config"] } else { &image["config"] }
            ),
            "Architecture": image["architecture"],
            "Os": image["os"],
            "Size": rec.size,
            "GraphDriver": {"Data": null, "Name": "overlay2"},
            "RootFS": {"Type": "layers", "Layers": image["rootfs"]["diff_ids"]},
            "Metadata": {"LastTagTime": rec.last_tag_time.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into())}
        }))
    }

    /// `GET /images/{name}/history`: the config's history, newest first, each entry with
    /// the size of the layer it made (Docker's shape; only the top entry has an id).
    pub fn history(&self, name: &str) -> Result<Vec<Value>> {
        let rec = self.resolve(name)?;
        let image = self.config(&rec)?;
        let tags: Vec<String> = self
            .tags_of(&rec)?
            .iter()
            .map(|t| reference::familiar(t))
            .collect();
        let mut layers = rec.layers.iter();
        let mut out = Vec::new();
        for h in image["history"].as_array().into_iter().flatten() {
            let size = if h["empty_layer"].as_bool().unwrap_or(false) {
                0
            } else {
                match layers.next().map(|l| l.parse::<Digest>()) {
                    Some(Ok(d)) => self.content.size(&d).unwrap_or(0),
                    _ => 0,
                }
            };
            let created = h["created"]
                .as_str()
                .and_then(berth_types::time::parse_rfc3339_seconds)
                .unwrap_or(0);
            out.push(json!({
                "Id": "<missing>",
                "Created": created,
                "CreatedBy": h["created_by"].as_str().unwrap_or(""),
                "Tags": null,
                "Size": size,
                "Comment": h["comment"].as_str().unwrap_or(""),
            }));
        }
        out.reverse();
        if let Some(top) = out.first_mut() {
            top["Id"] = json!(rec.id);
            if !tags.is_empty() {
                top["Tags"] = json!(tags);
            }
        }
        Ok(out)
    }

    /// Points `target` (`repo[:tag]`) at the image `name`.
    pub fn tag(&self, name: &str, target: &str) -> Result<()> {
        let rec = self.resolve(name)?;
        let r = Reference::parse(target)?.with_default_tag();
        if r.digest.is_some() {
            return Err(Error::InvalidReference(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        let mut rec2 = rec.clone();
        rec2.last_tag_time = Some(berth_types::time::now_rfc3339());
        let digest: Digest = rec.id.parse()?;
        self.db.write(|tx| -> Result<()> {
            tx.put(&REFS, &r.normalized(), &rec.id)?;
            tx.put(&IMAGES, digest.hex(), &rec2)?;
            Ok(())
        })
    }

    /// Deletes an image record; returns its layers no other image uses (their blobs can
    /// go once the transaction is committed).
    fn delete_record(tx: &mut berth_metadata::WriteTx, rec: &ImageRecord) -> Result<Vec<String>> {
        let digest: Digest = rec.id.parse()?;
        tx.delete(&IMAGES, digest.hex())?;
        let still_used: Vec<String> = tx
            .list(&IMAGES)?
            .into_iter()
            .flat_map(|(_, r)| r.layers)
            .collect();
        Ok(rec
            .layers
            .iter()
            .filter(|l| !still_used.contains(l))
            .cloned()
            .collect())
    }

    /// `docker rmi`: untags a reference, or removes an image by id; deletes the image once
    /// no tag is left. Returns Docker's `[{"Untagged": ...}, {"Deleted": ...}]` items.
    pub fn remove(&self, name: &str, force: bool) -> Result<Vec<Value>> {
        let rec = self.resolve(name)?;
        let by_ref = Reference::parse(name)
            .ok()
            .map(|r| r.with_default_tag().normalized())
            .filter(|r| {
                self.db
                    .read(|tx| tx.get(&REFS, r))
                    .ok()
                    .flatten()
                    .as_deref()
                    == Some(rec.id.as_str())
            });
        // `repo@sha256:...`: that digest reference goes; the image only if no tag is left.
        let by_digest = Reference::parse(name)
            .ok()
            .and_then(|r| r.digest.as_ref().map(|d| format!("{}@{d}", r.repository())))
            .filter(|d| rec.repo_digests.contains(d));
        let digest: Digest = rec.id.parse()?;
        let mut freed_configs: Vec<Digest> = Vec::new();
        let (report, freed) = self.db.write(|tx| -> Result<(Vec<Value>, Vec<String>)> {
            let refs = tx.list(&REFS)?;
            let mine = Self::refs_of(&refs, &rec.id);
            if let Some(d) = &by_digest {
                let familiar = d
                    .split_once('@')
                    .map(|(repo, dg)| format!("{}@{dg}", reference::familiar(repo)))
                    .unwrap_or_else(|| d.clone());
                let mut report = vec![json!({"Untagged": familiar})];
                if !mine.is_empty() {
                    let mut kept = rec.clone();
                    kept.repo_digests.retain(|x| x != d);
                    tx.put(&IMAGES, digest.hex(), &kept)?;
                    return Ok((report, Vec::new()));
                }
                report.push(json!({"Deleted": rec.id}));
                return Ok((report, Self::delete_record(tx, &rec)?));
            }
            let untag: Vec<String> = match &by_ref {
                Some(r) => vec![r.clone()],
                None if mine.len() > 1 && !force => {
                    return Err(Error::Conflict(format!(
                        "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        digest.short()
                    )));
                }
                None => mine.clone(),
            };
            let mut report = Vec::new();
            for r in &untag {
                tx.delete(&REFS, r)?;
                report.push(json!({"Untagged": reference::familiar(r)}));
            }
            if mine.len() > untag.len() {
                return Ok((report, Vec::new()));
            }
            report.push(json!({"Deleted": rec.id}));
            let mut freed = Self::delete_record(tx, &rec)?;
            // Its build steps go with it when nothing else holds them.
            let mut parent = rec.parent.clone();
            while let Some(p) = parent {
                let Ok(pd) = p.parse::<Digest>() else { break };
                let Some(prec) = tx.get(&IMAGES, pd.hex())? else { break };
                let tagged = tx.list(&REFS)?.iter().any(|(_, v)| *v == p);
                let other_children = tx.list(&IMAGES)?.iter().any(|(_, r)| r.parent.as_deref() == Some(p.as_str()));
                if tagged || other_children {
                    break;
                }
                report.push(json!({"Deleted": p}));
                freed.extend(Self::delete_record(tx, &prec)?);
                freed_configs.push(pd);
                parent = prec.parent.clone();
            }
            Ok((report, freed))
        })?;
        // Blobs go after the commit: a crash in between leaves unreferenced blobs for
        // garbage collection, never a record whose blobs are gone.
        let busy = self.ingesting.lock().expect("ingest count");
        if report.iter().any(|r| r.get("Deleted").is_some()) && *busy == 0 {
            self.content.delete(&digest)?;
            for c in &freed_configs {
                self.content.delete(c)?;
            }
            for l in freed {
                if let Ok(d) = l.parse::<Digest>() {
                    self.content.delete(&d)?;
                }
            }
        }
        Ok(report)
    }
}

/// Docker always sends every field of a container config; missing ones get Docker's zero
/// values so clients that index into them do not fail.
/// The config of the container that made a layer, as the classic builder records it
/// (`container_config`, which docker-compose v1 reads): the image's config with the
/// step as its command, `|N ARG=v... /bin/sh -c CMD` split the way dockerd splits it.
fn container_config(config: &Value, created_by: &str) -> Value {
    let mut words: Vec<String> = Vec::new();
    let mut rest = created_by;
    if let Some(counted) = rest.strip_prefix('|') {
        let n: usize = counted
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let mut parts = counted.splitn(n + 2, ' ');
        words.push(format!("|{}", parts.next().unwrap_or("0")));
        for _ in 0..n {
            words.extend(parts.next().map(str::to_string));
        }
        rest = parts.next().unwrap_or("");
    }
    match rest.strip_prefix("/bin/sh -c ") {
        Some(cmd) => words.extend(["/bin/sh".into(), "-c".into(), cmd.to_string()]),
        None => words.extend(rest.split_whitespace().map(str::to_string)),
    }
    let mut c = if config.is_object() {
        config.clone()
    } else {
        json!({})
    };
    c["Cmd"] = json!(words);
    c
}

fn docker_container_config(c: &Value) -> Value {
    let mut out = json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false, "AttachStdout": false,
        "AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": null,
        "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "", "Entrypoint": null,
        "OnBuild": null, "Labels": null
    });
    if let (Some(o), Some(c)) = (out.as_object_mut(), c.as_object()) {
        for (k, v) in c {
            o.insert(k.clone(), v.clone());
        }
    }
    out
}

/// The diff ids an image config lists (`rootfs.diff_ids`), bottom first.
pub fn diff_ids(image_config: &Value) -> Vec<String> {
    image_config["rootfs"]["diff_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect()
}

fn familiar_digests(rec: &ImageRecord) -> Vec<String> {
    rec.repo_digests
        .iter()
        .map(|d| match d.split_once('@') {
            Some((repo, digest)) => format!("{}@{digest}", reference::familiar(repo)),
            None => d.clone(),
        })
        .collect()
}

/// The architecture as Go (and so image configs and manifest lists) names it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A tar header block carries "ustar" at offset 257; an empty archive is all zeros.
fn looks_like_tar(first: &[u8]) -> bool {
    first.len() == 512 && (&first[257..262] == b"ustar" || first.iter().all(|b| *b == 0))
}

/// Undoes gzip, zstd, bzip2 or xz compression, recognized by magic bytes (media types
/// lie).
pub fn decompress<'a>(input: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    let mut r = BufReader::with_capacity(64 * 1024, input);
    let head = r
        .fill_buf()
        .map_err(|e| Error::Io(format!("read archive: {e}")))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(r)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let d = zstd::stream::read::Decoder::with_buffer(r)
            .map_err(|e| Error::Io(format!("zstd: {e}")))?;
        Ok(Box::new(d))
    } else if head.starts_with(b"BZh") {
        Ok(Box::new(bzip2::bufread::MultiBzDecoder::new(r)))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Ok(Box::new(lzma_rust2::XzReader::new(r, true)))
    } else {
        Ok(Box::new(r))
    }
}

#[cfg(test)]
mod container_config_tests {
    use super::*;

    #[test]
    fn steps_split_as_dockerd_records_them() {
        let c = container_config(
            &json!({"Env": ["A=1"]}),
            "|1 build_version=1 /bin/sh -c echo ${build_version}",
        );
        assert_eq!(
            c["Cmd"],
            json!([
                "|1",
                "build_version=1",
                "/bin/sh",
                "-c",
                "echo ${build_version}"
            ])
        );
        assert_eq!(c["Env"], json!(["A=1"]));
        let c = container_config(&json!({}), "/bin/sh -c #(nop)  ENV X=1");
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "#(nop)  ENV X=1"]));
        let c = container_config(&json!({}), "echo hi");
        assert_eq!(c["Cmd"], json!(["echo", "hi"]));
    }
}
