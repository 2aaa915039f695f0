//! CRI driver and node test support (issue 2).

pub mod cri;
pub mod stack;
