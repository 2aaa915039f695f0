//! rampart-audit: eBPF and fanotify sensors for file, process and network events.
//!
//! Not built yet: this crate is filled by issue 6. It holds no code so that nothing in the
//! workspace pretends to work before it does.
