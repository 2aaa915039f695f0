//! The agent's link to rampartd: the policy snapshot (long-polled, compiled here) and the events
//! it reports (batched, off the syscall path, with a count of what it had to drop).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rampart_policy::{Snapshot, parse_str};
use rampart_protos::agent::{Event, SnapshotResponse};
use rampart_protos::client::DaemonClient;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::dispatcher::PolicyHandler;
use crate::reporter::Reporter;

/// Compiles what rampartd sent. A set that fails to compile here (rampartd validated it, so only
/// a version skew can do this) is an error: the agent keeps what it enforces now.
pub fn compile(resp: &SnapshotResponse) -> Result<Snapshot, String> {
    let mut policies = Vec::new();
    for src in &resp.policies {
        policies.extend(parse_str(&src.file, &src.content).map_err(|e| e.to_string())?);
    }
    Snapshot::new(policies).map_err(|e| e.to_string())
}

/// Waits for the first snapshot, retrying until rampartd answers: without it the agent has
/// nothing to enforce, so it does not take containers yet (runc then fails to reach the listener,
/// and container creation fails closed).
pub async fn first_snapshot(client: &DaemonClient) -> (u64, Snapshot) {
    let mut wait = Duration::from_millis(200);
    loop {
        match client
            .get_snapshot(0, Duration::ZERO, Duration::from_secs(5))
            .await
        {
            Ok(resp) => match compile(&resp) {
                Ok(s) => return (resp.version, s),
                Err(e) => {
                    error!(version = resp.version, error = %e, "rampartd's snapshot does not compile here")
                }
            },
            Err(e) => warn!(error = %e, "waiting for rampartd's policy snapshot"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// Keeps the handler's snapshot current.
pub async fn follow_snapshots(client: Arc<DaemonClient>, handler: Arc<PolicyHandler>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let have = handler.version();
        match client
            .get_snapshot(have, Duration::from_secs(30), Duration::from_secs(5))
            .await
        {
            Ok(resp) if resp.unchanged || resp.version == have => {
                backoff = Duration::from_millis(200);
            }
            Ok(resp) => {
                backoff = Duration::from_millis(200);
                match compile(&resp) {
                    Ok(s) => {
                        info!(
                            version = resp.version,
                            policies = s.len(),
                            "policy snapshot updated"
                        );
                        handler.publish(resp.version, s);
                    }
                    Err(e) => {
                        error!(version = resp.version, error = %e, "new snapshot does not compile; keeping the current one")
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot reach rampartd for snapshots; enforcing the last one");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Queues events for rampartd without ever blocking a supervisor thread.
pub struct QueueReporter {
    tx: mpsc::Sender<Event>,
    dropped: Arc<AtomicU64>,
}

impl Reporter for QueueReporter {
    fn report(&self, event: Event) {
        if self.tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How long the reporting task lets events gather after the first of a batch arrives. While it
/// waits it is not parked on the channel, so queuing an event wakes nobody: a supervisor thread that
/// reports (every block and alert) would otherwise wake this task on the other CPU each time,
/// which costs it about 5 µs in the futex wake alone on the benchmark VM, and the pod more than that
/// (docs/benchmarks.md). It bounds those wakeups to 1 / REPORT_LINGER and delays an event by as
/// much at most.
pub const REPORT_LINGER: Duration = Duration::from_millis(10);

/// The reporter, and the task that sends its events in batches (rampartd adds each event's
/// ancestors from its process sensor).
pub fn reporter(
    client: Arc<DaemonClient>,
    capacity: usize,
) -> (QueueReporter, impl Future<Output = ()>) {
    let (tx, mut rx) = mpsc::channel::<Event>(capacity);
    let dropped = Arc::new(AtomicU64::new(0));
    let reporter = QueueReporter {
        tx,
        dropped: dropped.clone(),
    };
    let task = async move {
        let mut batch = Vec::new();
        while let Some(ev) = rx.recv().await {
            batch.push(ev);
            tokio::time::sleep(REPORT_LINGER).await;
            while batch.len() < 256 {
                match rx.try_recv() {
                    Ok(ev) => batch.push(ev),
                    Err(_) => break,
                }
            }
            // Retry while rampartd is away; the channel bounds what waits meanwhile, and what
            // overflows it is counted and reported once rampartd is back.
            loop {
                let lost = dropped.load(Ordering::Relaxed);
                match client
                    .report_events(batch.clone(), lost, Vec::new(), Duration::from_secs(5))
                    .await
                {
                    Ok(()) => {
                        dropped.fetch_sub(lost, Ordering::Relaxed);
                        batch.clear();
                        break;
                    }
                    Err(e) => {
                        warn!(error = %e, events = batch.len(), "cannot report events to rampartd; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    };
    (reporter, task)
}
