//! Loading a compiled BPF object (its ring buffer sized), and finding its maps by name, as
//! handles of their own that outlive the lookup.

use libbpf_rs::{MapCore, MapHandle, Object, ObjectBuilder};

/// A handle to the map `name` of `object`.
pub fn handle(object: &Object, name: &str) -> Result<MapHandle, libbpf_rs::Error> {
    let found = object.maps().find(|m| m.name() == name).ok_or_else(|| {
        libbpf_rs::Error::from(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("map {name} missing from the object"),
        ))
    })?;
    MapHandle::try_from(&found)
}

/// Opens `bytes` (a compiled object), sizes its map `events` (a ring buffer) to `ring_bytes`, and
/// loads it into the kernel; the error says which of the two failed.
pub fn load(
    bytes: &'static [u8],
    ring_bytes: u32,
) -> Result<Object, (&'static str, libbpf_rs::Error)> {
    let mut open = ObjectBuilder::default()
        .open_memory(bytes)
        .map_err(|e| ("opening the object", e))?;
    if let Some(mut ring) = open.maps_mut().find(|m| m.name() == "events") {
        ring.set_max_entries(ring_bytes)
            .map_err(|e| ("sizing its ring buffer", e))?;
    }
    open.load().map_err(|e| ("loading it into the kernel", e))
}
