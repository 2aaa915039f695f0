//! The process sensor: BTF tracepoints on fork, exec and exit (`process_sensor.bpf.c`), filtered
//! in the kernel by the cgroups the agent watches, read from a ring buffer into a
//! [`ProcessTable`] on a thread of its own. What the ring could not hold is counted in the
//! kernel, per CPU, and reported by [`ProcessSensor::counts`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, Object, ObjectBuilder, RingBufferBuilder};

use crate::process_table::{Ancestor, HostProcfs, ProcessTable, Procfs};
use crate::{object_maps, percpu_counts};

static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/process_sensor.bpf.o"));

const PROGRAMS: [&str; 3] = ["rampart_fork", "rampart_exec", "rampart_exit"];
const EVENT_FORK: u32 = 1;
const EVENT_EXEC: u32 = 2;
const EVENT_EXIT: u32 = 3;
/// struct event in the C program.
const EVENT_SIZE: usize = 32 + 256;
/// The ring: ~3500 events, a burst of forks and execs the reader catches up with.
const RING_BYTES: u32 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error(
        "loading the process sensor's BPF programs failed while {stage}: {source} (needs root \
         and a kernel with BTF and BTF tracepoints, tp_btf)"
    )]
    Load {
        stage: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("watching cgroup {cgroup_id} failed: {source}")]
    Watch {
        cgroup_id: u64,
        #[source]
        source: libbpf_rs::Error,
    },
}

/// Events the kernel side wrote to the ring, and those it had to drop (the ring was full).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SensorCounts {
    pub written: u64,
    pub dropped: u64,
}

pub struct ProcessSensor {
    // Field order is drop order: the links first.
    _links: Vec<Link>,
    watched: MapHandle,
    counts: MapHandle,
    table: Arc<Mutex<ProcessTable>>,
    /// The ring, held open when no reader thread drains it (tests).
    _ring: Option<MapHandle>,
    _object: Object,
}

impl std::fmt::Debug for ProcessSensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessSensor").finish_non_exhaustive()
    }
}

impl ProcessSensor {
    /// Loads and attaches the programs and starts the thread that reads their events.
    pub fn start() -> Result<Arc<ProcessSensor>, SensorError> {
        Self::start_with(RING_BYTES, true)
    }

    /// [`start`](Self::start) with a ring of `ring_bytes` (a power of two, at least a page), and
    /// with or without the reader thread (without it, the ring fills: what loss accounting is
    /// tested with).
    fn start_with(ring_bytes: u32, read: bool) -> Result<Arc<ProcessSensor>, SensorError> {
        let load = |stage| move |source| SensorError::Load { stage, source };
        let mut open = ObjectBuilder::default()
            .open_memory(BPF_OBJECT)
            .map_err(load("opening the object"))?;
        if let Some(mut ring) = open.maps_mut().find(|m| m.name() == "events") {
            ring.set_max_entries(ring_bytes)
                .map_err(load("sizing its ring buffer"))?;
        }
        let object = open.load().map_err(load("loading it into the kernel"))?;
        let map = |name: &str| object_maps::handle(&object, name).map_err(load("finding its maps"));
        let (watched, counts, events) = (map("watched")?, map("counts")?, map("events")?);
        let mut links = Vec::with_capacity(PROGRAMS.len());
        for prog in object.progs_mut() {
            if PROGRAMS.contains(&prog.name().to_str().unwrap_or_default()) {
                links.push(prog.attach().map_err(load("attaching the tracepoints"))?);
            }
        }
        let table = Arc::new(Mutex::new(ProcessTable::default()));
        let ring = if read {
            let reader = table.clone();
            std::thread::Builder::new()
                .name("process-sensor".into())
                .spawn(move || read_events(events, reader))
                .map_err(|e| SensorError::Load {
                    stage: "starting its reader thread",
                    source: libbpf_rs::Error::from(e),
                })?;
            None
        } else {
            Some(events)
        };
        Ok(Arc::new(ProcessSensor {
            _links: links,
            watched,
            counts,
            table,
            _ring: ring,
            _object: object,
        }))
    }

