//! The process sensor: BTF tracepoints on fork, exec and exit (`process_sensor.bpf.c`), filtered
//! in the kernel by the cgroups it is told to watch, read from a ring buffer into a
//! [`ProcessTable`] on a thread of its own. Every exec also says where the executed file is
//! ([`ExecOrigin`], decided in the kernel on the file it executes) and goes to the caller's
//! handler; in cgroups marked with [`ProcessSensor::kill_drift`] an exec of a file that is not the
//! image's is killed in the kernel before it runs. What the ring could not hold is counted in the
//! kernel, per CPU, and reported by [`ProcessSensor::counts`].

use std::sync::{Arc, Mutex};

use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, Object};

use crate::process_table::{Ancestor, HostProcfs, ProcessTable, Procfs};
use crate::{object_maps, percpu_counts, ring};

static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/process_sensor.bpf.o"));

const PROGRAMS: [&str; 3] = ["rampart_fork", "rampart_exec", "rampart_exit"];
const EVENT_FORK: u32 = 1;
const EVENT_EXEC: u32 = 2;
const EVENT_EXIT: u32 = 3;
/// struct event in the C program: a 48-byte header, the file name, the command line's start.
const HEADER: usize = 48;
const ARGS_AT: usize = HEADER + 256;
const EVENT_SIZE: usize = ARGS_AT + 256;
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

/// Where an executed file is, as the kernel found it (`ORIGIN_*` in the C program).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecOrigin {
    /// The container's root is not an overlayfs: the sensor can't tell.
    Unknown,
    /// The root overlay's lower layers: the image's own file.
    Image,
    /// The root overlay's upper layer: written after the container started, or an image file
    /// modified (copied up).
    Upper,
    /// Another filesystem than the root: a volume, a tmpfs.
    OtherFilesystem,
    Memfd,
    /// Deleted since it was opened.
    Deleted,
}

impl ExecOrigin {
    fn from_code(code: u8) -> ExecOrigin {
        match code {
            1 => ExecOrigin::Image,
            2 => ExecOrigin::Upper,
            3 => ExecOrigin::OtherFilesystem,
            4 => ExecOrigin::Memfd,
            5 => ExecOrigin::Deleted,
            _ => ExecOrigin::Unknown,
        }
    }

    /// Not the image's file (drift). Unknown counts as the image's: rampart can't tell, and
    /// does not fail the workload for it.
    pub fn is_drift(self) -> bool {
        !matches!(self, ExecOrigin::Image | ExecOrigin::Unknown)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExecOrigin::Unknown => "unknown",
            ExecOrigin::Image => "image",
            ExecOrigin::Upper => "upper-layer",
            ExecOrigin::OtherFilesystem => "other-filesystem",
            ExecOrigin::Memfd => "memfd",
            ExecOrigin::Deleted => "deleted",
        }
    }
}

/// One exec in a watched cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    /// Host pid (thread group id) and its parent.
    pub pid: u32,
    pub ppid: u32,
    pub cgroup_id: u64,
    /// The name execve was given; for a memfd, its own name (`memfd:NAME`).
    pub filename: String,
    /// The executable as /proc showed it when the event was read (the given name if the process
    /// was gone), and its command line (empty then).
    pub executable: String,
    pub args: Vec<String>,
    pub origin: ExecOrigin,
    pub inode: u64,
    /// The kernel's dev_t of the file's filesystem (major << 20 | minor).
    pub device: u32,
    /// Killed in the kernel for it (a cgroup marked with `kill_drift`).
    pub killed: bool,
}

