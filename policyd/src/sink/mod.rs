//! Where audit records go.

pub mod journald;
