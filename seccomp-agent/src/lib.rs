//! rampart-seccomp: the agent that supervises seccomp user-notify filters.
//!
//! Not built yet: this crate is filled by issue 5. It holds no code so that nothing in the
//! workspace pretends to work before it does.