/// What the sensor hands each exec to.
pub type ExecHandler = Box<dyn FnMut(&Exec) + Send>;

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
    drift_kill: MapHandle,
    dropped_by_cgroup: MapHandle,
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
    /// Loads and attaches the programs and starts the thread that reads their events, handing
    /// each exec to `on_exec` after the process table has it.
    pub fn start(on_exec: Option<ExecHandler>) -> Result<Arc<ProcessSensor>, SensorError> {
        Self::start_with(RING_BYTES, true, on_exec)
    }

    /// [`start`](Self::start) with a ring of `ring_bytes` (a power of two, at least a page), and
    /// with or without the reader thread (without it, the ring fills: what loss accounting is
    /// tested with).
    fn start_with(
        ring_bytes: u32,
        read: bool,
        on_exec: Option<ExecHandler>,
    ) -> Result<Arc<ProcessSensor>, SensorError> {
        let load = |stage| move |source| SensorError::Load { stage, source };
        let object = object_maps::load(BPF_OBJECT, ring_bytes)
            .map_err(|(stage, source)| SensorError::Load { stage, source })?;
        let map = |name: &str| object_maps::handle(&object, name).map_err(load("finding its maps"));
        let (watched, counts, events) = (map("watched")?, map("counts")?, map("events")?);
        let drift_kill = map("drift_kill")?;
        let dropped_by_cgroup = map("dropped_by_cgroup")?;
        let mut links = Vec::with_capacity(PROGRAMS.len());
        for prog in object.progs_mut() {
            if PROGRAMS.contains(&prog.name().to_str().unwrap_or_default()) {
                links.push(prog.attach().map_err(load("attaching the tracepoints"))?);
            }
        }
        let table = Arc::new(Mutex::new(ProcessTable::default()));
        let ring = if read {
            let reader = table.clone();
            let mut on_exec = on_exec;
            ring::spawn_reader("process-sensor", events, RawEvent::parse, move |e| {
                if let Some(exec) = apply(&reader, e)
                    && let Some(f) = on_exec.as_mut()
                {
                    f(&exec);
                }
            })
            .map_err(|e| load("starting its reader thread")(libbpf_rs::Error::from(e)))?;
            None
        } else {
            Some(events)
        };
        Ok(Arc::new(ProcessSensor {
            _links: links,
            watched,
            drift_kill,
            dropped_by_cgroup,
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
        let _ = self.drift_kill.delete(&cgroup_id.to_ne_bytes());
        let _ = self.dropped_by_cgroup.delete(&cgroup_id.to_ne_bytes());
    }

    /// Events of the cgroup the ring could not hold.
    pub fn dropped_for(&self, cgroup_id: u64) -> u64 {
        percpu_counts::lookup_u64(&self.dropped_by_cgroup, cgroup_id)
    }

    /// In the watched cgroup `cgroup_id`, an exec of a file that is not the image's (upper
    /// layer, another filesystem, memfd, deleted) is killed in the kernel (`kill`), or only
    /// reported (`!kill`).
    pub fn kill_drift(&self, cgroup_id: u64, kill: bool) -> Result<(), SensorError> {
        let key = cgroup_id.to_ne_bytes();
        if kill {
            return self
                .drift_kill
                .update(&key, &[1], MapFlags::ANY)
                .map_err(|source| SensorError::Watch { cgroup_id, source });
        }
        // Not there is what was asked for.
        let _ = self.drift_kill.delete(&key);
        Ok(())
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
        self._ring
            .as_ref()
            .map_or(0, |events| ring::drain(events, RawEvent::parse).len())
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

/// Updates the table; an exec is also returned, for the caller's handler.
fn apply(table: &Mutex<ProcessTable>, e: RawEvent) -> Option<Exec> {
    let lock = || table.lock().unwrap_or_else(|p| p.into_inner());
    match e.kind {
        EVENT_FORK => lock().forked(e.pid, e.ppid),
        EVENT_EXEC => {
            // The process is usually still there: its real executable and command line (the
            // event only has the name execve was given).
            let procfs = HostProcfs;
            let executable = procfs
                .executable(e.pid)
                .unwrap_or_else(|| e.filename.clone());
            // What the kernel read at exec, unless /proc has more (it was cut at 256 bytes).
            let from_proc = procfs.args(e.pid);
            let args = if from_proc.is_empty() {
                e.args
            } else {
                from_proc
            };
            lock().execed(e.pid, e.ppid, executable.clone(), args.clone());
            return Some(Exec {
                pid: e.pid,
                ppid: e.ppid,
                cgroup_id: e.cgroup_id,
                filename: e.filename,
                executable,
                args,
                origin: e.origin,
                inode: e.inode,
                device: e.device,
                killed: e.killed,
            });
        }
        EVENT_EXIT => lock().exited(e.pid),
        _ => {}
    }
    None
}

/// One event as the C program lays it out.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawEvent {
    kind: u32,
    pid: u32,
    ppid: u32,
    cgroup_id: u64,
    inode: u64,
    device: u32,
    origin: ExecOrigin,
    killed: bool,
    filename: String,
    args: Vec<String>,
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
        let u64_at = |o: usize| {
            data.get(o..o + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_ne_bytes)
        };
        let len = (u32_at(12)? as usize).min(256);
        let args_len = usize::from(u16::from_ne_bytes([data[46], data[47]])).min(256);
        // NUL-terminated arguments, empty ones too (`sh -c ""`); the last may be cut short.
        let raw = &data[ARGS_AT..ARGS_AT + args_len];
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        let args = if raw.is_empty() {
            Vec::new()
        } else {
            raw.split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        };
        Some(RawEvent {
            kind: u32_at(0)?,
            pid: u32_at(4)?,
            ppid: u32_at(8)?,
            cgroup_id: u64_at(16)?,
            inode: u64_at(32)?,
            device: u32_at(40)?,
            origin: ExecOrigin::from_code(data[44]),
            killed: data[45] != 0,
            filename: String::from_utf8_lossy(&data[HEADER..HEADER + len]).into_owned(),
            args,
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
        raw[16..24].copy_from_slice(&99u64.to_ne_bytes());
        raw[32..40].copy_from_slice(&1234u64.to_ne_bytes());
        raw[40..44].copy_from_slice(&((8u32 << 20) | 3).to_ne_bytes());
        raw[44] = 2;
        raw[45] = 1;
        raw[HEADER..HEADER + 7].copy_from_slice(b"/bin/sh");
        raw[46..48].copy_from_slice(&9u16.to_ne_bytes());
        raw[ARGS_AT..ARGS_AT + 9].copy_from_slice(b"sh\0-c\0ls\0");
        assert_eq!(
            RawEvent::parse(&raw),
            Some(RawEvent {
                kind: EVENT_EXEC,
                pid: 42,
                ppid: 7,
                cgroup_id: 99,
                inode: 1234,
                device: (8 << 20) | 3,
                origin: ExecOrigin::Upper,
                killed: true,
                filename: "/bin/sh".into(),
                args: vec!["sh".into(), "-c".into(), "ls".into()],
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
        let sensor = ProcessSensor::start(None).expect("the process sensor loads on this kernel");
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
            std::thread::sleep(std::time::Duration::from_millis(20));
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

    /// Each exec's file is classified by the kernel on the file it runs, not its name: the
    /// host's own /bin/true (the host root is not an overlayfs here: unknown, so not drift), a
    /// memfd, a copy on a tmpfs, a file deleted before it ran. Marked for kill, the cgroup's
    /// drifting exec dies by SIGKILL before it runs; the host's own program still runs.
    #[test]
    fn exec_origins_come_from_the_file_and_drift_can_be_killed() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("needs root; skipped");
            return;
        }
        let seen = Arc::new(Mutex::new(Vec::<Exec>::new()));
        let sink = seen.clone();
        let sensor = ProcessSensor::start(Some(Box::new(move |e: &Exec| {
            sink.lock().unwrap().push(e.clone())
        })))
        .expect("the sensor loads");
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let own = cgroup.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
        let root = if std::path::Path::new("/sys/fs/cgroup/unified").exists() {
            "/sys/fs/cgroup/unified"
        } else {
            "/sys/fs/cgroup"
        };
        let dir = std::path::PathBuf::from(format!(
            "{root}{own}/rampart-origins-{}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).unwrap();
        let id = std::fs::metadata(&dir).unwrap().ino();
        sensor.watch(id).unwrap();
        // A memfd holding /bin/true, inherited by the shells (no CLOEXEC).
        let memfd =
            nix::sys::memfd::memfd_create(c"rampart-test", nix::sys::memfd::MFdFlags::empty())
                .unwrap();
        std::io::copy(
            &mut std::fs::File::open("/bin/true").unwrap(),
            &mut std::fs::File::from(memfd.try_clone().unwrap()),
        )
        .unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&memfd);
        let shm = format!("/dev/shm/rampart-true-{}", std::process::id());
        let tmp = format!("/tmp/rampart-true-{}", std::process::id());
        let procs = dir.join("cgroup.procs");
        let run = |script: &str| {
            std::process::Command::new("/bin/sh")
                .args(["-c", &format!("echo $$ > {} && {script}", procs.display())])
                .status()
                .unwrap()
        };
        assert!(run("exec /bin/true").success());
        assert!(run(&format!("exec /proc/self/fd/{fd}")).success());
        assert!(run(&format!("cp /bin/true {shm} && exec {shm}")).success());
        assert!(
            run(&format!(
                "cp /bin/true {tmp} && exec 3<{tmp} && rm {tmp} && exec /proc/self/fd/3"
            ))
            .success()
        );
        sensor.kill_drift(id, true).unwrap();
        let killed = run(&format!("exec /proc/self/fd/{fd}"));
        let still = run("exec /bin/true");
        let _ = std::fs::remove_file(&shm);
        std::thread::sleep(std::time::Duration::from_millis(500));
        sensor.unwatch(id);
        std::fs::remove_dir(&dir).unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(killed.signal(), Some(9), "a drifting exec ran: {killed:?}");
        assert!(still.success(), "the host's program was killed: {still:?}");
        let seen = seen.lock().unwrap().clone();
        let origin = |name: &str| {
            seen.iter()
                .filter(|e| e.filename == name)
                .map(|e| (e.origin, e.killed))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            origin("/bin/true"),
            [(ExecOrigin::Unknown, false), (ExecOrigin::Unknown, false)],
            "{seen:?}"
        );
        assert_eq!(
            origin("memfd:rampart-test"),
            [(ExecOrigin::Memfd, false), (ExecOrigin::Memfd, true)],
            "{seen:?}"
        );
        assert_eq!(
            origin(&shm),
            [(ExecOrigin::OtherFilesystem, false)],
            "{seen:?}"
        );
        assert_eq!(
            origin("/proc/self/fd/3"),
            [(ExecOrigin::Deleted, false)],
            "{seen:?}"
        );
        let own_true = std::fs::metadata("/bin/true").unwrap().ino();
        assert!(
            seen.iter()
                .any(|e| e.filename == "/bin/true" && e.inode == own_true),
            "the inode is the executed file's: {seen:?}"
        );
    }

    /// A ring far too small for a burst, and nobody reading it: every event the kernel produced
    /// is either written or counted as dropped, and the ring delivers exactly what was written.
    #[test]
    fn under_a_flood_nothing_is_lost_uncounted() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("needs root; skipped");
            return;
        }
        let sensor = ProcessSensor::start_with(4096, false, None).expect("the sensor loads");
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
        let flood_id = std::fs::metadata(&flood).unwrap().ino();
        sensor.watch(flood_id).unwrap();
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
        assert_eq!(
            sensor.dropped_for(flood_id),
            counts.dropped,
            "every drop was the flooding cgroup's"
        );
    }
}
