//! The long-running plugin: keeps a registered connection to the runtime, reconnecting with
//! backoff whenever it goes away (containerd restarts, the socket is not there yet, ...).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::handler::Handler;
use crate::stub::{self, SessionEnd, StubError};

/// Where NRI-enabled runtimes listen for external plugins.
pub const DEFAULT_SOCKET: &str = "/var/run/nri/nri.sock";

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "plugin index {0:?} is not two digits; NRI orders plugins by a two-digit index such as \"10\""
    )]
    Index(String),
    #[error(
        "plugin name {0:?} is empty or contains '-' or '/'; NRI identifies a plugin as <index>-<name>"
    )]
    Name(String),
}

#[derive(Debug, Clone)]
pub struct PluginConfig {
    pub socket: PathBuf,
    pub name: String,
    pub index: String,
}

impl PluginConfig {
    pub fn new(
        socket: impl Into<PathBuf>,
        name: impl Into<String>,
        index: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let (name, index) = (name.into(), index.into());
        // The runtime rejects these too, but only after a connection, and then we would retry forever.
        if index.len() != 2 || !index.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::Index(index));
        }
        if name.is_empty() || name.contains(['-', '/']) {
            return Err(ConfigError::Name(name));
        }
        Ok(PluginConfig {
            socket: socket.into(),
            name,
            index,
        })
    }
}

pub struct Plugin<H> {
    config: PluginConfig,
    handler: Arc<H>,
}

impl<H: Handler> Plugin<H> {
    pub fn new(config: PluginConfig, handler: H) -> Self {
        Plugin {
            config,
            handler: Arc::new(handler),
        }
    }

    /// Pre-registered mode: serves the one connection the runtime handed this plugin when it
    /// started it, until the runtime closes it. No reconnecting: the runtime starts its
    /// plugin_path plugins again when it starts.
    pub async fn run_preconnected(
        &self,
        socket: std::os::unix::net::UnixStream,
    ) -> Result<SessionEnd, StubError> {
        socket
            .set_nonblocking(true)
            .map_err(StubError::Preconnected)?;
        let trunk = tokio::net::UnixStream::from_std(socket).map_err(StubError::Preconnected)?;
        let c = &self.config;
        stub::run_connection(trunk, &c.name, &c.index, self.handler.clone()).await
    }

    /// Runs until the future is dropped.
    pub async fn run(&self) {
        let mut backoff = Backoff::default();
        loop {
            let c = &self.config;
            match stub::run_session(&c.socket, &c.name, &c.index, self.handler.clone()).await {
                Ok(end) => {
                    // A connection that got configured worked: the next failure starts over.
                    if end.configured {
                        backoff.reset();
                    }
                    tracing::warn!(reason = %end.reason, "lost the NRI connection; reconnecting");
                }
                Err(e @ StubError::Connect { .. }) => {
                    tracing::warn!(error = %e, retry_in = ?backoff.peek(), "NRI socket unavailable")
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff.peek(), "NRI session failed")
                }
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}

/// Doubling delays between reconnects, capped, so a runtime that is down for long is not spun on.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    fn peek(&self) -> Duration {
        self.next
    }

    fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        d
    }

    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<_> = (0..9).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        b.reset();
        assert_eq!(b.next_delay(), BACKOFF_MIN);
    }

    #[test]
    fn config_checks_what_nri_would_reject() {
        assert!(PluginConfig::new(DEFAULT_SOCKET, "rampart", "10").is_ok());
        assert!(matches!(
            PluginConfig::new(DEFAULT_SOCKET, "rampart", "1"),
            Err(ConfigError::Index(_))
        ));
        assert!(matches!(
            PluginConfig::new(DEFAULT_SOCKET, "rampart", "ab"),
            Err(ConfigError::Index(_))
        ));
        assert!(matches!(
            PluginConfig::new(DEFAULT_SOCKET, "ram-part", "10"),
            Err(ConfigError::Name(_))
        ));
    }
}
