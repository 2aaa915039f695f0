//! Ingress enforcement: a cgroup_skb/ingress program (`ingress_guard.bpf.c`) on each container
//! cgroup an ingress rule scopes, deciding what arrives for the container's sockets against the
//! container's [`IngressTable`] (the policy crate compiles it: disjoint cells, each with the
//! verdict the policy gives inside it). What it refuses or reports comes out of a ring buffer as
//! [`IngressEvent`]s, read on a thread of its own; what the ring could not hold is counted.
//!
//! A TCP connection is decided when it opens (packets for a listening socket); UDP datagrams and
//! packets for raw and ICMP echo sockets one by one. A refused packet is dropped: the peer's
//! connect times out.
//!
//! Started with [`IngressGuard::start_pinned`], the maps and every cgroup's link are pinned in a
//! bpffs directory, so the programs keep deciding while the process that loaded them is gone:
//! the next one reuses the maps (tables, counts, and the ring with what arrived meanwhile),
//! adopts the links (switching them to its own program) and drops those of cgroups that no
//! longer exist.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, Object, ObjectBuilder};
use rampart_policy::{IngressCell, IngressTable, Protocol, Verdict};

use crate::cgroup_dir::{self, CgroupDirError};
use crate::{object_maps, percpu_counts, ring};

static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ingress_guard.bpf.o"));

const PROGRAM: &str = "rampart_ingress";
/// The C program's limits (MAX_CELLS4, MAX_CELLS6) and cell sizes.
pub const MAX_CELLS_V4: usize = 128;
pub const MAX_CELLS_V6: usize = 64;
const CELL4: usize = 16;
const CELL6: usize = 40;
const TABLE_BYTES: usize = 8 + MAX_CELLS_V4 * CELL4 + MAX_CELLS_V6 * CELL6;
/// struct event in the C program.
const EVENT_SIZE: usize = 40;
const RING_BYTES: u32 = 256 * 1024;

/// The maps a pinned guard shares with the next one.
const PINNED_MAPS: [&str; 3] = ["tables", "counts", "events"];

const PROTO_TCP: u8 = 1;
const PROTO_UDP: u8 = 2;
const PROTO_RAW: u8 = 3;
const VERDICT_ALERT: u8 = 1;
const VERDICT_BLOCK: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error(
        "loading the ingress guard's BPF program failed while {stage}: {source} (needs root, \
         or CAP_BPF + CAP_NET_ADMIN, on a kernel with cgroup BPF)"
    )]
    Load {
        stage: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error(transparent)]
    Cgroup(#[from] CgroupDirError),
    #[error(
        "the ingress rules of {path} need {v4} IPv4 and {v6} IPv6 cells, more than the kernel \
         table holds ({MAX_CELLS_V4} and {MAX_CELLS_V6}): merge CIDRs or port ranges, or split \
         the rules over fewer distinct boundaries"
    )]
    TooManyCells { path: PathBuf, v4: usize, v6: usize },
    #[error(
        "pinning the ingress link of cgroup {cgroup_id} failed: {source} (is a bpffs mounted \
         at the pin directory?); the cgroup is not guarded"
    )]
    Pin {
        cgroup_id: u64,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("storing the ingress table of cgroup {cgroup_id} failed: {source}")]
    Table {
        cgroup_id: u64,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error(
        "attaching the ingress program to cgroup {path} failed: {source} (needs root; check \
         that the cgroup still exists)"
    )]
    Attach {
        path: PathBuf,
        #[source]
        source: libbpf_rs::Error,
    },
}

/// One refused or reported arrival, as the kernel saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngressEvent {
    /// The cgroup whose table decided (the container's).
    pub cgroup_id: u64,
    pub peer: IpAddr,
    /// The local port the peer came to (0 for raw sockets).
    pub port: u16,
    pub protocol: Protocol,
    /// Block: the packet was dropped. Alert: it passed.
    pub verdict: Verdict,
}

