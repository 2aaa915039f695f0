//! `rampartctl status`: what the running rampartd holds, from its Status RPC.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use rampart_protos::agent::{AgentKind, DEFAULT_SOCKET, StatusResponse};
use rampart_protos::client::{ClientError, DaemonClient};
use serde_json::{Value, json};

use crate::output::{Cell, Colour, Format, Painter, Table, or_dash, print_json, time_ms};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// rampartd's agent API socket.
    #[arg(long, env = "RAMPART_DAEMON_SOCKET", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// How long to wait for an answer.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub format: Format,
}

/// `500ms`, `5s`, `1m`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (500ms, 5s, 1m)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("`{s}` is not a duration (500ms, 5s, 1m)")),
    }
}

pub fn run(args: &StatusArgs) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let status = rt.block_on(fetch(args))?;
    match args.format {
        Format::Json => print_json(&to_json(&status))?,
        Format::Table => print!("{}", render(&status)),
    }
    Ok(0)
}

async fn fetch(args: &StatusArgs) -> anyhow::Result<StatusResponse> {
    let path = args.socket.display().to_string();
    let client = DaemonClient::connect(&args.socket)
        .await
        .map_err(|e| match e {
            ClientError::Unreachable { source, .. } => {
                let why = match source.kind() {
                    std::io::ErrorKind::NotFound => {
                        "no socket there: is rampartd running?".to_owned()
                    }
                    std::io::ErrorKind::PermissionDenied => {
                        "permission denied: run rampartctl as root".to_owned()
                    }
                    std::io::ErrorKind::ConnectionRefused => {
                        "connection refused: rampartd is not running (a stale socket)".to_owned()
                    }
                    _ => format!("{source}: is rampartd running?"),
                };
                anyhow!("cannot reach rampartd at {path}: {why}")
            }
            other => anyhow!("cannot reach rampartd at {path}: {other}"),
        })?;
    client.status(args.timeout).await.map_err(|e| {
        if e.is_permission_denied() {
            anyhow!("rampartd at {path} refused the call: run rampartctl as root")
        } else if e.status_code() == Some(rampart_protos::ttrpc::code::UNIMPLEMENTED) {
            anyhow!("rampartd at {path} is too old to answer Status: {e}")
        } else {
            anyhow!("rampartd at {path} did not answer Status: {e}")
        }
    })
}

fn kind_word(kind: i32) -> &'static str {
    match AgentKind::try_from(kind).unwrap_or(AgentKind::Unspecified) {
        AgentKind::Nri => "rampart-nri",
        AgentKind::Seccomp => "rampart-seccomp",
        AgentKind::Audit => "rampart-audit",
        AgentKind::Unspecified => "unknown",
    }
}

