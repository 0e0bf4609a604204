//! `docker save` / `docker load` archives: the OCI image layout that Docker 25+ writes
//! (`oci-layout`, `index.json`, `blobs/sha256/...`) together with the older docker-archive
//! files (`manifest.json`, `repositories`) in one tar, so old and new clients read it;
//! `load` reads either layout, and the legacy `<id>/layer.tar` one.
//!
//! Nothing in an archive is written to disk under the archive's own paths: blobs go to the
//! content store under the digest of their bytes (checked against their names), so a
//! hostile archive cannot write anywhere else.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};

use berth_content::Digest;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::reference::{self, Reference};
use crate::{ImageRecord, ImageStore, NewImage};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// Blobs up to this size are kept in memory while an archive is read (configs,
/// manifests, small layers); bigger ones stream into the content store.
const SMALL: u64 = 1 << 20;

/// One image of a save: its record and the tags to write for it.
struct Saved {
    rec: ImageRecord,
    tags: Vec<String>,
}

impl ImageStore {
    /// Checks that every name resolves, before any byte of an archive is sent.
    pub fn check_save(&self, names: &[String]) -> Result<()> {
        self.images_to_save(names).map(drop)
    }

    fn images_to_save(&self, names: &[String]) -> Result<Vec<Saved>> {
        let mut out: Vec<Saved> = Vec::new();
        for name in names {
            for (rec, tag) in self.expand_for_save(name)? {
                let i = match out.iter().position(|s| s.rec.id == rec.id) {
                    Some(i) => i,
                    None => {
                        out.push(Saved {
                            rec,
                            tags: Vec::new(),
                        });
                        out.len() - 1
                    }
                };
                if let Some(t) = tag
                    && !out[i].tags.contains(&t)
                {
                    out[i].tags.push(t);
                }
            }
        }
        Ok(out)
    }

    /// What a save of `name` writes: every tag of a repository named without a tag, the
    /// tag itself, or an image by id without a tag.
    fn expand_for_save(&self, name: &str) -> Result<Vec<(ImageRecord, Option<String>)>> {
        if let Ok(r) = Reference::parse(name)
            && r.digest.is_none()
        {
            if r.tag.is_none() {
                let all = self.tags_in_repository(&r.repository())?;
                if !all.is_empty() {
                    return all
                        .into_iter()
                        .map(|t| {
                            let full = format!("{}:{t}", r.repository());
                            Ok((self.resolve(&full)?, Some(full)))
                        })
                        .collect();
                }
            }
            let tagged = r.with_default_tag().normalized();
            let rec = self.resolve(name)?;
            let tag = self.tags_of(&rec)?.contains(&tagged).then_some(tagged);
            return Ok(vec![(rec, tag)]);
        }
        Ok(vec![(self.resolve(name)?, None)])
    }