/// What the program counted since load, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngressCounts {
    /// Events written to the ring, and those the full ring could not take.
    pub written: u64,
    pub dropped: u64,
    /// Packets refused.
    pub refused: u64,
    /// Packets for a guarded cgroup whose table was gone (refused).
    pub untabled: u64,
}

pub struct IngressGuard {
    // Field order is drop order: the links first (pinned ones stay attached).
    links: Mutex<HashMap<u64, Link>>,
    /// Where links are pinned, one per cgroup id; None: not pinned (they go with the process).
    link_pins: Option<PathBuf>,
    tables: MapHandle,
    counts: MapHandle,
    /// The ring, until a reader thread takes it.
    ring: Mutex<Option<MapHandle>>,
    object: Object,
}

impl std::fmt::Debug for IngressGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressGuard").finish_non_exhaustive()
    }
}

impl IngressGuard {
    /// Loads the program and starts the thread that hands each event to `on_event`.
    pub fn start(
        on_event: impl FnMut(IngressEvent) + Send + 'static,
    ) -> Result<Arc<IngressGuard>, IngressError> {
        Self::start_with(RING_BYTES, Some(Box::new(on_event)), None)
    }

    /// Loads the program with the maps and links pinned under `dir` (in a bpffs), adopting the
    /// links an earlier guard pinned there. Its events wait in the ring (with those that came
    /// while no guard ran) until [`read_events`](Self::read_events).
    pub fn start_pinned(dir: &Path) -> Result<Arc<IngressGuard>, IngressError> {
        Self::start_with(RING_BYTES, None, Some(dir))
    }

