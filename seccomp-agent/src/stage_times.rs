//! Where a notification's time goes, stage by stage: for the benchmark (bench/seccomp-latency.sh
//! through `examples/bench_agent`), never on in the real agent.
//!
//! Off by default. When off, each `mark` costs one relaxed atomic load. When `enable`d, the
//! supervisor thread notes the monotonic clock at each stage boundary (a vDSO read, ~25 ns here)
//! into a thread-local sample, and `finish` files the sample under a kind of notification; `report`
//! gives the p50 of each stage. Nothing here blocks or wakes another thread: the only lock is taken
//! once per notification, by the thread that handled it, and is uncontended but for `report`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The stages of a notification, in the order they run for an emulated open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Copying the arguments out of the task, and SECCOMP_IOCTL_NOTIF_ID_VALID.
    Args = 0,
    /// The container's view of the policy snapshot.
    View,
    /// The task's credentials, umask and pids (/proc/<tid>/status).
    Status,
    /// The task's executable (/proc/<tid>/exe), for process rules and the event.
    Exe,
    /// Where the walk starts: the task's root, cwd or dirfd.
    Anchor,
    /// Taking on the task's credentials.
    Assume,
    /// The walk itself (openat2 O_PATH, RESOLVE_IN_ROOT) and the object's path (readlink).
    Lookup,
    /// The policy decision, and the message when it is reported.
    Decide,
    /// The emulated open (reopen of the O_PATH descriptor with the task's flags).
    Open,
    /// Giving the thread its own credentials back.
    Restore,
    /// The event to rampartd, when the decision is reported.
    Report,
}

const STAGES: usize = 11;
const NAMES: [&str; STAGES] = [
    "args", "view", "status", "exe", "anchor", "assume", "lookup", "decide", "open", "restore",
    "report",
];

static ENABLED: AtomicBool = AtomicBool::new(false);

type Samples = BTreeMap<&'static str, Vec<[u64; STAGES]>>;
static SAMPLES: Mutex<Samples> = Mutex::new(BTreeMap::new());

struct Current {
    last: Option<Instant>,
    sample: [u64; STAGES],
}

thread_local! {
    static CURRENT: RefCell<Current> = const {
        RefCell::new(Current { last: None, sample: [0; STAGES] })
    };
}

/// Turns stage timing on for the whole process (the benchmark agent only).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A notification starts being handled on this thread.
pub fn start() {
    if !enabled() {
        return;
    }
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        c.sample = [0; STAGES];
        c.last = Some(Instant::now());
    });
}

/// `stage` ended now: the time since the previous mark (or `start`) is its.
#[inline]
pub fn mark(stage: Stage) {
    if !enabled() {
        return;
    }
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(last) = c.last {
            let now = Instant::now();
            c.sample[stage as usize] += now.duration_since(last).as_nanos() as u64;
            c.last = Some(now);
        }
    });
}

/// The notification is handled: file its sample under `kind` (e.g. "openat-allowed").
pub fn finish(kind: &'static str) {
    if !enabled() {
        return;
    }
    let sample = CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        c.last.take().map(|_| c.sample)
    });
    if let Some(s) = sample {
        SAMPLES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind)
            .or_default()
            .push(s);
    }
}

/// For each kind and each stage that took time: (kind, stage, samples, p50 ns, mean ns).
pub fn report() -> Vec<(&'static str, &'static str, usize, u64, u64)> {
    let samples = SAMPLES.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::new();
    for (kind, v) in samples.iter() {
        for (i, name) in NAMES.iter().enumerate() {
            let mut col: Vec<u64> = v.iter().map(|s| s[i]).collect();
            if col.iter().all(|&t| t == 0) {
                continue;
            }
            col.sort_unstable();
            let mean = col.iter().sum::<u64>() / col.len() as u64;
            out.push((*kind, *name, col.len(), col[col.len() / 2], mean));
        }
    }
    out
}
