//! # berth-metadata
//!
//! The engine's one transactional metadata store (the role bbolt plays in Docker), on
//! `redb`: ACID, crash-safe by default, readers never block the writer.
//!
//! **Owns:** the database file and its transactions. Callers define typed [`Table`]s
//! (JSON values under string keys) and change several of them atomically in one
//! [`Db::write`]; a failed closure aborts the whole transaction.
//! **Does not:** know what images or containers are; blobs live in `berth-content`.

use std::marker::PhantomData;
use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed (I/O, corruption, a transaction error).
    #[error("metadata store: {0}")]
    Db(String),
    /// A stored value no longer parses as its table's type.
    #[error("metadata store: bad value under {table}/{key}: {message}")]
    Decode {
        /// Table name.
        table: &'static str,
        /// Key.
        key: String,
        /// Parser message.
        message: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

fn db_err(e: impl std::fmt::Display) -> Error {
    Error::Db(e.to_string())
}

/// A named table of `V` values (stored as JSON) under string keys.
pub struct Table<V> {
    name: &'static str,
    _value: PhantomData<fn() -> V>,
}

impl<V> Table<V> {
    /// Declares a table; it is created on first write.
    pub const fn new(name: &'static str) -> Self {
        Table {
            name,
            _value: PhantomData,
        }
    }

    fn def(&self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(self.name)
    }
}

fn decode<V: DeserializeOwned>(table: &'static str, key: &str, bytes: &[u8]) -> Result<V> {
    serde_json::from_slice(bytes).map_err(|e| Error::Decode {
        table,
        key: key.to_string(),
        message: e.to_string(),
    })
}

/// The database.
pub struct Db {
    db: redb::Database,
}

impl Db {
    /// Opens (creating) the database file.
    pub fn open(path: &Path) -> Result<Self> {
        let db = redb::Database::create(path)
            .map_err(|e| Error::Db(format!("open {}: {e}", path.display())))?;
        Ok(Db { db })
    }

    /// Runs `f` in a write transaction: committed (durably) if it returns Ok, aborted if it
    /// returns Err.
    pub fn write<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let mut tx = WriteTx { txn };
        let out = f(&mut tx)?;
        tx.txn.commit().map_err(db_err)?;
        Ok(out)
    }

    /// Runs `f` on a consistent snapshot.
    pub fn read<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&ReadTx) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let txn = self.db.begin_read().map_err(db_err)?;
        f(&ReadTx { txn })
    }
}

/// A write transaction.
pub struct WriteTx {
    txn: redb::WriteTransaction,
}

impl WriteTx {
    /// Inserts or replaces a value.
    pub fn put<V: Serialize>(&mut self, t: &Table<V>, key: &str, value: &V) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(db_err)?;
        let mut table = self.txn.open_table(t.def()).map_err(db_err)?;
        table.insert(key, bytes.as_slice()).map_err(db_err)?;
        Ok(())
    }

    /// Removes a key; returns whether it existed.
    pub fn delete<V>(&mut self, t: &Table<V>, key: &str) -> Result<bool> {
        let mut table = self.txn.open_table(t.def()).map_err(db_err)?;
        let existed = table.remove(key).map_err(db_err)?.is_some();
        Ok(existed)
    }

    /// Reads a value, seeing this transaction's own writes.
    pub fn get<V: DeserializeOwned>(&mut self, t: &Table<V>, key: &str) -> Result<Option<V>> {
        let table = self.txn.open_table(t.def()).map_err(db_err)?;
        let value = table.get(key).map_err(db_err)?;
        value.map(|v| decode(t.name, key, v.value())).transpose()
    }

    /// Every entry, sorted by key, seeing this transaction's own writes.
    pub fn list<V: DeserializeOwned>(&mut self, t: &Table<V>) -> Result<Vec<(String, V)>> {
        let table = self.txn.open_table(t.def()).map_err(db_err)?;
        collect(t.name, table.iter().map_err(db_err)?)
    }
}

fn collect<V: DeserializeOwned>(
    name: &'static str,
    iter: redb::Range<'_, &'static str, &'static [u8]>,
) -> Result<Vec<(String, V)>> {
    let mut out = Vec::new();
    for entry in iter {
        let (k, v) = entry.map_err(db_err)?;
        let key = k.value().to_string();
        let value = decode(name, &key, v.value())?;
        out.push((key, value));
    }
    Ok(out)
}

