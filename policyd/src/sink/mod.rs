//! Where audit records go.

pub mod buffered;
pub mod journald;
pub mod json_lines;
