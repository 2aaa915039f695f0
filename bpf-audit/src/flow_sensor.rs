//! The flow sensor: the TCP connections of watched cgroups as they open, fail and close, with
//! their addresses and the bytes each way (`flow_sensor.bpf.c`, a BTF tracepoint on TCP state
//! changes), and their UDP flows, each (direction, peer, local port) the first time it is seen
//! (cgroup sock_addr programs, attached to each cgroup with [`FlowSensor::attach_udp`]); read
//! from a ring buffer on a thread of its own and handed to the caller. What the ring could not
//! hold is counted, in total and per cgroup.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, Object};

use crate::process_sensor::{SensorCounts, SensorError};
use crate::{object_maps, percpu_counts, ring};

static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/flow_sensor.bpf.o"));

const PROGRAM: &str = "rampart_tcp_state";
/// struct flow in the C program.
const FLOW_SIZE: usize = 64;
const RING_BYTES: u32 = 512 * 1024;

/// What happened to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// A connect of the container's was answered.
    Connected,
    /// The container accepted a connection.
    Accepted,
    /// A connect of the container's got no connection (refused, reset, timed out).
    Failed,
    /// A connection closed; the bytes are its totals.
    Closed,
    /// The first UDP datagram (or connect) of the container's to this peer from this local port.
    UdpSent,
    /// The first UDP datagram from this peer that the container read with its source address.
    UdpReceived,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub cgroup_id: u64,
    pub kind: FlowKind,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Closed: bytes received, and bytes sent that the peer acknowledged, as TCP counts them
    /// (in sequence space: the SYN and FIN count one each where they were).
    pub bytes_received: u64,
    pub bytes_sent: u64,
}

/// What the sensor hands each flow event to.
pub type FlowHandler = Box<dyn FnMut(&Flow) + Send>;

/// The UDP programs, attached to each watched cgroup.
const UDP_PROGRAMS: [&str; 6] = [
    "rampart_udp_send4",
    "rampart_udp_send6",
    "rampart_udp_connect4",
    "rampart_udp_connect6",
    "rampart_udp_recv4",
    "rampart_udp_recv6",
];

pub struct FlowSensor {
    // Field order is drop order: the links first.
    udp_links: std::sync::Mutex<std::collections::HashMap<u64, Vec<Link>>>,
    _link: Link,
    watched: MapHandle,
    counts: MapHandle,
    dropped_by_cgroup: MapHandle,
    /// The ring, held open when no reader thread drains it (tests).
    ring: Option<MapHandle>,
    object: Object,
}

impl std::fmt::Debug for FlowSensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowSensor").finish_non_exhaustive()
    }
}

impl FlowSensor {
    /// Loads and attaches the program and starts the thread that hands each event to `on_flow`.
    pub fn start(on_flow: FlowHandler) -> Result<Arc<FlowSensor>, SensorError> {
        Self::start_with(RING_BYTES, Some(on_flow))
    }

