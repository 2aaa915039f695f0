//! Reading the programs' counters: a per-CPU array's slot summed over CPUs, a hash map's u64.

use libbpf_rs::{MapCore, MapFlags, MapHandle};

/// Slot `index` of `map`, summed over CPUs; 0 if it can't be read.
pub fn sum(map: &MapHandle, index: u32) -> u64 {
    map.lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)
        .ok()
        .flatten()
        .map(|cpus| {
            cpus.iter()
                .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
                .map(u64::from_ne_bytes)
                .sum()
        })
        .unwrap_or(0)
}

/// The u64 that `map` (keyed by u64) holds for `key`; 0 if none.
pub fn lookup_u64(map: &MapHandle, key: u64) -> u64 {
    match map.lookup(&key.to_ne_bytes(), MapFlags::ANY) {
        Ok(Some(v)) => v
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_ne_bytes)
            .unwrap_or(0),
        _ => 0,
    }
}
