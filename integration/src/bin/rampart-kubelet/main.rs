//! rampart-kubelet: what a kubelet does, over containerd's CRI, for operators trying a node by
//! hand and for the demo. Exit codes: 0 ok, the command's own for `exec`, 1 otherwise with a
//! one-line error on stderr.

mod cli;
mod table;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use rampart_integration::cri::{
    ContainerFilter, ContainerSpec, Cri, PodFilter, PodSpec, RunOptions, log_text,
};

use cli::{Cli, Command, Format};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version: not errors.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!(
                "rampart-kubelet: {} (see --help)",
                one_line(&e.render().to_string())
            );
            return ExitCode::FAILURE;
        }
    };
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rampart-kubelet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rampart-kubelet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let cri = Cri::connect(&cli.socket)
        .await?
        .with_node_dir(&cli.node_dir);
    match cli.command {
        Command::Run(args) => run(&cri, args).await?,
        Command::Exec(args) => return exec(&cri, args).await,
        Command::Ps(args) => table::ps(&cri, &args).await?,
        Command::Stop(args) => {
            let pod = cri.find_pod(&args.pod.namespace, &args.pod.pod).await?;
            cri.stop_pod(&pod.id, Duration::from_secs(args.grace))
                .await?;
            println!("stopped {}", pod.full_name());
        }
        Command::Rm(args) => rm(&cri, args).await?,
        Command::Ip(pod) => {
            let found = cri.find_pod(&pod.namespace, &pod.pod).await?;
            match cri.pod_ip(&found.id).await? {
                Some(ip) => println!("{ip}"),
                None if found.host_network => {
                    bail!(
                        "pod {} uses the node's network: it has no IP of its own",
                        found.full_name()
                    )
                }
                None => bail!("pod {} has no IP (is it stopped?)", found.full_name()),
            }
        }
        Command::Logs(args) => {
            let pod = cri.find_pod(&args.pod.namespace, &args.pod.pod).await?;
            let container = cri.find_container(&pod, args.container.as_deref()).await?;
            let lines = cri.container_logs(&container.id).await?;
            let mut out = std::io::stdout().lock();
            if args.timestamps {
                for l in &lines {
                    writeln!(out, "{} {} {}", l.timestamp, l.stream, l.text)?;
                }
            } else {
                out.write_all(log_text(&lines).as_bytes())?;
            }
        }
        Command::Inspect(args) => {
            let pod = cri.find_pod(&args.pod.namespace, &args.pod.pod).await?;
            let json = if args.sandbox {
                cri.pod_inspect_json(&pod.id).await?
            } else {
                let container = cri.find_container(&pod, args.container.as_deref()).await?;
                cri.container_status(&container.id).await?.inspect_json()
            };
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Command::Images => {
            for image in cri.list_images().await? {
                println!("{image}");
            }
        }
        Command::Version => {
            let v = cri.version().await?;
            println!(
                "{} {} (CRI {})",
                v.runtime_name, v.runtime_version, v.runtime_api_version
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run(cri: &Cri, args: cli::RunArgs) -> Result<()> {
    let mut pod = PodSpec::new(&args.name)
        .namespace(&args.namespace)
        .host_network(args.host_network);
    if let Some(uid) = &args.uid {
        pod = pod.uid(uid);
    }
    if let Some(profile) = &args.seccomp_profile {
        pod = pod.seccomp(profile.clone());
    }
    let name = args.container.clone().unwrap_or_else(|| args.name.clone());
    let mut container = ContainerSpec::new(&name, &args.image).command(args.command.clone());
    for (k, v) in &args.labels {
        pod = pod.label(k, v);
        container = container.label(k, v);
    }
    for (k, v) in &args.annotations {
        pod = pod.annotation(k, v);
    }
    for (k, v) in &args.env {
        container = container.env(k, v);
    }
    if let Some(dir) = &args.workdir {
        container = container.working_dir(dir);
    }
    // The name is taken: say so instead of making a second sandbox with the same name.
    let existing = cri
        .list_pods(&PodFilter::named(pod.effective_namespace(), &args.name))
        .await?;
    if !existing.is_empty() {
        bail!(
            "pod {}/{} already exists; remove it first with `rampart-kubelet rm {} -n {}`",
            pod.effective_namespace(),
            args.name,
            args.name,
            pod.effective_namespace()
        );
    }
    let opts = RunOptions {
        timeout: Duration::from_secs(args.timeout),
        wait_running: !args.no_wait,
        keep_on_failure: args.keep_on_failure,
        ..RunOptions::default()
    };
    let running = cri.run_with(&pod, &[container], &opts).await?;
    let c = &running.containers[0];
    let ip = running
        .ip
        .map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    match args.output {
        Format::Text => {
            println!("pod        {} {}", running.pod.full_name(), running.pod.id);
            println!("container  {} {}", c.name, c.id);
            println!("ip         {ip}");
        }
        Format::Json => {
            let json = serde_json::json!({
                "namespace": running.pod.namespace,
                "pod": running.pod.name,
                "podId": running.pod.id,
                "uid": running.pod.uid,
                "container": c.name,
                "containerId": c.id,
                "ip": running.ip,
                "logDirectory": running.pod.log_directory,
            });
            println!("{json}");
        }
    }
    Ok(())
}

async fn exec(cri: &Cri, args: cli::ExecArgs) -> Result<ExitCode> {
    let pod = cri.find_pod(&args.pod.namespace, &args.pod.pod).await?;
    let container = cri.find_container(&pod, args.container.as_deref()).await?;
    let out = cri
        .exec_sync(
            &container.id,
            &args.command,
            Duration::from_secs(args.timeout),
        )
        .await?;
    // ExecSync hands back the output once the command is done; write it as it came, raw.
    std::io::stdout().write_all(&out.stdout)?;
    std::io::stdout().flush()?;
    std::io::stderr().write_all(&out.stderr)?;
    Ok(ExitCode::from(exit_status_byte(out.exit_code)))
}

/// clap's message without its usage block, on one line: the exit-code contract is one line of
/// error.
fn one_line(rendered: &str) -> String {
    let message = rendered.split("\n\n").next().unwrap_or(rendered);
    let words: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let joined = words.join(" ");
    joined.strip_prefix("error: ").unwrap_or(&joined).to_owned()
}

/// A process exit status is one byte; anything else (never seen from runc) becomes 1.
fn exit_status_byte(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(1)
}

async fn rm(cri: &Cri, args: cli::RmArgs) -> Result<()> {
    if args.all {
        let n = cri.remove_all_pods().await?;
        println!("removed {n} pod{}", if n == 1 { "" } else { "s" });
        return Ok(());
    }
    let name = args.pod.context("name a pod, or use --all")?;
    // Every sandbox of that name: a stopped one left behind would block the next `run`.
    let pods = cri
        .list_pods(&PodFilter::named(&args.namespace, &name))
        .await?;
    if pods.is_empty() {
        bail!(
            "pod {}/{name} not found (see `rampart-kubelet ps`)",
            args.namespace
        );
    }
    for p in &pods {
        let containers = cri
            .list_containers(&ContainerFilter::in_pod(&p.id))
            .await?
            .len();
        cri.remove_pod(&p.id).await?;
        println!(
            "removed {} ({} container{})",
            p.full_name(),
            containers,
            if containers == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_fit_on_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  <POD>\n  \
                        <CMD>...\n\nUsage: rampart-kubelet exec <POD> -- <CMD>...\n\nFor more \
                        information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "the following required arguments were not provided: <POD> <CMD>..."
        );
    }

    #[test]
    fn exit_codes_map_to_a_byte() {
        assert_eq!(exit_status_byte(0), 0);
        assert_eq!(exit_status_byte(3), 3);
        assert_eq!(exit_status_byte(137), 137);
        assert_eq!(exit_status_byte(-1), 1);
        assert_eq!(exit_status_byte(256), 1);
    }
}
