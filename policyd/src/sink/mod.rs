//! Where audit records go.

pub mod buffered;
pub mod journald;
