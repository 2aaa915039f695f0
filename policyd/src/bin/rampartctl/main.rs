//! rampartctl: the operator's CLI for rampart.
//!
//! - `policy lint|explain|test`: offline, with the policy crate rampartd uses;
//! - `status`: the running rampartd's Status RPC;
//! - `events`: rampart's alert records from journald.
//!
//! Exit codes: 0 success; 1 for a failed check (lint errors, test mismatches) or any error,
//! which is printed as one line on stderr; 2 for usage errors (clap's convention).

mod events;
mod output;
mod policy;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rampartctl",
    version,
    about = "Operate rampart: check policies, see what rampartd holds, read its alerts."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check, explain and test policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// What the running rampartd holds: policies, workloads, agents, counters.
    Status(status::StatusArgs),
    /// rampart's alert records from journald.
    Events(events::EventsArgs),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Check policy files; print each problem as file:line:column. Exit 1 if any.
    Lint(policy::lint::LintArgs),
    /// What the policies decide for one operation of one workload, and why.
    Explain(Box<policy::explain::ExplainArgs>),
    /// Decide a file of cases and compare with their expected outcome. Exit 1 on a mismatch.
    Test(policy::test::TestArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Policy(PolicyCommand::Lint(a)) => policy::lint::run(a),
        Command::Policy(PolicyCommand::Explain(a)) => policy::explain::run(a),
        Command::Policy(PolicyCommand::Test(a)) => policy::test::run(a),
        Command::Status(a) => status::run(a),
        Command::Events(a) => events::run(a),
    };
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            // `{:#}` joins anyhow's context chain on one line.
            eprintln!("rampartctl: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
