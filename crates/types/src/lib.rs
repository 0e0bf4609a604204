//! # berth-types
//!
//! The small vocabulary every Berth crate may use: times in the formats Docker prints.
//! Nothing here does I/O beyond reading the clock.

pub mod time;
