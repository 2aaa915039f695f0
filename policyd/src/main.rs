//! rampartd: loads policy files from the node's disk and serves them to rampart's agents; turns
//! what the agents report into audit records in journald.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use rampart_policy::AlertAction;
use rampart_protos::agent::DEFAULT_SOCKET;
use rampartd::api::KernelAuditor;
use rampartd::api::{Daemon, DaemonInfo, Server, ServerConfig};
use rampartd::auditor::Auditor;
use rampartd::pipeline::{Pipeline, PipelineConfig};
use rampartd::planner::SnapshotPlanner;
use rampartd::policies::{FileOutcome, PolicyStore, watch};
use rampartd::registry::Registry;
use rampartd::response::{PodKiller, PodRef};
use rampartd::sink::journald;
use rampartd::status_source::DaemonStatus;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

#[derive(Debug, Parser)]
#[command(name = "rampartd", version, about = "rampart's policy daemon")]
struct Args {
    /// Directory of policy files (*.yaml), watched for changes.
    #[arg(
        long,
        env = "RAMPART_POLICY_DIR",
        default_value = "/etc/rampart/policies.d"
    )]
    policy_dir: PathBuf,
    /// The agents' API socket.
    #[arg(long, env = "RAMPART_DAEMON_SOCKET", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// This node's name in alerts (default: the hostname).
    #[arg(long, env = "RAMPART_NODE_NAME")]
    node_name: Option<String>,
    /// Also write alerts as JSON lines to this file (`-` for stdout).
    #[arg(long)]
    alerts_json: Option<PathBuf>,
    /// Don't write alerts to journald.
    #[arg(long)]
    no_journal: bool,
    #[arg(long, default_value = journald::DEFAULT_SOCKET)]
    journal_socket: PathBuf,
    /// Alerts held while journald is unreachable; beyond this they are counted and dropped.
    #[arg(long, default_value_t = 10_000)]
    journal_queue: usize,
    /// Repeats of the same alert within this many seconds are counted, not written.
    #[arg(long, default_value_t = 10)]
    dedup_window_secs: u64,
    /// Alerts per second per pod, on average.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Alerts a pod may burst above the rate.
    #[arg(long, default_value_t = 100)]
    burst: u32,
    /// Every container a policy scopes must be protected or not start.
    #[arg(long)]
    require_protection: bool,
    /// containerd's CRI socket, for the kill-pod response.
    #[arg(
        long,
        env = "RAMPART_CRI_SOCKET",
        default_value = "/run/containerd/containerd.sock"
    )]
    cri_socket: PathBuf,
    /// Log to stderr even when journald runs.
    #[arg(long)]
    log_stderr: bool,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Makes the store's policies the ones agents, the planner and the kernel auditor use.
fn publish(
    store: &PolicyStore,
    daemon: &Daemon,
    planner: &SnapshotPlanner,
    auditor: &Auditor,
) -> u64 {
    let version = daemon.publish_snapshot(store.sources());
    planner.set(version, store.compiled());
    auditor.set_snapshot(store.compiled());
    version
}

