//! CRI driver and node test support (issue 2).
