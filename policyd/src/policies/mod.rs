//! The policy files on the node's disk, as rampartd holds them: the last good version of every
//! file, the error of every file whose current version is bad, and the compiled snapshot of all of
//! them. A change is all or nothing per file: a file that doesn't parse, or that would make the set
//! fail to compile (a duplicate policy name, say), is reported and its previous version stays in
//! force.

pub mod store;
pub mod watch;

pub use store::{FileOutcome, PolicyStore};
