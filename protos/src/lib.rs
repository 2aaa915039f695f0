//! Protobuf messages: NRI's wire subset and rampart's agent <-> daemon API (prost, ttrpc).
//!
//! Not built yet: this crate is filled by issue 4. It holds no code so that nothing in the
//! workspace pretends to work before it does.
