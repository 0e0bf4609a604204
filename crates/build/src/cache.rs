//! The build cache: a step's key (its parent image, the instruction as expanded, and for
//! COPY/ADD the checksum of what it copies) → the image it made. Kept in the metadata
//! store, so it survives daemon restarts; an entry whose image is gone is a miss.

use berth_images::ImageStore;
use berth_metadata::{Db, Table};

use crate::error::Result;

const CACHE: Table<String> = Table::new("build_cache");

/// A step's cache key from its parts.
pub(crate) fn key(parts: &[&str]) -> String {
    let mut h = berth_content::Hasher::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(&[0]);
    }
    h.digest().hex().to_string()
}

/// The image a step made before, if it still exists.
pub(crate) fn lookup(db: &Db, images: &ImageStore, key: &str) -> Result<Option<String>> {
    let Some(id) = db.read(|tx| tx.get(&CACHE, key))? else {
        return Ok(None);
    };
    Ok(images.resolve(&id).ok().map(|r| r.id))
}

/// Remembers the image a step made.
pub(crate) fn store(db: &Db, key: &str, id: &str) -> Result<()> {
    db.write(|tx| tx.put(&CACHE, key, &id.to_string()))?;
    Ok(())
}
