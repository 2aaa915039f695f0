//! Reading a per-CPU array of u64 counters, summed over CPUs.

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