    /// Processes in the cgroup v2 `cgroup_id` (and only that cgroup, not those below it) are
    /// recorded from now on.
    pub fn watch(&self, cgroup_id: u64) -> Result<(), SensorError> {
        self.watched
            .update(&cgroup_id.to_ne_bytes(), &[1], MapFlags::ANY)
            .map_err(|source| SensorError::Watch { cgroup_id, source })
    }

    /// The container is gone.
    pub fn unwatch(&self, cgroup_id: u64) {
        let _ = self.watched.delete(&cgroup_id.to_ne_bytes());
    }

    /// The processes that started `pid`, its parent first (see [`ProcessTable::ancestry`]).
    pub fn ancestry(&self, pid: u32) -> Vec<Ancestor> {
        self.ancestry_with(pid, &HostProcfs)
    }

    fn ancestry_with(&self, pid: u32, procfs: &dyn Procfs) -> Vec<Ancestor> {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ancestry(pid, procfs)
    }

    /// Reads what the ring holds, without a reader thread: how many events it delivered.
    #[cfg(test)]
    fn drain(&self) -> usize {
        let Some(events) = &self._ring else { return 0 };
        let delivered = std::cell::Cell::new(0usize);
        let mut builder = RingBufferBuilder::new();
        builder
            .add(events, |_: &[u8]| {
                delivered.set(delivered.get() + 1);
                0
            })
            .unwrap();
        let ring = builder.build().unwrap();
        ring.consume().unwrap();
        drop(ring);
        delivered.get()
    }

    /// What the kernel side wrote and dropped so far, summed over CPUs.
    pub fn counts(&self) -> SensorCounts {
        let sum = |index| percpu_counts::sum(&self.counts, index);
        SensorCounts {
            written: sum(0),
            dropped: sum(1),
        }
    }
}