    /// With a ring of `ring_bytes`, and without a handler no reader (the ring fills; tests).
    #[doc(hidden)]
    pub fn start_with(
        ring_bytes: u32,
        on_flow: Option<FlowHandler>,
    ) -> Result<Arc<FlowSensor>, SensorError> {
        let load = |stage| move |source| SensorError::Load { stage, source };
        let object = object_maps::load(BPF_OBJECT, ring_bytes)
            .map_err(|(stage, source)| SensorError::Load { stage, source })?;
        let map = |name: &str| object_maps::handle(&object, name).map_err(load("finding its maps"));
        let (watched, counts, events) = (map("watched")?, map("counts")?, map("events")?);
        let dropped_by_cgroup = map("dropped_by_cgroup")?;
        let link = object
            .progs_mut()
            .find(|p| p.name() == PROGRAM)
            .ok_or_else(|| {
                libbpf_rs::Error::from(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "program missing from the BPF object",
                ))
            })
            .and_then(|p| p.attach())
            .map_err(load("attaching the tracepoint"))?;
        let ring = match on_flow {
            Some(mut on_flow) => {
                ring::spawn_reader("flow-sensor", events, parse_flow, move |f| on_flow(&f))
                    .map_err(|e| load("starting its reader thread")(libbpf_rs::Error::from(e)))?;
                None
            }
            None => Some(events),
        };
        Ok(Arc::new(FlowSensor {
            udp_links: std::sync::Mutex::new(std::collections::HashMap::new()),
            _link: link,
            watched,
            counts,
            dropped_by_cgroup,
            ring,
            object,
        }))
    }

    /// Connections of sockets made in the cgroup v2 `cgroup_id` (and accepted by its listeners)
    /// are reported from now on.
    pub fn watch(&self, cgroup_id: u64) -> Result<(), SensorError> {
        self.watched
            .update(&cgroup_id.to_ne_bytes(), &[1], MapFlags::ANY)
            .map_err(|source| SensorError::Watch { cgroup_id, source })
    }

    pub fn unwatch(&self, cgroup_id: u64) {
        let _ = self.watched.delete(&cgroup_id.to_ne_bytes());
        let _ = self.dropped_by_cgroup.delete(&cgroup_id.to_ne_bytes());
        drop(self.lock_udp().remove(&cgroup_id));
    }

    /// Reports the UDP flows of sockets in the cgroup v2 directory `cgroup_dir` (and below) from
    /// now on (idempotent); its id is returned. [`unwatch`](Self::unwatch) detaches them.
    pub fn attach_udp(&self, cgroup_dir: &std::path::Path) -> Result<u64, SensorError> {
        let (dir, cgroup_id) =
            crate::cgroup_dir::open(cgroup_dir).map_err(|e| SensorError::Watch {
                cgroup_id: 0,
                source: libbpf_rs::Error::from(std::io::Error::other(e.to_string())),
            })?;
        let mut all = self.lock_udp();
        if all.contains_key(&cgroup_id) {
            return Ok(cgroup_id);
        }
        let mut links = Vec::with_capacity(UDP_PROGRAMS.len());
        for prog in self.object.progs_mut() {
            let name = prog.name().to_string_lossy();
            if UDP_PROGRAMS.contains(&name.as_ref()) {
                // On error the links attached so far are dropped: detached again.
                let link = prog
                    .attach_cgroup(std::os::fd::AsRawFd::as_raw_fd(&dir))
                    .map_err(|source| SensorError::Watch { cgroup_id, source })?;
                links.push(link);
            }
        }
        all.insert(cgroup_id, links);
        Ok(cgroup_id)
    }

    fn lock_udp(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, Vec<Link>>> {
        // Each update is one map operation: a poisoned lock still holds a consistent map.
        self.udp_links.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn counts(&self) -> SensorCounts {
        let sum = |index| percpu_counts::sum(&self.counts, index);
        SensorCounts {
            written: sum(0),
            dropped: sum(1),
        }
    }

    /// Events of the cgroup the ring could not hold.
    pub fn dropped_for(&self, cgroup_id: u64) -> u64 {
        percpu_counts::lookup_u64(&self.dropped_by_cgroup, cgroup_id)
    }

    /// Reads what the ring holds when there is no reader thread.
    #[doc(hidden)]
    pub fn drain(&self) -> Vec<Flow> {
        self.ring
            .as_ref()
            .map_or_else(Vec::new, |events| ring::drain(events, parse_flow))
    }
}

/// `struct flow` of the C program.
fn parse_flow(data: &[u8]) -> Option<Flow> {
    if data.len() < FLOW_SIZE {
        return None;
    }
    let u64_at =
        |o: usize| -> Option<u64> { Some(u64::from_ne_bytes(data[o..o + 8].try_into().ok()?)) };
    let u16_at =
        |o: usize| -> Option<u16> { Some(u16::from_ne_bytes(data[o..o + 2].try_into().ok()?)) };
    let family = u16_at(60)?;
    let ip = |o: usize| -> Option<IpAddr> {
        let b: [u8; 16] = data[o..o + 16].try_into().ok()?;
        match family {
            4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
            6 => {
                let v6 = Ipv6Addr::from(b);
                Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
            }
            _ => None,
        }
    };
    let kind = match data[62] {
        1 => FlowKind::Connected,
        2 => FlowKind::Accepted,
        3 => FlowKind::Failed,
        4 => FlowKind::Closed,
        5 => FlowKind::UdpSent,
        6 => FlowKind::UdpReceived,
        _ => return None,
    };
    Some(Flow {
        cgroup_id: u64_at(0)?,
        kind,
        local: SocketAddr::new(ip(24)?, u16_at(56)?),
        remote: SocketAddr::new(ip(40)?, u16_at(58)?),
        bytes_received: u64_at(8)?,
        bytes_sent: u64_at(16)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_is_read_as_the_program_writes_it() {
        let mut raw = [0u8; FLOW_SIZE];
        raw[0..8].copy_from_slice(&5u64.to_ne_bytes());
        raw[8..16].copy_from_slice(&100u64.to_ne_bytes());
        raw[16..24].copy_from_slice(&200u64.to_ne_bytes());
        raw[24..28].copy_from_slice(&[10, 88, 77, 2]);
        raw[40..44].copy_from_slice(&[10, 88, 77, 1]);
        raw[56..58].copy_from_slice(&80u16.to_ne_bytes());
        raw[58..60].copy_from_slice(&40000u16.to_ne_bytes());
        raw[60..62].copy_from_slice(&4u16.to_ne_bytes());
        raw[62] = 4;
        assert_eq!(
            parse_flow(&raw),
            Some(Flow {
                cgroup_id: 5,
                kind: FlowKind::Closed,
                local: "10.88.77.2:80".parse().unwrap(),
                remote: "10.88.77.1:40000".parse().unwrap(),
                bytes_received: 100,
                bytes_sent: 200,
            })
        );
        raw[62] = 9;
        assert_eq!(parse_flow(&raw), None);
    }
}
