//! The agent's listener, PolicyHandler and supervisors outside a test, for bench/seccomp-latency.sh:
//! serves SOCKET under the policies in POLICY.yaml… and counts what it reports. Not the real
//! `rampart-seccomp` (no rampartd, no hot reload, no journald): only what sits on the syscall path.
//!
//!   cargo run --release -p rampart-seccomp --example bench_agent -- SOCKET POLICY.yaml…
//!
//! On SIGINT/SIGTERM it prints the number of handoffs, of events per action, how long the
//! PolicyHandler took to decide each kind of syscall (p50/p99 of `Handler::handle`, which includes
//! the emulated open but not the wait for the notification nor the answer's ioctl), and the p50 of
//! each stage inside it (`rampart_seccomp::stage_times`, on only here), and exits.

use std::collections::BTreeMap;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rampart_policy::Snapshot;
use rampart_protos::agent;
use rampart_seccomp::daemon_link::REPORT_LINGER;
use rampart_seccomp::dispatcher::PolicyHandler;
use rampart_seccomp::guard::runtime::{DEFAULT_RUNTIMES, Runtimes};
use rampart_seccomp::outcome::Answer;
use rampart_seccomp::reporter::Reporter;
use rampart_seccomp::stage_times;
use rampart_seccomp::supervision::listener::Listener;
use rampart_seccomp::supervision::supervisor::{self, Handler, Phase};
use rampart_seccomp::sys::notify::Notification;
use rampart_seccomp::workload::Workload;
use tokio::signal::unix::{SignalKind, signal};

/// Counts events by (eventType, action). Like the real agent's reporter
/// (`daemon_link::reporter`), it hands each event to a tokio task through a bounded channel
/// (`try_send`, never blocking), and that task lets a batch gather for `REPORT_LINGER` before
/// taking it, so a reported decision pays what it pays in the agent.
struct Count {
    tx: tokio::sync::mpsc::Sender<(String, String)>,
    counts: Arc<Mutex<BTreeMap<(String, String), u64>>>,
}

impl Count {
    fn start() -> Arc<Self> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, String)>(4096);
        let counts: Arc<Mutex<BTreeMap<(String, String), u64>>> = Arc::default();
        let c = counts.clone();
        tokio::spawn(async move {
            while let Some(key) = rx.recv().await {
                tokio::time::sleep(REPORT_LINGER).await;
                let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
                *c.entry(key).or_default() += 1;
                while let Ok(key) = rx.try_recv() {
                    *c.entry(key).or_default() += 1;
                }
            }
        });
        Arc::new(Self { tx, counts })
    }
}

impl Reporter for Count {
    fn report(&self, e: agent::Event) {
        // A full queue drops the event, as the agent's reporter does (and counts it).
        let _ = self
            .tx
            .try_send((format!("{:?}", e.event_type()), format!("{:?}", e.action())));
    }
}

/// The PolicyHandler, timed: nanoseconds per `handle` call, by kind of notification.
struct Timed {
    inner: Arc<PolicyHandler>,
    times: Mutex<BTreeMap<&'static str, Vec<u64>>>,
}

/// What the benchmark's rows are about: the syscall, and for opens, how it was answered.
fn kind(nr: i32, answer: &Answer) -> &'static str {
    match (i64::from(nr), answer) {
        (libc::SYS_open | libc::SYS_openat, Answer::Inject { .. }) => "openat-allowed",
        (libc::SYS_open | libc::SYS_openat, Answer::Errno(_)) => "openat-denied",
        (libc::SYS_open | libc::SYS_openat, _) => "openat-other",
        (libc::SYS_execve, _) => "execve",
        (libc::SYS_connect, _) => "connect",
        _ => "other",
    }
}

