//! # berth-types
//!
//! The small vocabulary every Berth crate may use: times in the formats Docker prints, and
//! the byte protocol between berthd and its shims. Nothing here does I/O beyond reading
//! the clock.

pub mod detach;
pub mod shim;
pub mod time;
