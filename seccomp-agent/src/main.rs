//! rampart-seccomp: takes the notify fds runc hands over and answers every notification by policy.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use rampart_protos::agent::{AgentKind, DEFAULT_SOCKET, HelloRequest, Mechanism};
use rampart_protos::client::{Announcement, DaemonClient};
use rampart_seccomp::daemon_link;
use rampart_seccomp::dispatcher::PolicyHandler;
use rampart_seccomp::guard::ready::ReadyDir;
use rampart_seccomp::guard::runtime::{DEFAULT_RUNTIMES, Runtimes};
use rampart_seccomp::holder::client::{HolderClient, HolderClientError};
use rampart_seccomp::holder::protocol;
use rampart_seccomp::mechanisms;
use rampart_seccomp::outcome::ENFORCER;
use rampart_seccomp::supervision::listener::Listener;
use rampart_seccomp::supervision::shutdown::Stopper;
use rampart_seccomp::supervision::supervised::Supervised;
use rampart_seccomp::supervision::supervisor::Handler;
use rampart_seccomp::supervision::takeover::Supervisors;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

/// How long in-flight handoffs from runc may take to be registered when the agent stops.
const HANDOFF_GRACE: Duration = Duration::from_secs(2);
/// How long supervisor threads may take to answer the notification they are handling.
const ANSWER_GRACE: Duration = Duration::from_secs(5);

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
    /// The fd holder (rampart-holder) that keeps notify fds across agent restarts.
    #[arg(long, env = "RAMPART_SECCOMP_HOLDER", default_value = protocol::DEFAULT_SOCKET)]
    holder: PathBuf,
    /// Don't use the fd holder: an agent restart then fails the notified syscalls of every
    /// container it supervised (ENOSYS).
    #[arg(long)]
    no_holder: bool,
    /// Don't start the file guard (fanotify permission events on protected containers' mounts):
    /// allowed execs then rely on the seccomp check alone, which a thread rewriting the path
    /// after the check can race, and containers whose policies decide reads can't start (their
    /// read-only opens would go unchecked) unless their pod has the label
    /// rampart.dev/read-opens=seccomp. For kernels without fanotify permission events.
    #[arg(long)]
    no_file_guard: bool,
    /// The container runtime's binary (repeatable; default: runc in /usr/sbin, /usr/bin,
    /// /usr/local/sbin, /usr/local/bin). Its own setup reads inside a container (runc exec's
    /// user lookup) are not the workload's and are never refused.
    #[arg(long, value_name = "PATH")]
    runtime: Vec<PathBuf>,
    /// Keep execve on the seccomp path even where the file guard could decide it alone (the
    /// default is a guard-only exec, with no round trip, for containers whose exec rules all
    /// refuse).
    #[arg(long)]
    exec_by_seccomp: bool,
    /// Don't start the egress backstop (cgroup connect/sendmsg BPF on protected containers):
    /// allowed connects and sends then rely on the seccomp check alone, which a thread rewriting
    /// the sockaddr after the check can race.
    #[arg(long)]
    no_egress_guard: bool,
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
    // Every Hello (and the one after each reconnect) lists what this agent supervises then, so a
    // restarted rampartd knows these containers again.
    let supervised = Supervised::default();
    let announced = supervised.clone();
    // What this agent enforces with, as far as it knows yet: the rest is found as each part
    // starts, and said again in a second Hello.
    let found = Arc::new(std::sync::Mutex::new(Vec::<Mechanism>::new()));
    let announce: Announcement = Arc::new({
        let found = found.clone();
        move || {
            let mechanisms = found.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let mut enforcers = mechanisms::enforcers(&mechanisms);
            if enforcers.is_empty() {
                enforcers.push(ENFORCER.to_owned());
            }
            HelloRequest {
                kind: AgentKind::Seccomp as i32,
                version: env!("CARGO_PKG_VERSION").into(),
                pid: std::process::id(),
                enforcers,
                containers: announced.list(),
                mechanisms,
            }
        }
    });
    if let Err(e) = client
        .announce(announce.clone(), Duration::from_secs(5))
        .await
    {
        warn!(error = %e, daemon = %args.daemon.display(), "rampartd not reachable yet; waiting for it");
    }
    let (version, snapshot) = daemon_link::first_snapshot(&client).await;
    let (reporter, report_task) = daemon_link::reporter(client.clone(), args.event_queue);
    let handler = Arc::new(PolicyHandler::new(version, snapshot, Arc::new(reporter)));
    let egress_guard = if args.no_egress_guard {
        warn!(
            "egress backstop off: --no-egress-guard given; a thread rewriting an allowed connect's address can race the seccomp check"
        );
        Err("--no-egress-guard given".to_owned())
    } else {
        handler.start_egress_guard().map_err(|e| {
            warn!(error = %e, "egress backstop off: cannot load the cgroup connect/sendmsg programs \
                  (needs root, cgroup v2 and BPF); allowed connects rely on the seccomp check alone, \
                  which a thread rewriting the address can race");
            format!("cannot load the cgroup programs: {e}")
        })
    };
    tokio::spawn(report_task);
    // Back within a second of a restarted rampartd, announcing what runs, whatever the snapshot
    // poll's backoff has grown to meanwhile.
    tokio::spawn({
        let client = client.clone();
        async move { client.keep_connected(Duration::from_secs(1)).await }
    });
    tokio::spawn(daemon_link::follow_snapshots(
        client.clone(),
        handler.clone(),
    ));

    let holder = if args.no_holder {
        warn!(
            "restart survival off: --no-holder given; an agent restart will fail the notified syscalls of every container this agent supervises (ENOSYS)"
        );
        None
    } else {
        Some(Arc::new(HolderClient::new(&args.holder)))
    };
    let guard = if args.no_file_guard {
        warn!(
            "file guard off: --no-file-guard given; a thread rewriting an allowed exec's path can race the seccomp check, and containers whose policies decide reads are refused their first exec"
        );
        None
    } else {
        let runtimes = if args.runtime.is_empty() {
            Runtimes::find(DEFAULT_RUNTIMES)
        } else {
            Runtimes::find(&args.runtime)
        };
        let ready = (!args.exec_by_seccomp).then(|| ReadyDir::next_to(&args.socket));
        match handler.start_file_guard(holder.clone(), runtimes, ready) {
            Ok(g) => {
                match g.decides_execs() {
                    Ok(()) => info!(
                        "file guard decides execs: containers planned from now on notify no execve"
                    ),
                    Err(why) => info!(why, "execs stay on the seccomp path"),
                }
                Some(g)
            }
            Err(e) => {
                error!(error = %e, "file guard off: cannot create a fanotify group (needs \
                    CAP_SYS_ADMIN and fanotify permission events in the kernel); containers whose \
                    policies decide reads are refused their first exec, and allowed execs rely on \
                    the seccomp check alone");
                None
            }
        }
    };
    let (file_guard, exec_guard) = match &guard {
        Some(g) => (Ok(()), g.decides_execs().map_err(str::to_owned)),
        None => {
            let why = if args.no_file_guard {
                "--no-file-guard given"
            } else {
                "cannot create a fanotify permission group (see the agent's log)"
            };
            (Err(why.to_owned()), Err(why.to_owned()))
        }
    };
    *found.lock().unwrap_or_else(|e| e.into_inner()) = mechanisms::list(&mechanisms::Found {
        file_guard,
        exec_guard,
        egress_guard,
        lsm: rampart_audit::lsm_probe::probe(),
    });
    if let Err(e) = client.announce(announce, Duration::from_secs(5)).await {
        warn!(error = %e, "rampartd not reachable; it hears this agent's enforcers when it is");
    }
    let stopper = Arc::new(Stopper::new().context("cannot create the stop signal")?);
    let dyn_handler: Arc<dyn Handler> = handler.clone();
    let supervisors = Arc::new(Supervisors::new(
        dyn_handler,
        holder,
        stopper.clone(),
        supervised,
        guard.clone(),
    ));
    // Containers started under an earlier agent: their notified syscalls wait in the kernel until
    // these threads answer.
    let taken = tokio::task::spawn_blocking({
        let supervisors = supervisors.clone();
        move || supervisors.take_over()
    })
    .await?;
    match taken {
        Ok(_) if args.no_holder => {}
        Ok(n) => {
            info!(fds = n, holder = %args.holder.display(), "took over the notify fds the holder held")
        }
        // HolderClient has warned ("restart survival off") once already.
        Err(HolderClientError::Connect { .. }) => {}
        Err(e) => {
            warn!(error = %e, "could not take over the notify fds the holder holds; containers started under an earlier agent wait until an agent takes them")
        }
    }

    let listener = Listener::bind(&args.socket)
        .with_context(|| format!("cannot listen on {}", args.socket.display()))?;
    info!(socket = %args.socket.display(), version, "rampart-seccomp taking notify fds");
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut handoffs = JoinSet::new();
    loop {
        tokio::select! {
            incoming = listener.accept() => {
                let incoming = match incoming {
                    Ok(i) => i,
                    Err(e) => { warn!(error = %e, "refused a connection"); continue; }
                };
                let supervisors = supervisors.clone();
                handoffs.spawn(async move {
                    match incoming.handoff().await {
                        Ok(handoff) => {
                            let _ = tokio::task::spawn_blocking(move || {
                                supervisors.supervise_new(&handoff.state, handoff.notify_fd)
                            })
                            .await;
                        }
                        Err(e) => warn!(error = %e, "bad handoff from runc"),
                    }
                });
            }
            Some(_) = handoffs.join_next(), if !handoffs.is_empty() => {}
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }

    // Graceful stop: take no new container, finish the handoffs under way, answer what is being
    // handled, and leave every pending notification queued in the kernel for the next agent.
    drop(listener);
    // runc then fails at once ("no such file"), and the next agent's socket is the only one.
    let _ = std::fs::remove_file(&args.socket);
    info!(
        handoffs = handoffs.len(),
        "rampart-seccomp stopping: no new containers until an agent is back"
    );
    if tokio::time::timeout(HANDOFF_GRACE, async {
        while handoffs.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        warn!(
            left = handoffs.len(),
            "handoffs from runc did not finish in time; those containers will fail to start"
        );
    }
    let left = tokio::task::spawn_blocking(move || stopper.stop(ANSWER_GRACE)).await?;
    if left > 0 {
        warn!(
            threads = left,
            "supervisor threads still busy after {ANSWER_GRACE:?}; the notifications they hold stay unanswered, and their tasks wait until a signal interrupts them"
        );
    }
    // After the supervisors: an emulated open of theirs may wait on the guard's answer.
    if let Some(g) = &guard {
        g.stop();
    }
    if args.no_holder {
        info!(
            "rampart-seccomp stopped; the containers it supervised fail their notified syscalls (ENOSYS) from now on"
        );
    } else {
        info!(
            "rampart-seccomp stopped; pending notifications wait in the kernel for the next agent (the holder keeps the notify fds)"
        );
    }
    Ok(())
}
