//! rampart-holder: keeps a copy of every notify fd rampart-seccomp supervises, so that the
//! containers' filters outlive an agent restart, and hands them to the next agent. Start it before
//! the agent and leave it running: stopping it drops the fds it holds (see `holder::server`).

use std::os::fd::AsFd;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use rampart_seccomp::holder::protocol::DEFAULT_SOCKET;
use rampart_seccomp::holder::server::{self, Holder};
use tracing::{info, warn};

#[derive(Debug, Parser)]
#[command(
    name = "rampart-holder",
    version,
    about = "keeps rampart-seccomp's notify fds across agent restarts"
)]
struct Args {
    /// The socket the agent hands fds to and takes them back from (root only, mode 0600).
    #[arg(long, env = "RAMPART_SECCOMP_HOLDER", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Log to stderr even when journald runs.
    #[arg(long)]
    log_stderr: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    rampart_logging::init("rampart-holder", args.log_stderr);
    // One descriptor per supervised process: take all the descriptors the hard limit allows.
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft != hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                warn!(error = %e, "cannot raise the open-file limit to its hard limit");
            }
        }
        Ok(_) => {}
        Err(e) => warn!(error = %e, "cannot read the open-file limit"),
    }
    let listener = server::bind(&args.socket)
        .with_context(|| format!("cannot serve {}", args.socket.display()))?;
    info!(socket = %args.socket.display(), max_fds = ?getrlimit(Resource::RLIMIT_NOFILE).ok().map(|(soft, _)| soft),
        "rampart-holder holding notify fds");
    Holder::new()
        .serve(listener.as_fd(), None)
        .context("the holder's poll loop failed; the notify fds it held are dropped")?;
    Ok(())
}
