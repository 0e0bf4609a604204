//! # berth-sys
//!
//! File-system helpers that more than one Berth crate needs and that must be right once:
//! path resolution confined to a root directory ([`inroot`]), used by the runtime for
//! mount targets and by the snapshotter for unpacking layers.
//!
//! **Does not:** mount, fork or touch namespaces (that is the runtime's business).

pub mod inroot;
