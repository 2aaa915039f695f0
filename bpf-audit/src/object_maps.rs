//! Finding a loaded BPF object's maps by name, as handles of their own that outlive the lookup.

use libbpf_rs::{MapCore, MapHandle, Object};

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