fn render(s: &StatusResponse) -> String {
    let paint = Painter::new();
    let mut out = String::new();
    let h = |t: &str| paint.paint(Colour::Bold, t);
    out.push_str(&format!(
        "rampartd {} on node {}, policy snapshot {}\n",
        s.daemon_version,
        or_dash(&s.node_name),
        if s.snapshot_version == 0 {
            "none yet".to_owned()
        } else {
            s.snapshot_version.to_string()
        }
    ));
    if !s.complete {
        out.push_str(&paint.paint(
            Colour::Yellow,
            "note: rampartd reports no policies or alert counters yet (still starting, or no status source)\n",
        ));
    }

    out.push_str(&format!("\n{} ({})\n", h("POLICIES"), s.policies.len()));
    let mut t = Table::new(["NAME", "MODE", "FILE", "VERSION", "LOADED"]);
    for p in &s.policies {
        t.row([
            p.name.clone(),
            p.mode.clone(),
            p.file.clone(),
            or_dash(&p.content_hash),
            time_ms(p.loaded_at_ms),
        ]);
    }
    push_table(&mut out, &t, &paint, "no policies loaded");

    if !s.load_errors.is_empty() {
        out.push_str(&format!(
            "\n{} ({})\n",
            paint.paint(Colour::Red, "LOAD ERRORS"),
            s.load_errors.len()
        ));
        for e in &s.load_errors {
            // The message names file:line:column already when the policy crate gave a place.
            if e.message.starts_with(&e.file) {
                out.push_str(&format!("  {}\n", e.message));
            } else {
                out.push_str(&format!("  {}: {}\n", e.file, e.message));
            }
        }
    }

    out.push_str(&format!("\n{} ({})\n", h("WORKLOADS"), s.workloads.len()));
    let mut t = Table::new([
        "NAMESPACE/POD",
        "CONTAINER",
        "CONTAINER ID",
        "CGROUP",
        "PID",
        "POLICIES",
        "TCP OPENED/FAILED",
        "SENSOR DROPS",
    ]);
    for w in &s.workloads {
        let tcp = w.flows.as_ref().map_or("-".to_owned(), |f| {
            format!("{}/{}", f.connected + f.accepted, f.failed)
        });
        t.row([
            format!("{}/{}", w.namespace, w.pod_name),
            w.container_name.clone(),
            w.container_id.chars().take(13).collect(),
            w.cgroup_id.to_string(),
            w.pid.to_string(),
            if w.policies.is_empty() {
                "-".to_owned()
            } else {
                w.policies.join(",")
            },
            tcp,
            w.sensor_dropped.to_string(),
        ]);
    }
    push_table(&mut out, &t, &paint, "no containers bound");

    out.push_str(&format!("\n{} ({})\n", h("AGENTS"), s.agents.len()));
    let mut t = Table::new(["AGENT", "VERSION", "PID", "ENFORCERS", "STATE", "SINCE"]);
    for a in &s.agents {
        let (state, colour, since) = if a.connected {
            ("connected", Colour::Green, a.connected_at_ms)
        } else {
            ("disconnected", Colour::Red, a.disconnected_at_ms)
        };
        t.row([
            Cell::from(kind_word(a.kind)),
            Cell::from(a.version.clone()),
            Cell::from(a.pid.to_string()),
            Cell::from(if a.enforcers.is_empty() {
                "-".to_owned()
            } else {
                a.enforcers.join(",")
            }),
            Cell::coloured(state, Some(colour)),
            Cell::from(time_ms(since)),
        ]);
    }
    push_table(&mut out, &t, &paint, "no agent has connected");

    // Each agent's mechanisms and rampartd's own, in use or not and why: what this kernel lets
    // rampart do.
    let connected = s.agents.iter().filter(|a| a.connected);
    let mut t = Table::new(["AGENT", "MECHANISM", "IN USE", "DETAIL"]);
    let owned = connected
        .flat_map(|a| a.mechanisms.iter().map(|m| (kind_word(a.kind), m)))
        .chain(s.mechanisms.iter().map(|m| ("rampartd", m)));
    for (owner, m) in owned {
        t.row([
            Cell::from(owner),
            Cell::from(m.name.clone()),
            if m.in_use {
                Cell::coloured("yes", Some(Colour::Green))
            } else {
                Cell::coloured("no", Some(Colour::Yellow))
            },
            Cell::from(m.detail.clone()),
        ]);
    }
    out.push_str(&format!("\n{}\n", h("MECHANISMS")));
    push_table(
        &mut out,
        &t,
        &paint,
        "no connected agent reported its mechanisms",
    );

    // What the kernel sensors wrote to their rings, and dropped because a ring was full.
    let mut t = Table::new(["SENSOR", "WRITTEN", "DROPPED"]);
    for c in &s.sensors {
        let colour = (c.dropped > 0).then_some(Colour::Red);
        t.row([
            Cell::from(c.name.clone()),
            Cell::from(c.written.to_string()),
            Cell::coloured(c.dropped.to_string(), colour),
        ]);
    }
    out.push_str(&format!("\n{}\n", h("SENSORS")));
    push_table(&mut out, &t, &paint, "no kernel sensor has reported");

    let c = s.counters.unwrap_or_default();
    out.push_str(&format!("\n{}\n", h("COUNTERS")));
    let mut t = Table::new(["COUNTER", "VALUE"]);
    let rows: [(&str, u64, bool); 9] = [
        ("events received", c.events_received, false),
        (
            "events with unknown workload",
            c.events_unknown_workload,
            false,
        ),
        ("events dropped by agents", c.agent_dropped, true),
        (
            "events undelivered (pipeline stopped)",
            c.events_undelivered,
            true,
        ),
        ("alerts written", c.alerts_written, false),
        ("alerts deduplicated", c.alerts_deduplicated, false),
        ("alerts rate-limited", c.alerts_rate_limited, false),
        ("journald queued", c.journald_queued, false),
        ("journald dropped", c.journald_dropped, true),
    ];
    for (name, value, bad) in rows {
        let colour = (bad && value > 0).then_some(Colour::Red);
        t.row([Cell::from(name), Cell::coloured(value.to_string(), colour)]);
    }
    push_table(&mut out, &t, &paint, "");
    out
}