impl Handler for Timed {
    fn handle(
        &self,
        w: &Workload,
        fd: BorrowedFd<'_>,
        phase: &mut Phase,
        n: &Notification,
    ) -> Answer {
        let start = Instant::now();
        stage_times::start();
        let answer = self.inner.handle(w, fd, phase, n);
        let kind = kind(n.nr, &answer);
        stage_times::finish(kind);
        let ns = start.elapsed().as_nanos() as u64;
        self.times
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind)
            .or_default()
            .push(ns);
        answer
    }

    fn ended(&self, w: &Workload) {
        self.inner.ended(w);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args_os().skip(1);
    let (Some(sock), policies) = (args.next().map(PathBuf::from), args.collect::<Vec<_>>()) else {
        eprintln!("usage: bench_agent SOCKET POLICY.yaml...");
        std::process::exit(2);
    };
    if policies.is_empty() {
        eprintln!("usage: bench_agent SOCKET POLICY.yaml...");
        std::process::exit(2);
    }
    // Where the time inside `handle` goes, stage by stage (off in the real agent).
    stage_times::enable();
    let mut parsed = Vec::new();
    for p in &policies {
        parsed.extend(rampart_policy::load_file(std::path::Path::new(p))?);
    }
    let snapshot = Snapshot::new(parsed)?;
    let events = Count::start();
    let inner = Arc::new(PolicyHandler::new(1, snapshot, events.clone()));
    // The backstops run as in the agent (BENCH_NO_BACKSTOPS=1 leaves them off): exec opens are
    // held for the file guard, connects pass the egress guard's cgroup programs.
    if std::env::var_os("BENCH_NO_BACKSTOPS").is_none() {
        inner.start_file_guard(None, Runtimes::find(DEFAULT_RUNTIMES), None)?;
        inner.start_egress_guard()?;
        eprintln!("bench_agent: file guard and egress backstop on");
    }
    let timed = Arc::new(Timed {
        inner,
        times: Mutex::default(),
    });
    let handler: Arc<dyn Handler> = timed.clone();
    let listener = Listener::bind(&sock)?;
    let handoffs = Arc::new(AtomicU64::new(0));
    eprintln!("bench_agent: serving {}", sock.display());

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            incoming = listener.accept() => {
                let incoming = match incoming {
                    Ok(i) => i,
                    Err(e) => {
                        eprintln!("bench_agent: {e}");
                        continue;
                    }
                };
                let handler = handler.clone();
                let handoffs = handoffs.clone();
                tokio::spawn(async move {
                    match incoming.handoff().await {
                        Ok(h) => {
                            handoffs.fetch_add(1, Ordering::Relaxed);
                            let w = Arc::new(Workload::from_state(&h.state));
                            if let Err(e) = supervisor::spawn(h.notify_fd, w, handler) {
                                eprintln!("bench_agent: cannot supervise: {e}");
                            }
                        }
                        Err(e) => eprintln!("bench_agent: {e}"),
                    }
                });
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    println!("handoffs {}", handoffs.load(Ordering::Relaxed));
    // Let the counting task drain what is queued.
    tokio::time::sleep(REPORT_LINGER * 10).await;
    for ((kind, action), n) in events
        .counts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        println!("events {kind} {action} {n}");
    }
    for (kind, t) in timed
        .times
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter_mut()
    {
        t.sort_unstable();
        println!(
            "handle {} n {} p50 {} p99 {}",
            kind,
            t.len(),
            t[t.len() / 2],
            t[t.len() * 99 / 100]
        );
    }
    for (kind, stage, n, p50, mean) in stage_times::report() {
        println!("stage {kind} {stage} n {n} p50 {p50} mean {mean}");
    }
    // What one stage boundary costs (a clock read and a thread-local update).
    stage_times::start();
    let t = Instant::now();
    for _ in 0..100_000 {
        stage_times::mark(stage_times::Stage::Report);
    }
    println!("stage-mark-cost {}", t.elapsed().as_nanos() / 100_000);
    let _ = std::fs::remove_file(&sock);
    Ok(())
}
