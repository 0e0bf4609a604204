//! # berth-types
//!
//! The small vocabulary every Berth crate may use: times in the formats Docker prints, and
//! the byte protocol between berthd and its shims, random ids, human sizes, Docker's filter
//! parameter, how Docker tells remote build contexts apart. Nothing here does I/O beyond
//! reading the clock and the kernel's random bytes.

pub mod detach;
pub mod filters;
pub mod id;
pub mod remote;
pub mod shim;
pub mod sysctl;
pub mod time;
pub mod units;
