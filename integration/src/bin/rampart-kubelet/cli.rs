//! Command line of rampart-kubelet.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rampart_integration::cri::{SeccompProfile, parse_key_value};

/// A small kubelet over containerd's CRI: run pods on a rampart node by hand.
#[derive(Debug, Parser)]
#[command(name = "rampart-kubelet", version)]
pub struct Cli {
    /// containerd's CRI socket.
    #[arg(
        long,
        global = true,
        env = "RAMPART_CRI_SOCKET",
        default_value = "/var/lib/rampart-node/containerd.sock"
    )]
    pub socket: PathBuf,

    /// The node directory (pod logs go to <dir>/pods/<namespace>_<name>_<uid>).
    #[arg(
        long,
        global = true,
        env = "RAMPART_NODE_DIR",
        default_value = "/var/lib/rampart-node"
    )]
    pub node_dir: PathBuf,

    /// More logging on stderr (-v: info, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pod with one container and wait until it runs; prints pod id, container id, IP.
    Run(RunArgs),
    /// Run a command in a pod's container (ExecSync) and exit with its exit code.
    Exec(ExecArgs),
    /// List pods and their containers.
    Ps(PsArgs),
    /// Stop a pod's containers and its sandbox (kept for `logs` and `inspect`).
    Stop(StopArgs),
    /// Stop and remove a pod (or every pod with --all), its containers and logs.
    Rm(RmArgs),
    /// Print a pod's IP.
    Ip(PodRef),
    /// Print a container's log.
    Logs(LogsArgs),
    /// Print a container's verbose status as JSON (runtime spec, pid, …), like `crictl inspect`.
    Inspect(InspectArgs),
    /// List the images containerd holds for CRI.
    Images,
    /// Print the runtime's name and version.
    Version,
}

/// A pod by name.
#[derive(Debug, Args)]
pub struct PodRef {
    /// Pod name.
    pub pod: String,
    /// Pod namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Pod name.
    pub name: String,
    /// Image in containerd's k8s.io namespace (never pulled), e.g. rampart.local/busybox:latest.
    #[arg(long)]
    pub image: String,
    /// Pod namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Container name (default: the pod name).
    #[arg(short, long)]
    pub container: Option<String>,
    /// Pod label KEY=VALUE (repeatable); the container gets them too.
    #[arg(short, long = "label", value_name = "KEY=VALUE", value_parser = key_value)]
    pub labels: Vec<(String, String)>,
    /// Pod annotation KEY=VALUE (repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = key_value)]
    pub annotations: Vec<(String, String)>,
    /// Container environment variable KEY=VALUE (repeatable).
    #[arg(short, long = "env", value_name = "KEY=VALUE", value_parser = key_value)]
    pub env: Vec<(String, String)>,
    /// Seccomp profile: runtime-default, unconfined, or the path of a JSON profile on the node
    /// (default: none set, which containerd runs unconfined).
    #[arg(long, value_name = "PATH|runtime-default|unconfined", value_parser = seccomp_profile)]
    pub seccomp_profile: Option<SeccompProfile>,
    /// Working directory in the container.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Share the node's network namespace (no pod IP).
    #[arg(long)]
    pub host_network: bool,
    /// Pod uid (default: a new UUID).
    #[arg(long)]
    pub uid: Option<String>,
    /// Seconds to wait for the container to run.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Return once started, without waiting for Running (for one-shot commands).
    #[arg(long)]
    pub no_wait: bool,
    /// Keep the pod when its container fails to run (to read `logs` and `inspect`).
    #[arg(long)]
    pub keep_on_failure: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Command and arguments, replacing the image's entrypoint and cmd.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub pod: PodRef,
    /// Container name (default: the pod's only container).
    #[arg(short, long)]
    pub container: Option<String>,
    /// Seconds the command may run (0: no limit).
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Command and arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Only pods in this namespace.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Only pods with this label KEY=VALUE (repeatable).
    #[arg(short, long = "label", value_name = "KEY=VALUE", value_parser = key_value)]
    pub labels: Vec<(String, String)>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Show full ids.
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub pod: PodRef,
    /// Seconds between SIGTERM and SIGKILL.
    #[arg(long, default_value_t = 10)]
    pub grace: u64,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Pod name.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub pod: Option<String>,
    /// Pod namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Remove every pod on the node.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub pod: PodRef,
    /// Container name (default: the pod's only container).
    #[arg(short, long)]
    pub container: Option<String>,
    /// Prefix each line with its timestamp and stream.
    #[arg(short, long)]
    pub timestamps: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub pod: PodRef,
    /// Container name (default: the pod's only container).
    #[arg(short, long, conflicts_with = "sandbox")]
    pub container: Option<String>,
    /// The pod sandbox's status instead of a container's.
    #[arg(long)]
    pub sandbox: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    parse_key_value(s).map_err(|e| e.to_string())
}

fn seccomp_profile(s: &str) -> Result<SeccompProfile, String> {
    s.parse()
        .map_err(|e: rampart_integration::cri::CriError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("rampart-kubelet").chain(args.iter().copied()))
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_as_the_demo_calls_it() {
        let cli = parse(&[
            "run",
            "vulnerable-nginx-pod",
            "--image",
            "rampart.local/nginx:latest",
            "--container",
            "nginx",
            "--label",
            "app=nginx",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.name, "vulnerable-nginx-pod");
        assert_eq!(run.namespace, "default");
        assert_eq!(run.container.as_deref(), Some("nginx"));
        assert_eq!(run.labels, vec![("app".into(), "nginx".into())]);
        assert!(run.command.is_empty());
    }

    #[test]
    fn run_with_command_env_and_seccomp() {
        let cli = parse(&[
            "run",
            "b",
            "--image",
            "rampart.local/busybox:latest",
            "-e",
            "A=1=2",
            "--seccomp-profile",
            "runtime-default",
            "--",
            "sleep",
            "3600",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.env, vec![("A".into(), "1=2".into())]);
        assert_eq!(run.seccomp_profile, Some(SeccompProfile::RuntimeDefault));
        assert_eq!(run.command, vec!["sleep", "3600"]);
    }

    #[test]
    fn bad_label_is_a_usage_error() {
        let err = parse(&["run", "b", "--image", "i", "--label", "app"]).unwrap_err();
        assert!(err.to_string().contains("expected KEY=VALUE"), "{err}");
    }

    #[test]
    fn exec_needs_a_command_after_dashes() {
        assert!(parse(&["exec", "p"]).is_err());
        let cli = parse(&["exec", "p", "-n", "web", "--", "sh", "-c", "exit 3"]).unwrap();
        let Command::Exec(exec) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(exec.pod.namespace, "web");
        assert_eq!(exec.command, vec!["sh", "-c", "exit 3"]);
    }

    #[test]
    fn rm_takes_a_pod_or_all_but_not_both() {
        assert!(parse(&["rm"]).is_err());
        assert!(parse(&["rm", "p", "--all"]).is_err());
        assert!(parse(&["rm", "--all"]).is_ok());
        assert!(parse(&["rm", "p"]).is_ok());
    }
}