    /// `docker save`: writes the images `names` (tags, repositories or ids) as one tar.
    pub fn save(&self, names: &[String], out: impl Write) -> Result<()> {
        let images = self.images_to_save(names)?;
        let mut tar = tar::Builder::new(out);
        let mut written: std::collections::HashSet<String> = Default::default();
        let io_err = |e: io::Error| Error::Io(format!("write archive: {e}"));
        for dir in ["blobs/", "blobs/sha256/"] {
            append_dir(&mut tar, dir).map_err(io_err)?;
        }
        let mut index = Vec::new();
        let mut manifests = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for img in &images {
            let config = self.config_bytes(&img.rec)?;
            let config_digest: Digest = img.rec.id.parse()?;
            let mut layer_descs = Vec::new();
            for l in &img.rec.layers {
                let d: Digest = l.parse()?;
                let size = self.content.size(&d)?;
                if written.insert(d.hex().to_string()) {
                    let blob = self.content.open_blob(&d)?;
                    append_file(&mut tar, &format!("blobs/sha256/{}", d.hex()), size, blob)
                        .map_err(io_err)?;
                }
                layer_descs.push(json!({"mediaType": OCI_LAYER, "digest": l, "size": size}));
            }
            if written.insert(config_digest.hex().to_string()) {
                append_bytes(
                    &mut tar,
                    &format!("blobs/sha256/{}", config_digest.hex()),
                    &config,
                )
                .map_err(io_err)?;
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": img.rec.id, "size": config.len()},
                "layers": layer_descs,
            });
            let manifest_bytes = serde_json::to_vec(&manifest).expect("json values serialize");
            let manifest_digest = Digest::of(&manifest_bytes);
            if written.insert(manifest_digest.hex().to_string()) {
                append_bytes(
                    &mut tar,
                    &format!("blobs/sha256/{}", manifest_digest.hex()),
                    &manifest_bytes,
                )
                .map_err(io_err)?;
            }
            let descriptor = |annotations: Value| {
                json!({
                    "mediaType": OCI_MANIFEST,
                    "digest": manifest_digest.to_string(),
                    "size": manifest_bytes.len(),
                    "annotations": annotations,
                })
            };
            if img.tags.is_empty() {
                index.push(descriptor(json!({})));
            }
            for t in &img.tags {
                let r = Reference::parse(t)?;
                let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
                index.push(descriptor(json!({
                    "io.containerd.image.name": t,
                    "org.opencontainers.image.ref.name": tag,
                })));
                let top = img
                    .rec
                    .layers
                    .last()
                    .map(|l| l.trim_start_matches("sha256:").to_string());
                repositories
                    .entry(reference::familiar(&r.repository()))
                    .or_default()
                    .insert(tag, top.unwrap_or_default());
            }
            manifests.push(json!({
                "Config": format!("blobs/sha256/{}", config_digest.hex()),
                "RepoTags": img.tags.iter().map(|t| reference::familiar(t)).collect::<Vec<_>>(),
                "Layers": img.rec.layers.iter().map(|l| format!("blobs/sha256/{}", l.trim_start_matches("sha256:"))).collect::<Vec<_>>(),
            }));
        }
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index});
        let files: [(&str, Value); 4] = [
            ("index.json", index),
            ("manifest.json", Value::from(manifests)),
            ("oci-layout", json!({"imageLayoutVersion": "1.0.0"})),
            ("repositories", json!(repositories)),
        ];
        for (name, v) in files {
            let bytes = serde_json::to_vec(&v).expect("json values serialize");
            append_bytes(&mut tar, name, &bytes).map_err(io_err)?;
        }
        tar.into_inner().and_then(|mut w| w.flush()).map_err(io_err)
    }

    /// `docker load`: reads an archive, stores its blobs (verified), and records its images
    /// with their tags, telling `progress` of each layer (Docker's "Loading layer").
    /// Returns Docker's lines: `Loaded image: x:y` or `Loaded image ID:`.
    pub fn load(&self, input: impl Read, progress: &mut dyn FnMut(Value)) -> Result<Vec<String>> {
        let _ingest = self.ingest();
        let mut archive = Archive::default();
        let mut tar = tar::Archive::new(crate::decompress(input)?);
        let bad = |e: io::Error| Error::InvalidInput(format!("invalid archive: {e}"));
        for entry in tar.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()
                .map_err(bad)?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let size = entry.size();
            if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                let digest: Digest = format!("sha256:{hex}").parse()?;
                archive.blob(self, digest, size, &mut entry)?;
            } else if size <= SMALL {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(bad)?;
                archive.files.insert(path, bytes);
            } else {
                // The legacy layout (`<v1 id>/layer.tar`) or any file manifest.json names:
                // nothing to check it against until its image's diff ids are known.
                let mut w = self.content.writer()?;
                io::copy(&mut entry, &mut w).map_err(bad)?;
                archive.stored.insert(path, w.commit(None)?);
            }
        }
        let images = archive.images()?;
        if images.is_empty() {
            return Err(Error::InvalidInput(
                "invalid archive: no manifest.json or index.json naming an image".into(),
            ));
        }
        let mut lines = Vec::new();
        for (config_ref, layer_refs, tags) in images {
            let config = archive.take(self, &config_ref)?;
            let image: Value = serde_json::from_slice(&self.content.read(&config)?)
                .map_err(|e| Error::InvalidInput(format!("invalid image config: {e}")))?;
            let diff_ids = crate::diff_ids(&image);
            if diff_ids.len() != layer_refs.len() {
                return Err(Error::InvalidInput(format!(
                    "invalid archive: image {config} lists {} layers, its manifest {}",
                    diff_ids.len(),
                    layer_refs.len()
                )));
            }
            let mut size = 0;
            for (layer, diff_id) in layer_refs.iter().zip(&diff_ids) {
                let blob = archive.take(self, layer)?;
                let stored = self.as_diff(blob, diff_id)?;
                let layer_size = self.content.size(&stored)?;
                size += layer_size;
                progress(json!({
                    "status": "Loading layer",
                    "progressDetail": {"current": layer_size, "total": layer_size},
                    "progress": berth_types::units::progress_bar(layer_size, layer_size),
                    "id": stored.short(),
                }));
            }
            let mut new = NewImage {
                config: config.clone(),
                layers: diff_ids,
                size,
                tag: None,
                repo_digest: None,
            };
            if tags.is_empty() {
                self.add(&new)?;
                lines.push(format!("Loaded image ID: {config}"));
            }
            for t in tags {
                new.tag = Some(t.clone());
                self.add(&new)?;
                lines.push(format!(
                    "Loaded image: {}",
                    reference::familiar(&Reference::parse(&t)?.with_default_tag().normalized())
                ));
            }
        }
        Ok(lines)
    }

    /// Makes sure a layer is stored uncompressed under its diff id: an uncompressed blob
    /// must be it; a compressed one is decompressed and checked.
    fn as_diff(&self, blob: Digest, diff_id: &str) -> Result<Digest> {
        let want: Digest = diff_id.parse()?;
        if blob == want {
            return Ok(blob);
        }
        if self.content.contains(&want) {
            return Ok(want);
        }
        let mut reader = crate::decompress(self.content.open_blob(&blob)?)?;
        let mut w = self.content.writer()?;
        io::copy(&mut reader, &mut w)
            .map_err(|e| Error::InvalidInput(format!("layer {blob}: {e}")))?;
        w.commit(Some(&want)).map_err(|_| {
            Error::InvalidInput(format!("layer {blob} does not match its diff id {diff_id}"))
        })
    }
}

