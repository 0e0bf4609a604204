//! Where each layer (by diff id) is known to exist in compressed form: the registry,
//! repository and blob digest it was pulled from or pushed to. A push uses this to skip
//! layers a registry has and to mount them across repositories instead of uploading.

use berth_metadata::{Db, Table};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// One compressed copy of a layer in a registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LayerSource {
    /// The compressed blob's digest.
    pub digest: String,
    /// Its size.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// Registry domain (`localhost:5000`).
    pub domain: String,
    /// Repository path in it.
    pub repository: String,
}

const SOURCES: Table<Vec<LayerSource>> = Table::new("layer_sources");

/// How many copies are remembered per layer; the newest are kept.
const KEEP: usize = 16;

/// Remembers a copy of layer `diff_id`.
pub(crate) fn record(db: &Db, diff_id: &str, source: LayerSource) -> Result<()> {
    db.write(|tx| -> Result<()> {
        let mut list = tx.get(&SOURCES, diff_id)?.unwrap_or_default();
        list.retain(|s| {
            !(s.digest == source.digest
                && s.domain == source.domain
                && s.repository == source.repository)
        });
        list.push(source);
        if list.len() > KEEP {
            list.drain(..list.len() - KEEP);
        }
        tx.put(&SOURCES, diff_id, &list)?;
        Ok(())
    })
}

/// The known copies of layer `diff_id` in registry `domain`, newest first.
pub(crate) fn lookup(db: &Db, diff_id: &str, domain: &str) -> Result<Vec<LayerSource>> {
    let list = db.read(|tx| tx.get(&SOURCES, diff_id))?.unwrap_or_default();
    Ok(list
        .into_iter()
        .rev()
        .filter(|s| s.domain == domain)
        .collect())
}
