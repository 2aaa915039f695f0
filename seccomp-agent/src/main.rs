//! rampart-seccomp: takes the notify fds runc hands over and answers every notification by policy.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use rampart_protos::agent::{AgentKind, DEFAULT_SOCKET, HelloRequest};
use rampart_protos::client::DaemonClient;
use rampart_seccomp::daemon_link;
use rampart_seccomp::listener::Listener;
use rampart_seccomp::policy_handler::PolicyHandler;
use rampart_seccomp::supervisor::{self, Handler};
use rampart_seccomp::workload::Workload;
use tracing::{error, info, info_span, warn};

#[derive(Debug, Parser)]
#[command(
    name = "rampart-seccomp",
    version,
    about = "rampart's seccomp notify agent"
)]
struct Args {
    /// The socket runc hands notify fds to (the seccomp profile's listenerPath).
    #[arg(
        long,
        env = "RAMPART_SECCOMP_SOCKET",
        default_value = "/run/rampart/seccomp.sock"
    )]
    socket: PathBuf,
    /// rampartd's agent API socket.
    #[arg(long, env = "RAMPART_DAEMON_SOCKET", default_value = DEFAULT_SOCKET)]
    daemon: PathBuf,
    /// Events held for rampartd while it is away; beyond this they are counted and dropped.
    #[arg(long, default_value_t = 65_536)]
    event_queue: usize,
    /// Log to stderr even when journald runs.
    #[arg(long)]
    log_stderr: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    rampart_logging::init("rampart-seccomp", args.log_stderr);
    let client = Arc::new(DaemonClient::lazy(&args.daemon));
    if let Err(e) = client
        .hello(
            HelloRequest {
                kind: AgentKind::Seccomp as i32,
                version: env!("CARGO_PKG_VERSION").into(),
                pid: std::process::id(),
                enforcers: vec!["seccomp-notify".into()],
            },
            Duration::from_secs(5),
        )
        .await
    {
        warn!(error = %e, daemon = %args.daemon.display(), "rampartd not reachable yet; waiting for it");
    }
    let (version, snapshot) = daemon_link::first_snapshot(&client).await;
    let (reporter, report_task) = daemon_link::reporter(client.clone(), args.event_queue);
    let handler = Arc::new(PolicyHandler::new(version, snapshot, Arc::new(reporter)));
    tokio::spawn(report_task);
    tokio::spawn(daemon_link::follow_snapshots(
        client.clone(),
        handler.clone(),
    ));

    let listener = Listener::bind(&args.socket)
        .with_context(|| format!("cannot listen on {}", args.socket.display()))?;
    info!(socket = %args.socket.display(), version, "rampart-seccomp taking notify fds");
    let dyn_handler: Arc<dyn Handler> = handler.clone();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            incoming = listener.accept() => {
                let incoming = match incoming {
                    Ok(i) => i,
                    Err(e) => { warn!(error = %e, "refused a connection"); continue; }
                };
                let h = dyn_handler.clone();
                tokio::spawn(async move {
                    match incoming.handoff().await {
                        Ok(handoff) => {
                            let w = Arc::new(Workload::from_state(&handoff.state));
                            let _span = info_span!("container", pod = %w.pod_name, namespace = %w.namespace, container = %w.container_name).entered();
                            info!(pid = w.pid, id = %w.container_id, "supervising a new notify fd");
                            if let Err(e) = supervisor::spawn(handoff.notify_fd, w, h) {
                                error!(error = %e, "cannot start a supervisor thread; the container's notified syscalls will fail");
                            }
                        }
                        Err(e) => warn!(error = %e, "bad handoff from runc"),
                    }
                });
            }
            _ = sigterm.recv() => {
                info!("rampart-seccomp stopping; containers it supervises will fail their notified syscalls until it is back");
                return Ok(());
            }
        }
    }
}