/// What has been read of an archive: small files and blobs in memory, big blobs stored.
#[derive(Default)]
struct Archive {
    files: HashMap<String, Vec<u8>>,
    blobs: HashMap<Digest, Vec<u8>>,
    stored: HashMap<String, Digest>,
}

impl Archive {
    fn blob(
        &mut self,
        store: &ImageStore,
        digest: Digest,
        size: u64,
        entry: &mut impl Read,
    ) -> Result<()> {
        let bad = |e: io::Error| Error::InvalidInput(format!("invalid archive: {e}"));
        if size <= SMALL {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(bad)?;
            if Digest::of(&bytes) != digest {
                return Err(Error::InvalidInput(format!(
                    "invalid archive: blob {digest} does not match its name"
                )));
            }
            self.blobs.insert(digest, bytes);
        } else {
            let mut w = store.content.writer()?;
            io::copy(entry, &mut w).map_err(bad)?;
            w.commit(Some(&digest)).map_err(|_| {
                Error::InvalidInput(format!(
                    "invalid archive: blob {digest} does not match its name"
                ))
            })?;
            self.stored
                .insert(format!("blobs/sha256/{}", digest.hex()), digest);
        }
        Ok(())
    }

    /// The bytes of a small file or blob by archive path.
    fn small(&self, path: &str) -> Option<&[u8]> {
        if let Some(hex) = path.strip_prefix("blobs/sha256/")
            && let Ok(d) = format!("sha256:{hex}").parse::<Digest>()
            && let Some(b) = self.blobs.get(&d)
        {
            return Some(b);
        }
        self.files.get(path).map(Vec::as_slice)
    }

    /// A blob by archive path, put in the content store if it is not there yet.
    fn take(&self, store: &ImageStore, path: &str) -> Result<Digest> {
        if let Some(d) = self.stored.get(path) {
            return Ok(d.clone());
        }
        let bytes = self
            .small(path)
            .ok_or_else(|| Error::InvalidInput(format!("invalid archive: {path} is missing")))?;
        Ok(store.content.put(bytes)?)
    }

    fn json(&self, path: &str) -> Result<Option<Value>> {
        self.small(path)
            .map(|b| {
                serde_json::from_slice(b)
                    .map_err(|e| Error::InvalidInput(format!("invalid archive: {path}: {e}")))
            })
            .transpose()
    }

    /// (config path, layer paths, tags) per image, from manifest.json or else index.json.
    #[allow(clippy::type_complexity)]
    fn images(&self) -> Result<Vec<(String, Vec<String>, Vec<String>)>> {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        if let Some(m) = self.json("manifest.json")? {
            return Ok(m
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    (
                        e["Config"].as_str().unwrap_or("").to_string(),
                        strings(&e["Layers"]),
                        strings(&e["RepoTags"]),
                    )
                })
                .collect());
        }
        let Some(index) = self.json("index.json")? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for d in index["manifests"].as_array().into_iter().flatten() {
            let path = format!(
                "blobs/sha256/{}",
                d["digest"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches("sha256:")
            );
            let m = self.json(&path)?.ok_or_else(|| {
                Error::InvalidInput(format!("invalid archive: {path} is missing"))
            })?;
            let blob_path = |v: &Value| {
                format!(
                    "blobs/sha256/{}",
                    v["digest"]
                        .as_str()
                        .unwrap_or("")
                        .trim_start_matches("sha256:")
                )
            };
            let tag = d["annotations"]["io.containerd.image.name"]
                .as_str()
                .map(str::to_string)
                .or_else(|| {
                    d["annotations"]["org.opencontainers.image.ref.name"]
                        .as_str()
                        .filter(|t| t.contains(['/', ':']))
                        .map(str::to_string)
                });
            out.push((
                blob_path(&m["config"]),
                m["layers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(blob_path)
                    .collect(),
                tag.into_iter().collect(),
            ));
        }
        Ok(out)
    }
}

fn header(path: &str, size: u64, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    let _ = h.set_path(path);
    h.set_cksum();
    h
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let h = header(path, 0, tar::EntryType::Directory, 0o755);
    tar.append(&h, io::empty())
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> io::Result<()> {
    let h = header(path, data.len() as u64, tar::EntryType::Regular, 0o644);
    tar.append(&h, data)
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: impl Read,
) -> io::Result<()> {
    let h = header(path, size, tar::EntryType::Regular, 0o644);
    tar.append(&h, data)
}