    /// Starts the thread that hands each event to `on_event` (once: later calls do nothing).
    pub fn read_events(
        &self,
        on_event: impl FnMut(IngressEvent) + Send + 'static,
    ) -> Result<(), IngressError> {
        let Some(events) = self.ring.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(());
        };
        ring::spawn_reader("ingress-guard", events, parse_event, on_event).map_err(|e| {
            IngressError::Load {
                stage: "starting its reader thread",
                source: libbpf_rs::Error::from(e),
            }
        })
    }

    /// With a ring of `ring_bytes` (a power of two, at least a page) and, without `on_event`, no
    /// reader: the ring fills, and [`drain`](Self::drain) reads it (loss accounting tests).
    #[doc(hidden)]
    pub fn start_with(
        ring_bytes: u32,
        on_event: Option<Box<dyn FnMut(IngressEvent) + Send>>,
        pins: Option<&Path>,
    ) -> Result<Arc<IngressGuard>, IngressError> {
        let load = |stage| move |source| IngressError::Load { stage, source };
        if let Some(dir) = pins {
            // libbpf makes only the last component of a pin path.
            std::fs::create_dir_all(dir)
                .map_err(|e| load("making its pin directory")(libbpf_rs::Error::from(e)))?;
        }
        let object = match Self::load(ring_bytes, pins) {
            Ok(o) => o,
            // Maps pinned by another version of the program (their layout changed): start over,
            // as on a first start. The old links still hold the old maps until they are dropped.
            Err(first) if pins.is_some() => {
                let dir = pins.unwrap_or(Path::new(""));
                tracing::warn!(dir = %dir.display(), error = %first, "the ingress guard's pinned maps can't be reused; starting anew");
                for name in PINNED_MAPS {
                    let _ = std::fs::remove_file(dir.join(name));
                }
                Self::load(ring_bytes, pins).map_err(load("loading it into the kernel"))?
            }
            Err(e) => return Err(load("loading it into the kernel")(e)),
        };
        let map = |name: &str| object_maps::handle(&object, name).map_err(load("finding its maps"));
        let (tables, counts, events) = (map("tables")?, map("counts")?, map("events")?);
        let ring = match on_event {
            Some(on_event) => {
                ring::spawn_reader("ingress-guard", events, parse_event, on_event)
                    .map_err(|e| load("starting its reader thread")(libbpf_rs::Error::from(e)))?;
                None
            }
            None => Some(events),
        };
        let link_pins = pins.map(|d| d.join("links"));
        let guard = IngressGuard {
            links: Mutex::new(HashMap::new()),
            link_pins,
            tables,
            counts,
            ring: Mutex::new(ring),
            object,
        };
        guard.adopt();
        Ok(Arc::new(guard))
    }

    fn load(ring_bytes: u32, pins: Option<&Path>) -> Result<Object, libbpf_rs::Error> {
        let mut open = ObjectBuilder::default().open_memory(BPF_OBJECT)?;
        for mut map in open.maps_mut() {
            let name = map.name().to_string_lossy().into_owned();
            if name == "events" {
                map.set_max_entries(ring_bytes)?;
            }
            if let Some(dir) = pins
                && PINNED_MAPS.contains(&name.as_str())
            {
                // libbpf reuses a compatible map pinned there, or pins the new one.
                map.set_pin_path(dir.join(&name))?;
            }
        }
        open.load()
    }

    /// Takes over the links an earlier guard pinned (switching them to this program), and drops
    /// those whose cgroup is gone.
    fn adopt(&self) {
        let Some(dir) = &self.link_pins else {
            return;
        };
        let _ = std::fs::create_dir_all(dir);
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let existing = cgroup_dir::v2_root().map(|root| cgroup_dir::existing_ids(&root));
        let prog = self.object.progs().find(|p| p.name() == PROGRAM);
        let mut links = self.lock_links();
        for e in entries.flatten() {
            let path = e.path();
            let Some(id) = e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            let Ok(mut link) = Link::open(&path) else {
                let _ = std::fs::remove_file(&path);
                continue;
            };
            let gone = existing.as_ref().is_some_and(|ids| !ids.contains(&id));
            if gone {
                // Unpinned and dropped: detached (the kernel did already, with the cgroup).
                let _ = link.unpin();
                let _ = self.tables.delete(&id.to_ne_bytes());
                continue;
            }
            if let Some(prog) = &prog
                && let Err(err) = link.update_prog(prog)
            {
                // Its program would go on reading maps this guard does not write: dropped, the
                // cgroup is guarded again when its container is bound.
                tracing::warn!(cgroup_id = id, error = %err, "a pinned ingress link could not take this program; detached until its container is bound again");
                let _ = link.unpin();
                continue;
            }
            links.insert(id, link);
        }
    }

    /// Decides ingress for the cgroup v2 directory `cgroup_dir` (and the cgroups below it) by
    /// `table` from now on: the table is stored, then the program attached (once per cgroup;
    /// later calls replace the table). Returns the cgroup id. An empty table releases the
    /// cgroup instead.
    pub fn guard(&self, cgroup_dir: &Path, table: &IngressTable) -> Result<u64, IngressError> {
        let (dir, cgroup_id) = cgroup_dir::open(cgroup_dir)?;
        if table.is_empty() {
            self.release(cgroup_id);
            return Ok(cgroup_id);
        }
        let value = encode(table).ok_or_else(|| IngressError::TooManyCells {
            path: cgroup_dir.to_path_buf(),
            v4: table.v4.len(),
            v6: table.v6.len(),
        })?;
        self.tables
            .update(&cgroup_id.to_ne_bytes(), &value, MapFlags::ANY)
            .map_err(|source| IngressError::Table { cgroup_id, source })?;
        let mut links = self.lock_links();
        if links.contains_key(&cgroup_id) {
            return Ok(cgroup_id);
        }
        let attached = self
            .object
            .progs_mut()
            .find(|p| p.name() == PROGRAM)
            .ok_or_else(|| {
                libbpf_rs::Error::from(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "program missing from the BPF object",
                ))
            })
            .and_then(|prog| prog.attach_cgroup(dir.as_raw_fd()));
        match attached {
            Ok(mut link) => {
                if let Some(dir) = &self.link_pins
                    && let Err(source) = std::fs::create_dir_all(dir)
                        .map_err(libbpf_rs::Error::from)
                        .and_then(|()| link.pin(dir.join(cgroup_id.to_string())))
                {
                    // Dropping the link detaches it again.
                    let _ = self.tables.delete(&cgroup_id.to_ne_bytes());
                    return Err(IngressError::Pin { cgroup_id, source });
                }
                links.insert(cgroup_id, link);
                Ok(cgroup_id)
            }
            Err(source) => {
                let _ = self.tables.delete(&cgroup_id.to_ne_bytes());
                Err(IngressError::Attach {
                    path: cgroup_dir.to_path_buf(),
                    source,
                })
            }
        }
    }

    /// The cgroup is no longer guarded: the program is detached (its pin removed), then its
    /// table removed.
    pub fn release(&self, cgroup_id: u64) {
        if let Some(mut link) = self.lock_links().remove(&cgroup_id) {
            let _ = link.unpin();
        }
        let _ = self.tables.delete(&cgroup_id.to_ne_bytes());
    }

    /// The cgroups guarded now.
    pub fn guarded(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.lock_links().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub fn counts(&self) -> IngressCounts {
        let sum = |index| percpu_counts::sum(&self.counts, index);
        IngressCounts {
            written: sum(0),
            dropped: sum(1),
            refused: sum(2),
            untabled: sum(3),
        }
    }

    /// Reads what the ring holds when there is no reader thread: the events it delivered.
    #[doc(hidden)]
    pub fn drain(&self) -> Vec<IngressEvent> {
        self.ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or_else(Vec::new, |events| ring::drain(events, parse_event))
    }

    fn lock_links(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Link>> {
        // Each update is one map operation: a poisoned lock still holds a consistent map.
        self.links.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn proto_code(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => PROTO_TCP,
        Protocol::Udp => PROTO_UDP,
        Protocol::Raw => PROTO_RAW,
    }
}

/// `struct table` of the C program, or None if the table has more cells than it holds.
fn encode(table: &IngressTable) -> Option<Vec<u8>> {
    if table.v4.len() > MAX_CELLS_V4 || table.v6.len() > MAX_CELLS_V6 {
        return None;
    }
    let mut out = vec![0u8; TABLE_BYTES];
    out[0..4].copy_from_slice(&(table.v4.len() as u32).to_ne_bytes());
    out[4..8].copy_from_slice(&(table.v6.len() as u32).to_ne_bytes());
    let tail = |c: &IngressCell, b: &mut [u8]| {
        b[0..2].copy_from_slice(&c.ports.0.to_ne_bytes());
        b[2..4].copy_from_slice(&c.ports.1.to_ne_bytes());
        b[4] = proto_code(c.protocol);
        b[5] = match c.verdict {
            Verdict::Block => VERDICT_BLOCK,
            Verdict::Alert => VERDICT_ALERT,
            Verdict::Allow => 0,
        };
    };
    for (i, c) in table.v4.iter().enumerate() {
        let b = &mut out[8 + i * CELL4..8 + (i + 1) * CELL4];
        b[0..4].copy_from_slice(&(c.first as u32).to_ne_bytes());
        b[4..8].copy_from_slice(&(c.last as u32).to_ne_bytes());
        tail(c, &mut b[8..]);
    }
    let base = 8 + MAX_CELLS_V4 * CELL4;
    for (i, c) in table.v6.iter().enumerate() {
        let b = &mut out[base + i * CELL6..base + (i + 1) * CELL6];
        let halves = |v: u128| ((v >> 64) as u64, v as u64);
        let (fh, fl) = halves(c.first);
        let (lh, ll) = halves(c.last);
        b[0..8].copy_from_slice(&fh.to_ne_bytes());
        b[8..16].copy_from_slice(&fl.to_ne_bytes());
        b[16..24].copy_from_slice(&lh.to_ne_bytes());
        b[24..32].copy_from_slice(&ll.to_ne_bytes());
        tail(c, &mut b[32..]);
    }
    Some(out)
}

/// `struct event` of the C program.
fn parse_event(data: &[u8]) -> Option<IngressEvent> {
    if data.len() < EVENT_SIZE {
        return None;
    }
    let cgroup_id = u64::from_ne_bytes(data[0..8].try_into().ok()?);
    let addr: [u8; 16] = data[8..24].try_into().ok()?;
    let family = u16::from_ne_bytes(data[24..26].try_into().ok()?);
    let port = u16::from_ne_bytes(data[26..28].try_into().ok()?);
    let peer = match family {
        4 => IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
        6 => IpAddr::V6(Ipv6Addr::from(addr)),
        _ => return None,
    };
    let protocol = match data[28] {
        PROTO_TCP => Protocol::Tcp,
        PROTO_UDP => Protocol::Udp,
        PROTO_RAW => Protocol::Raw,
        _ => return None,
    };
    let verdict = match data[29] {
        VERDICT_BLOCK => Verdict::Block,
        VERDICT_ALERT => Verdict::Alert,
        _ => return None,
    };
    Some(IngressEvent {
        cgroup_id,
        peer,
        port,
        protocol,
        verdict,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(first: u128, last: u128, protocol: Protocol, verdict: Verdict) -> IngressCell {
        IngressCell {
            first,
            last,
            ports: (80, 443),
            protocol,
            verdict,
        }
    }

    #[test]
    fn a_table_is_laid_out_as_the_program_reads_it() {
        let table = IngressTable {
            v4: vec![cell(
                0x0a00_0000,
                0x0aff_ffff,
                Protocol::Udp,
                Verdict::Block,
            )],
            v6: vec![cell(
                (1 << 64) | 2,
                (3 << 64) | 4,
                Protocol::Raw,
                Verdict::Alert,
            )],
        };
        let b = encode(&table).unwrap();
        assert_eq!(b.len(), TABLE_BYTES);
        assert_eq!(&b[0..8], &[1, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&b[8..12], &0x0a00_0000u32.to_ne_bytes());
        assert_eq!(&b[12..16], &0x0aff_ffffu32.to_ne_bytes());
        assert_eq!(&b[16..20], &[80, 0, 0xbb, 1]);
        assert_eq!(&b[20..22], &[PROTO_UDP, VERDICT_BLOCK]);
        let v6 = 8 + MAX_CELLS_V4 * CELL4;
        assert_eq!(&b[v6..v6 + 8], &1u64.to_ne_bytes());
        assert_eq!(&b[v6 + 8..v6 + 16], &2u64.to_ne_bytes());
        assert_eq!(&b[v6 + 16..v6 + 24], &3u64.to_ne_bytes());
        assert_eq!(&b[v6 + 24..v6 + 32], &4u64.to_ne_bytes());
        assert_eq!(&b[v6 + 36..v6 + 38], &[PROTO_RAW, VERDICT_ALERT]);
    }

    #[test]
    fn a_table_larger_than_the_kernel_s_is_refused() {
        let many = vec![cell(1, 1, Protocol::Tcp, Verdict::Block); MAX_CELLS_V4 + 1];
        assert!(
            encode(&IngressTable {
                v4: many,
                v6: vec![]
            })
            .is_none()
        );
    }

    #[test]
    fn an_event_is_read_as_the_program_writes_it() {
        let mut raw = [0u8; EVENT_SIZE];
        raw[0..8].copy_from_slice(&77u64.to_ne_bytes());
        raw[8..12].copy_from_slice(&[10, 88, 77, 1]);
        raw[24..26].copy_from_slice(&4u16.to_ne_bytes());
        raw[26..28].copy_from_slice(&8080u16.to_ne_bytes());
        raw[28] = PROTO_TCP;
        raw[29] = VERDICT_BLOCK;
        assert_eq!(
            parse_event(&raw),
            Some(IngressEvent {
                cgroup_id: 77,
                peer: "10.88.77.1".parse().unwrap(),
                port: 8080,
                protocol: Protocol::Tcp,
                verdict: Verdict::Block,
            })
        );
        raw[29] = 9;
        assert_eq!(parse_event(&raw), None);
        assert_eq!(parse_event(&raw[..20]), None);
    }
}