fn log_outcome(path: &std::path::Path, outcome: &FileOutcome) {
    match outcome {
        FileOutcome::Loaded { policies } => {
            info!(file = %path.display(), ?policies, "policy file loaded")
        }
        FileOutcome::Rejected {
            error,
            kept_previous,
        } => error!(
            file = %path.display(),
            kept_previous,
            "policy file rejected{}: {error}",
            if *kept_previous { "; its previous version stays in force" } else { "" }
        ),
        FileOutcome::Removed => info!(file = %path.display(), "policy file removed"),
        FileOutcome::Unchanged => {}
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    rampart_logging::init("rampartd", args.log_stderr);
    let node_name = args.node_name.clone().unwrap_or_else(hostname);

    std::fs::create_dir_all(&args.policy_dir).with_context(|| {
        format!(
            "cannot create the policy directory {}",
            args.policy_dir.display()
        )
    })?;
    let mut store = PolicyStore::new(&args.policy_dir);
    let outcomes = store.load_all().with_context(|| {
        format!(
            "cannot read the policy directory {}",
            args.policy_dir.display()
        )
    })?;
    for (path, outcome) in &outcomes {
        log_outcome(path, outcome);
    }

    let planner = Arc::new(SnapshotPlanner::new(args.require_protection));
    let (daemon, mut events) = Daemon::new(
        DaemonInfo::new(node_name.clone()),
        planner.clone(),
        Arc::new(Registry::new()),
        4096,
    );
    let auditor = Auditor::start(daemon.registry().clone(), daemon.events());
    daemon.set_kernel_auditor(auditor.clone());
    let version = publish(&store, &daemon, &planner, &auditor);
    info!(
        version,
        policies = store.compiled().len(),
        rejected = store.errors().len(),
        dir = %args.policy_dir.display(),
        "policies in force"
    );

    let server = Server::bind(
        ServerConfig {
            socket: args.socket.clone(),
            ..Default::default()
        },
        daemon.clone(),
    )
    .with_context(|| format!("cannot serve the agent API on {}", args.socket.display()))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let server_task = tokio::spawn(server.serve(async move {
        let _ = server_stop.wait_for(|s| *s).await;
    }));
    info!(socket = %args.socket.display(), node = %node_name, "rampartd serving agents");

    let mut changes = watch::watch(&args.policy_dir)?;
    let mut pipeline = Pipeline::new(
        PipelineConfig {
            node_name: node_name.clone(),
            dedup_window: Duration::from_secs(args.dedup_window_secs),
            rate: args.rate,
            burst: args.burst,
            journal: (!args.no_journal).then(|| args.journal_socket.clone()),
            journal_queue: args.journal_queue,
        },
        args.alerts_json.as_deref(),
    )
    .context("cannot open the alerts JSON file")?;
    let status = Arc::new(DaemonStatus::new(pipeline.stats()));
    status.refresh(&store);
    daemon.set_status_source(status.clone());
    let killer = Arc::new(PodKiller::new(args.cri_socket.clone()));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;

    loop {
        tokio::select! {
            Some(mut reported) = events.recv() => {
                // Looked up here, off the agents' paths: the process sensor's table has the
                // process that acted and those that started it, even if they have exited.
                let e = &mut reported.event;
                if e.ancestors.is_empty() && e.pid != 0 {
                    e.ancestors = auditor.ancestors(e.pid);
                }
                if let Some(alert) = pipeline.handle(&reported, Instant::now())
                    && alert.action == AlertAction::PodKilled {
                        let killer = killer.clone();
                        let (ns, pod) = (alert.namespace.clone().unwrap_or_default(), alert.pod_name.clone());
                        tokio::spawn(async move {
                            match killer.kill_pod(&PodRef::named(ns.clone(), pod.clone())).await {
                                Ok(k) => warn!(namespace = %ns, pod = %pod, stopped = k.stopped.len(), "pod killed by policy"),
                                Err(e) => error!(namespace = %ns, pod = %pod, error = %e, "kill-pod failed"),
                            }
                        });
                    }
            }
            Some(paths) = changes.recv() => {
                let mut changed = false;
                for path in paths {
                    let outcome = store.reload(&path);
                    log_outcome(&path, &outcome);
                    changed |= matches!(outcome, FileOutcome::Loaded { .. } | FileOutcome::Removed);
                }
                if changed {
                    let version = publish(&store, &daemon, &planner, &auditor);
                    info!(version, policies = store.compiled().len(), "policies reloaded");
                }
                status.refresh(&store);
            }
            _ = tick.tick() => pipeline.tick(Instant::now()),
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    info!("rampartd stopping");
    let _ = stop_tx.send(true);
    let _ = server_task.await;
    pipeline.tick(Instant::now() + Duration::from_secs(args.dedup_window_secs + 1));
    Ok(())
}
