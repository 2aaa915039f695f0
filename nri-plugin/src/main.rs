//! rampart-nri: runs the NRI plugin against a runtime's NRI socket. For now its handler only
//! logs events, so NRI can be seen working.

use std::io::IsTerminal;

use clap::Parser;
use rampart_nri::log_handler::LogHandler;
use rampart_nri::plugin::DEFAULT_SOCKET;
use rampart_nri::{Plugin, PluginConfig};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

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
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        // Plain text when piped (journald, tests), colours on a terminal.
        .with_ansi(std::io::stdout().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = match PluginConfig::new(args.socket, args.name, args.index) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rampart-nri: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    tracing::info!(socket = %config.socket.display(), plugin = %format!("{}-{}", config.index, config.name), "starting");
    let plugin = Plugin::new(config, LogHandler);
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("rampart-nri: cannot install signal handlers: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = plugin.run() => {}
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
    std::process::ExitCode::SUCCESS
}
