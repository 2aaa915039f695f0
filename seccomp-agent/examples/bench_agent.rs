//! The agent's listener, PolicyHandler and supervisors outside a test, for bench/seccomp-latency.sh:
//! serves SOCKET under the policies in POLICY.yaml… and counts what it reports. Not the real
//! `rampart-seccomp` (no rampartd, no hot reload, no journald): only what sits on the syscall path.
//!
//!   cargo run --release -p rampart-seccomp --example bench_agent -- SOCKET POLICY.yaml…
//!
//! On SIGINT/SIGTERM it prints the number of handoffs, of events per action, and how long the
//! PolicyHandler took to decide each kind of syscall (p50/p99 of `Handler::handle`, which includes
//! the emulated open but not the wait for the notification nor the answer's ioctl), and exits.

use std::collections::BTreeMap;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rampart_policy::Snapshot;
use rampart_protos::agent;
use rampart_seccomp::listener::Listener;
use rampart_seccomp::policy_handler::{PolicyHandler, Reporter};
use rampart_seccomp::supervisor::{self, Answer, Handler, Phase};
use rampart_seccomp::sys::notify::Notification;
use rampart_seccomp::workload::Workload;
use tokio::signal::unix::{SignalKind, signal};

/// Counts events by (eventType, action); never blocks for long.
#[derive(Default)]
struct Count(Mutex<BTreeMap<(String, String), u64>>);

impl Reporter for Count {
    fn report(&self, e: agent::Event) {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((e.event_type, e.action))
            .or_default() += 1;
    }
}

/// The PolicyHandler, timed: nanoseconds per `handle` call, by syscall number.
struct Timed {
    inner: PolicyHandler,
    times: Mutex<BTreeMap<i32, Vec<u64>>>,
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
        let answer = self.inner.handle(w, fd, phase, n);
        let ns = start.elapsed().as_nanos() as u64;
        self.times
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(n.nr)
            .or_default()
            .push(ns);
        answer
    }
}

fn syscall_name(nr: i32) -> String {
    match i64::from(nr) {
        libc::SYS_open => "open".into(),
        libc::SYS_openat => "openat".into(),
        libc::SYS_openat2 => "openat2".into(),
        libc::SYS_creat => "creat".into(),
        libc::SYS_execve => "execve".into(),
        libc::SYS_execveat => "execveat".into(),
        libc::SYS_connect => "connect".into(),
        libc::SYS_sendto => "sendto".into(),
        libc::SYS_sendmsg => "sendmsg".into(),
        _ => format!("nr{nr}"),
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
    let mut parsed = Vec::new();
    for p in &policies {
        parsed.extend(rampart_policy::load_file(std::path::Path::new(p))?);
    }
    let snapshot = Snapshot::new(parsed)?;
    let events = Arc::new(Count::default());
    let timed = Arc::new(Timed {
        inner: PolicyHandler::new(1, snapshot, events.clone()),
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
    for ((kind, action), n) in events.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        println!("events {kind} {action} {n}");
    }
    for (nr, t) in timed
        .times
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter_mut()
    {
        t.sort_unstable();
        println!(
            "handle {} n {} p50 {} p99 {}",
            syscall_name(*nr),
            t.len(),
            t[t.len() / 2],
            t[t.len() * 99 / 100]
        );
    }
    let _ = std::fs::remove_file(&sock);
    Ok(())
}