/// The reader thread: never returns while the ring can be polled.
fn read_events(events: MapHandle, table: Arc<Mutex<ProcessTable>>) {
    let mut builder = RingBufferBuilder::new();
    let handler = {
        let table = table.clone();
        move |data: &[u8]| {
            if let Some(e) = RawEvent::parse(data) {
                apply(&table, e);
            }
            0
        }
    };
    if builder.add(&events, handler).is_err() {
        return;
    }
    let Ok(ring) = builder.build() else {
        return;
    };
    loop {
        if ring.poll(Duration::from_millis(200)).is_err() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn apply(table: &Mutex<ProcessTable>, e: RawEvent) {
    match e.kind {
        EVENT_FORK => table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .forked(e.pid, e.ppid),
        EVENT_EXEC => {
            // The process is usually still there: its real executable and command line (the
            // event only has the name execve was given).
            let procfs = HostProcfs;
            let executable = procfs.executable(e.pid).unwrap_or(e.filename);
            let args = procfs.args(e.pid);
            table
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .execed(e.pid, e.ppid, executable, args);
        }
        EVENT_EXIT => table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .exited(e.pid),
        _ => {}
    }
}

/// One event as the C program lays it out.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawEvent {
    kind: u32,
    pid: u32,
    ppid: u32,
    filename: String,
}

impl RawEvent {
    fn parse(data: &[u8]) -> Option<RawEvent> {
        if data.len() < EVENT_SIZE {
            return None;
        }
        let u32_at = |o: usize| {
            data.get(o..o + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_ne_bytes)
        };
        let len = (u32_at(12)? as usize).min(256);
        Some(RawEvent {
            kind: u32_at(0)?,
            pid: u32_at(4)?,
            ppid: u32_at(8)?,
            filename: String::from_utf8_lossy(&data[32..32 + len]).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn an_event_is_read_as_the_program_writes_it() {
        let mut raw = vec![0u8; EVENT_SIZE];
        raw[0..4].copy_from_slice(&EVENT_EXEC.to_ne_bytes());
        raw[4..8].copy_from_slice(&42u32.to_ne_bytes());
        raw[8..12].copy_from_slice(&7u32.to_ne_bytes());
        raw[12..16].copy_from_slice(&7u32.to_ne_bytes());
        raw[32..39].copy_from_slice(b"/bin/sh");
        assert_eq!(
            RawEvent::parse(&raw),
            Some(RawEvent {
                kind: EVENT_EXEC,
                pid: 42,
                ppid: 7,
                filename: "/bin/sh".into()
            })
        );
        assert_eq!(RawEvent::parse(&raw[..20]), None);
    }

    /// The test's own cgroup watched: a shell it starts forks and execs a child, and the child's
    /// ancestry names the shell and this test, from the kernel's events.
    #[test]
    fn a_child_s_ancestry_comes_from_the_kernel() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("needs root; skipped");
            return;
        }
        let sensor = ProcessSensor::start().expect("the process sensor loads on this kernel");
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let path = cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .expect("a cgroup v2 membership");
        let root = if std::path::Path::new("/sys/fs/cgroup/unified").exists() {
            "/sys/fs/cgroup/unified"
        } else {
            "/sys/fs/cgroup"
        };
        let id = std::fs::metadata(format!("{root}{path}")).unwrap().ino();
        sensor.watch(id).unwrap();
        // sh forks a child that execs sleep; the shell waits, so both are known.
        let mut sh = std::process::Command::new("/bin/sh")
            .args(["-c", "/bin/sleep 2; true"])
            .spawn()
            .unwrap();
        let sh_pid = sh.id();
        let mut chain = Vec::new();
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(20));
            let kids = std::fs::read_to_string(format!("/proc/{sh_pid}/task/{sh_pid}/children"))
                .unwrap_or_default();
            if let Some(sleep) = kids.split_whitespace().next().and_then(|p| p.parse().ok()) {
                chain = sensor.ancestry_with(sleep, &crate::process_table::NoProcfs);
                if !chain.is_empty() {
                    break;
                }
            }
        }
        sh.wait().unwrap();
        sensor.unwatch(id);
        assert_eq!(chain.first().map(|a| a.pid), Some(sh_pid), "{chain:?}");
        assert_eq!(
            chain[0].args.first().map(String::as_str),
            Some("/bin/sh"),
            "{chain:?}"
        );
        let counts = sensor.counts();
        assert!(counts.written >= 2, "{counts:?}");
    }

    /// A ring far too small for a burst, and nobody reading it: every event the kernel produced
    /// is either written or counted as dropped, and the ring delivers exactly what was written.
    #[test]
    fn under_a_flood_nothing_is_lost_uncounted() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("needs root; skipped");
            return;
        }
        let sensor = ProcessSensor::start_with(4096, false).expect("the sensor loads");
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let own = cgroup.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
        let root = if std::path::Path::new("/sys/fs/cgroup/unified").exists() {
            "/sys/fs/cgroup/unified"
        } else {
            "/sys/fs/cgroup"
        };
        // A cgroup of the test's own that nothing else runs in: each child forks outside it (in
        // the test's cgroup), moves in, execs true and exits: two watched events apiece.
        let flood =
            std::path::PathBuf::from(format!("{root}{own}/rampart-flood-{}", std::process::id()));
        std::fs::create_dir(&flood).unwrap();
        sensor
            .watch(std::fs::metadata(&flood).unwrap().ino())
            .unwrap();
        const CHILDREN: u64 = 100;
        let procs = flood.join("cgroup.procs");
        for _ in 0..CHILDREN {
            let status = std::process::Command::new("/bin/sh")
                .args([
                    "-c",
                    &format!("echo $$ > {} && exec /bin/true", procs.display()),
                ])
                .status()
                .unwrap();
            assert!(status.success());
        }
        let counts = sensor.counts();
        let delivered = sensor.drain() as u64;
        std::fs::remove_dir(&flood).unwrap();
        eprintln!("{counts:?}, {delivered} delivered");
        assert_eq!(counts.written + counts.dropped, 2 * CHILDREN, "{counts:?}");
        assert!(
            counts.dropped > 0,
            "the ring was meant to overflow: {counts:?}"
        );
        assert_eq!(delivered, counts.written, "{counts:?}");
    }
}