fn push_table(out: &mut String, t: &Table, paint: &Painter, empty: &str) {
    if t.is_empty() {
        out.push_str(&format!("  {empty}\n"));
        return;
    }
    for line in t.render(paint).lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
}

fn to_json(s: &StatusResponse) -> Value {
    let c = s.counters.unwrap_or_default();
    json!({
        "daemonVersion": s.daemon_version,
        "nodeName": s.node_name,
        "snapshotVersion": s.snapshot_version,
        "complete": s.complete,
        "policies": s.policies.iter().map(|p| json!({
            "name": p.name, "file": p.file, "mode": p.mode,
            "contentHash": p.content_hash, "loadedAt": time_ms(p.loaded_at_ms),
        })).collect::<Vec<_>>(),
        "loadErrors": s.load_errors.iter().map(|e| json!({
            "file": e.file, "message": e.message,
        })).collect::<Vec<_>>(),
        "workloads": s.workloads.iter().map(|w| json!({
            "namespace": w.namespace, "pod": w.pod_name, "container": w.container_name,
            "containerId": w.container_id, "cgroupId": w.cgroup_id, "pid": w.pid,
            "image": w.image, "policies": w.policies, "boundAt": time_ms(w.bound_at_ms),
            "flows": w.flows.as_ref().map(|f| json!({
                "connected": f.connected, "accepted": f.accepted, "failed": f.failed,
                "closed": f.closed, "bytesSent": f.bytes_sent, "bytesReceived": f.bytes_received,
                "udpSent": f.udp_sent, "udpReceived": f.udp_received,
            })),
            "sensorDropped": w.sensor_dropped,
        })).collect::<Vec<_>>(),
        "agents": s.agents.iter().map(|a| json!({
            "kind": kind_word(a.kind), "version": a.version, "pid": a.pid,
            "enforcers": a.enforcers, "connected": a.connected,
            "mechanisms": a.mechanisms.iter().map(|m| json!({
                "name": m.name, "inUse": m.in_use, "detail": m.detail,
            })).collect::<Vec<_>>(),
            "connectedAt": time_ms(a.connected_at_ms),
            "disconnectedAt": (!a.connected).then(|| time_ms(a.disconnected_at_ms)),
        })).collect::<Vec<_>>(),
        "mechanisms": s.mechanisms.iter().map(|m| json!({
            "name": m.name, "inUse": m.in_use, "detail": m.detail,
        })).collect::<Vec<_>>(),
        "sensors": s.sensors.iter().map(|c| json!({
            "name": c.name, "written": c.written, "dropped": c.dropped,
        })).collect::<Vec<_>>(),
        "counters": {
            "eventsReceived": c.events_received,
            "eventsUnknownWorkload": c.events_unknown_workload,
            "agentDropped": c.agent_dropped,
            "eventsUndelivered": c.events_undelivered,
            "alertsWritten": c.alerts_written,
            "alertsDeduplicated": c.alerts_deduplicated,
            "alertsRateLimited": c.alerts_rate_limited,
            "journaldQueued": c.journald_queued,
            "journaldDropped": c.journald_dropped,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("fast").is_err());
    }
}
