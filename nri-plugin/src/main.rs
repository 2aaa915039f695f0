//! rampart-nri: runs the NRI plugin against a runtime's NRI socket (external plugin), or on the
//! socket the runtime passed when it started it from its plugin_path (pre-registered plugin:
//! `NRI_PLUGIN_SOCKET` set). With `--log-only` it only logs events (to see NRI working); otherwise
//! it injects what rampartd plans.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use rampart_nri::daemon_client::RampartdClient;
use rampart_nri::inject::{
    DEFAULT_PLAN_TIMEOUT, DEFAULT_SECCOMP_SOCKET, InjectConfig, RampartHandler,
};
use rampart_nri::log_handler::LogHandler;
use rampart_nri::mode::SeccompMode;
use rampart_nri::plugin::DEFAULT_SOCKET;
use rampart_nri::preconnected::{self, Preconnected};
use rampart_nri::{Handler, Plugin, PluginConfig};
use rampart_protos::agent::{AgentKind, HelloRequest};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser, Debug)]
#[command(
    name = "rampart-nri",
    version,
    about = "rampart's NRI plugin for containerd"
)]
struct Args {
    /// The runtime's NRI socket.
    #[arg(long, env = "RAMPART_NRI_SOCKET", default_value = DEFAULT_SOCKET)]
    socket: std::path::PathBuf,
    /// Plugin name; the runtime knows the plugin as <index>-<name>.
    #[arg(long, default_value = "rampart")]
    name: String,
    /// Two-digit index: plugins are called in ascending order.
    #[arg(long, default_value = "10")]
    index: String,
    /// Only log NRI events; change nothing and need no rampartd.
    #[arg(long)]
    log_only: bool,
    /// Log to stderr even when journald runs.
    #[arg(long)]
    log_stderr: bool,
    /// rampartd's agent socket.
    #[arg(long, env = "RAMPART_DAEMON_SOCKET", default_value = rampart_protos::agent::DEFAULT_SOCKET)]
    daemon: PathBuf,
    /// The seccomp agent's socket: the `listenerPath` of every injected filter.
    #[arg(long, env = "RAMPART_SECCOMP_SOCKET", default_value = DEFAULT_SECCOMP_SOCKET)]
    seccomp_socket: String,
    /// How the seccomp rules reach the container: auto follows the runtime's version
    /// (annotation + rampart-runc below containerd 2.2, NRI adjustment from 2.2).
    #[arg(long, value_enum, default_value_t = SeccompMode::Auto)]
    seccomp_mode: SeccompMode,
    /// Fail a container's creation whenever its protection cannot be set up (rampartd down or
    /// erroring), even if no policy marks it required.
    #[arg(long)]
    require_protection: bool,
    /// Budget for each rampartd call made while the runtime waits (its default timeout is 2 s).
    #[arg(long, default_value_t = DEFAULT_PLAN_TIMEOUT.as_millis() as u64)]
    daemon_timeout_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    rampart_logging::init("rampart-nri", args.log_stderr);
    // Before anything else: a runtime that started us waits for the registration (5 s default).
    let pre = match preconnected::from_env() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rampart-nri: {e}");
            tracing::error!(error = %e, "cannot use the pre-connected NRI socket");
            return ExitCode::from(2);
        }
    };
    // The runtime knows a plugin it started by its file name; register under that.
    let name = pre
        .as_ref()
        .and_then(|p| p.name.clone())
        .unwrap_or(args.name.clone());
    let index = pre
        .as_ref()
        .and_then(|p| p.index.clone())
        .unwrap_or(args.index.clone());
    let config = match PluginConfig::new(&args.socket, &name, &index) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rampart-nri: {e}");
            return ExitCode::from(2);
        }
    };
    if args.log_only {
        return serve(config, LogHandler, pre).await;
    }
    let inject = InjectConfig {
        seccomp_socket: args.seccomp_socket,
        mode: args.seccomp_mode,
        require_protection: args.require_protection,
        daemon_timeout: Duration::from_millis(args.daemon_timeout_ms),
        ..Default::default()
    };
    let client = Arc::new(RampartdClient::new(&args.daemon, inject.daemon_timeout));
    let enforcer = format!("seccomp-inject-{:?}", inject.mode).to_lowercase();
    let handler = RampartHandler::new(client.clone(), inject);
    // Without rampartd every container would start unprotected (or, with --require-protection,
    // not at all): say so now rather than at the first pod. In the background: registration must
    // not wait for it, and each container creation asks rampartd again anyway.
    let hello = client.clone();
    let known = handler.known_containers();
    let daemon = args.daemon.clone();
    tokio::spawn(async move {
        let announce = Arc::new(move || HelloRequest {
            kind: AgentKind::Nri as i32,
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            enforcers: vec![enforcer.clone()],
            containers: known.list(),
            mechanisms: Vec::new(),
        });
        if let Err(e) = hello
            .client()
            .announce(announce, Duration::from_secs(2))
            .await
        {
            tracing::error!(error = %e, daemon = %daemon.display(), "rampartd not reachable at start: containers created before it answers follow the failure policy");
        }
        // A restarted rampartd learns the bound containers again within a second, even while no
        // container is being created or stopped.
        hello.client().keep_connected(Duration::from_secs(1)).await;
    });
    serve(config, handler, pre).await
}

async fn serve<H: Handler>(
    config: PluginConfig,
    handler: H,
    pre: Option<Preconnected>,
) -> ExitCode {
    let plugin_name = format!("{}-{}", config.index, config.name);
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("rampart-nri: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let socket_display = config.socket.display().to_string();
    let plugin = Plugin::new(config, handler);
    let Some(pre) = pre else {
        tracing::info!(socket = %socket_display, plugin = %plugin_name, "starting as an external plugin");
        tokio::select! {
            _ = plugin.run() => {}
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
        return ExitCode::SUCCESS;
    };
    tracing::info!(plugin = %plugin_name, "starting as a pre-registered plugin on the runtime's connection ({}=fd)", preconnected::SOCKET_ENV);
    tokio::select! {
        end = plugin.run_preconnected(pre.socket) => match end {
            // The runtime starts its plugin_path plugins again when it restarts.
            Ok(end) => {
                tracing::info!(reason = %end.reason, "the runtime closed the connection; exiting");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "pre-registered session failed");
                ExitCode::FAILURE
            }
        },
        _ = term.recv() => { tracing::info!("SIGTERM: stopping"); ExitCode::SUCCESS }
        _ = int.recv() => { tracing::info!("SIGINT: stopping"); ExitCode::SUCCESS }
    }
}
