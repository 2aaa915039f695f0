//! rampartd: the shared policy daemon (policy snapshots, workload registry, audit records to journald).
//!
//! Not built yet: this crate is filled by issue 3. It holds no code so that nothing in the
//! workspace pretends to work before it does.