/// What a key prefix matched.
#[derive(Debug, PartialEq, Eq)]
pub enum PrefixMatch<V> {
    /// No key starts with the prefix.
    None,
    /// Exactly one key does; its value.
    One(V),
    /// More than one key does.
    Many,
}

/// A read transaction over a consistent snapshot.
pub struct ReadTx {
    txn: redb::ReadTransaction,
}

impl ReadTx {
    /// Reads a value; a table never written to is empty.
    pub fn get<V: DeserializeOwned>(&self, t: &Table<V>, key: &str) -> Result<Option<V>> {
        let table = match self.txn.open_table(t.def()) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db_err(e)),
        };
        let value = table.get(key).map_err(db_err)?;
        value.map(|v| decode(t.name, key, v.value())).transpose()
    }

    /// Every entry, sorted by key.
    pub fn list<V: DeserializeOwned>(&self, t: &Table<V>) -> Result<Vec<(String, V)>> {
        let table = match self.txn.open_table(t.def()) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db_err(e)),
        };
        collect(t.name, table.iter().map_err(db_err)?)
    }

    /// The value under the one key that starts with `prefix` (short ids), reading at most
    /// two entries of the key range.
    pub fn by_unique_prefix<V: DeserializeOwned>(
        &self,
        t: &Table<V>,
        prefix: &str,
    ) -> Result<PrefixMatch<V>> {
        let table = match self.txn.open_table(t.def()) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(PrefixMatch::None),
            Err(e) => return Err(db_err(e)),
        };
        let mut hits = Vec::with_capacity(2);
        for entry in table.range(prefix..).map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            if !k.value().starts_with(prefix) || hits.len() == 2 {
                break;
            }
            hits.push(decode(t.name, k.value(), v.value())?);
        }
        Ok(match hits.len() {
            0 => PrefixMatch::None,
            1 => PrefixMatch::One(hits.pop().expect("one hit")),
            _ => PrefixMatch::Many,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: Table<u32> = Table::new("names");
    const OTHER: Table<String> = Table::new("other");

    #[test]
    fn writes_are_atomic_across_tables() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("meta.redb")).unwrap();
        assert_eq!(db.read(|tx| tx.list(&NAMES)).unwrap(), vec![]);
        db.write(|tx| {
            tx.put(&NAMES, "a", &1)?;
            tx.put(&OTHER, "x", &"y".to_string())
        })
        .unwrap();
        let failed: std::result::Result<(), Error> = db.write(|tx| {
            tx.put(&NAMES, "b", &2)?;
            Err(Error::Db("caller gave up".into()))
        });
        assert!(failed.is_err());
        assert_eq!(
            db.read(|tx| tx.list(&NAMES)).unwrap(),
            vec![("a".to_string(), 1)]
        );
        assert_eq!(
            db.read(|tx| tx.get(&OTHER, "x")).unwrap(),
            Some("y".to_string())
        );
        drop(db);
        // Durable across reopen.
        let db = Db::open(&dir.path().join("meta.redb")).unwrap();
        assert_eq!(db.read(|tx| tx.get(&NAMES, "a")).unwrap(), Some(1));
        db.write(|tx| {
            tx.put(&NAMES, "ab1", &2)?;
            tx.put(&NAMES, "ab2", &3)?;
            tx.put(&NAMES, "b", &4)
        })
        .unwrap();
        db.read(|tx| -> Result<()> {
            assert_eq!(tx.by_unique_prefix(&NAMES, "ab1")?, PrefixMatch::One(2));
            assert_eq!(tx.by_unique_prefix(&NAMES, "ab")?, PrefixMatch::Many);
            assert_eq!(tx.by_unique_prefix(&NAMES, "c")?, PrefixMatch::None);
            Ok(())
        })
        .unwrap();
        assert!(db.write(|tx| tx.delete(&NAMES, "a")).unwrap());
        assert_eq!(db.read(|tx| tx.get(&NAMES, "a")).unwrap(), None);
    }
}
