//! rampart-nri: the containerd NRI plugin that injects seccomp notify filters and binds cgroups.
//!
//! Not built yet: this crate is filled by issue 4. It holds no code so that nothing in the
//! workspace pretends to work before it does.
