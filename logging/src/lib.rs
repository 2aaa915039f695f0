//! Logging for rampart's daemons: to journald (with each span field, such as pod and container, as
//! a journal field) when journald runs, to stderr otherwise. `RUST_LOG` filters as usual; the
//! default is `info`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where logs went, for the first log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    Journald,
    Stderr,
}

/// Installs the global subscriber. `identifier` becomes SYSLOG_IDENTIFIER in journald.
pub fn init(identifier: &str, force_stderr: bool) -> Destination {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let journald = (!force_stderr && std::path::Path::new("/run/systemd/journal/socket").exists())
        .then(tracing_journald::layer)
        .and_then(Result::ok);
    match journald {
        Some(layer) => {
            let layer = layer
                .with_syslog_identifier(identifier.to_owned())
                .with_field_prefix(Some("RAMPART_LOG".to_owned()));
            if tracing_subscriber::registry()
                .with(filter())
                .with(layer)
                .try_init()
                .is_ok()
            {
                return Destination::Journald;
            }
            Destination::Stderr
        }
        None => {
            let _ = tracing_subscriber::fmt()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_env_filter(filter())
                .with_writer(std::io::stderr)
                .try_init();
            Destination::Stderr
        }
    }
}
