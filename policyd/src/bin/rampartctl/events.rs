//! `rampartctl events`: rampart's alert records from journald.
//!
//! journalctl does the reading: it knows the journal's file format, rotation and permissions,
//! and matches fields in its index. Our filters become its field matches (`RAMPART_POD=web`);
//! repeating one filter ORs its values, different filters AND, as journalctl does.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use clap::Args;
use clap::builder::PossibleValuesParser;
use rampart_policy::{AlertAction, Severity};
use serde_json::Value;

use crate::output::{Cell, Format, Painter, Table, action_colour, or_dash};

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Keep printing new records as they come.
    #[arg(short, long)]
    pub follow: bool,
    #[arg(long)]
    pub pod: Vec<String>,
    #[arg(long)]
    pub namespace: Vec<String>,
    #[arg(long)]
    pub container: Vec<String>,
    /// The policy's name.
    #[arg(long)]
    pub policy: Vec<String>,
    #[arg(long, value_parser = PossibleValuesParser::new(AlertAction::ALL.map(AlertAction::as_str)))]
    pub action: Vec<String>,
    #[arg(long, value_parser = PossibleValuesParser::new(Severity::ALL.map(Severity::as_str)))]
    pub severity: Vec<String>,
    /// FileAccess, ProcessExecution, NetworkConnection, FileIntegrity, Drift, Syscall, …
    #[arg(long = "event-type")]
    pub event_type: Vec<String>,
    /// Records from this time on, in journalctl's syntax: "2024-05-01 10:00", "-1h", "today".
    #[arg(long, allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Records up to this time, in journalctl's syntax.
    #[arg(long, allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Only the last N records.
    #[arg(short = 'n', long)]
    pub lines: Option<u32>,
    /// `json` prints each alert's JSON record (journald's MESSAGE), one per line.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub format: Format,
}

impl EventsArgs {
    /// journalctl's arguments: output options, then one `FIELD=value` per filter value.
    pub fn journalctl_args(&self) -> Vec<String> {
        let mut a: Vec<String> = ["--no-pager", "--all", "-o", "json"]
            .map(String::from)
            .to_vec();
        if self.follow {
            a.push("--follow".into());
        }
        if let Some(s) = &self.since {
            a.push(format!("--since={s}"));
        }
        if let Some(u) = &self.until {
            a.push(format!("--until={u}"));
        }
        if let Some(n) = self.lines {
            a.push(format!("--lines={n}"));
        } else if self.follow {
            // journalctl -f starts with the last 10; an operator following wants only new ones
            // unless they ask for history.
            a.push("--lines=0".into());
        }
        a.push("SYSLOG_IDENTIFIER=rampart".into());
        let filters: [(&str, &Vec<String>); 7] = [
            ("RAMPART_POD", &self.pod),
            ("RAMPART_NAMESPACE", &self.namespace),
            ("RAMPART_CONTAINER", &self.container),
            ("RAMPART_POLICY", &self.policy),
            ("RAMPART_ACTION", &self.action),
            ("RAMPART_SEVERITY", &self.severity),
            ("RAMPART_EVENT_TYPE", &self.event_type),
        ];
        for (field, values) in filters {
            a.extend(values.iter().map(|v| format!("{field}={v}")));
        }
        a
    }
}

pub fn run(args: &EventsArgs) -> anyhow::Result<i32> {
    let mut child = Command::new("journalctl")
        .args(args.journalctl_args())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run journalctl (is systemd's journalctl installed and on PATH?)")?;
    let stdout = child.stdout.take().context("journalctl has no stdout")?;
    let paint = Painter::new();
    let mut table = Table::new(HEADERS);
    let mut out = std::io::stdout().lock();
    if args.follow && args.format == Format::Table {
        writeln!(out, "{}", streaming_row(&HEADERS.map(String::from)))?;
    }
    let mut count = 0usize;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading journalctl's output")?;
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        count += 1;
        match args.format {
            Format::Json => {
                let message = field(&entry, "MESSAGE");
                writeln!(out, "{message}")?;
            }
            Format::Table if args.follow => {
                let cells = row(&entry);
                let mut shown = cells.clone();
                shown[1] = paint.action(&cells[1]);
                writeln!(out, "{}", streaming_row_painted(&cells, &shown))?;
            }
            Format::Table => {
                let cells = row(&entry);
                let colour = action_colour(&cells[1]);
                let mut it = cells.into_iter();
                let mut v: Vec<Cell> = Vec::new();
                v.push(Cell::from(it.next().unwrap_or_default()));
                v.push(Cell::coloured(it.next().unwrap_or_default(), colour));
                v.extend(it.map(Cell::from));
                table.row(v);
            }
        }
        if args.follow {
            out.flush()?;
        }
    }
    let status = child.wait().context("waiting for journalctl")?;
    if !status.success() {
        bail!("journalctl failed ({status}); its message is above");
    }
    if args.format == Format::Table && !args.follow {
        if count == 0 {
            eprintln!("no rampart records match");
        } else {
            write!(out, "{}", table.render(&paint))?;
        }
    }
    Ok(0)
}

const HEADERS: [&str; 7] = [
    "TIME",
    "ACTION",
    "SEVERITY",
    "NAMESPACE/POD",
    "CONTAINER",
    "POLICY",
    "OBJECT",
];
/// Column widths when following: rows print as they come, so widths cannot be measured.
const WIDTHS: [usize; 6] = [20, 13, 8, 32, 16, 30];

fn streaming_row(cells: &[String; 7]) -> String {
    streaming_row_painted(cells, cells)
}

fn streaming_row_painted(plain: &[String; 7], shown: &[String; 7]) -> String {
    let mut s = String::new();
    for (i, w) in WIDTHS.iter().enumerate() {
        s.push_str(&shown[i]);
        let len = plain[i].chars().count();
        s.push_str(&" ".repeat(w.saturating_sub(len).max(1) + 1));
    }
    s.push_str(&shown[6]);
    s
}

/// A journal field as text. journalctl prints binary values as byte arrays and repeated fields
/// as arrays of strings; both are shown rather than dropped.
fn field(entry: &Value, name: &str) -> String {
    match entry.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.iter().all(Value::is_u64) => {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(Value::as_u64)
                .map(|b| u8::try_from(b).unwrap_or(b'?'))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

fn row(entry: &Value) -> [String; 7] {
    let f = |n: &str| field(entry, n);
    let time = match f("RAMPART_TIMESTAMP") {
        t if !t.is_empty() => t,
        _ => f("__REALTIME_TIMESTAMP")
            .parse::<u64>()
            .map(|us| crate::output::time_ms(us / 1000))
            .unwrap_or_default(),
    };
    let ns = f("RAMPART_NAMESPACE");
    let pod = f("RAMPART_POD");
    let who = if ns.is_empty() {
        pod
    } else {
        format!("{ns}/{pod}")
    };
    let remote = match (f("RAMPART_REMOTE_ADDRESS"), f("RAMPART_REMOTE_PORT")) {
        (a, _) if a.is_empty() => String::new(),
        (a, p) if p.is_empty() => a,
        (a, p) if a.contains(':') => format!("[{a}]:{p}"),
        (a, p) => format!("{a}:{p}"),
    };
    let object = [
        f("RAMPART_FILE_PATH"),
        remote,
        f("RAMPART_SYSCALL").to_string(),
        f("RAMPART_PROCESS_PATH"),
    ]
    .into_iter()
    .find(|s| !s.is_empty())
    .unwrap_or_default();
    [
        or_dash(&time),
        or_dash(&f("RAMPART_ACTION")),
        or_dash(&f("RAMPART_SEVERITY")),
        or_dash(&who),
        or_dash(&f("RAMPART_CONTAINER")),
        or_dash(&f("RAMPART_POLICY")),
        or_dash(&object),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        e: EventsArgs,
    }

    #[test]
    fn filters_become_field_matches() {
        let t = T::parse_from([
            "x", "--pod", "web", "--action", "Blocked", "--action", "Alerted", "--since", "-1h",
        ]);
        let a = t.e.journalctl_args();
        assert!(a.contains(&"SYSLOG_IDENTIFIER=rampart".to_owned()));
        assert!(a.contains(&"RAMPART_POD=web".to_owned()));
        assert!(a.contains(&"RAMPART_ACTION=Blocked".to_owned()));
        assert!(a.contains(&"RAMPART_ACTION=Alerted".to_owned()));
        assert!(a.contains(&"--since=-1h".to_owned()));
        assert!(!a.contains(&"--follow".to_owned()));
    }

    #[test]
    fn rows_show_the_object() {
        let e: Value = serde_json::json!({
            "RAMPART_TIMESTAMP": "2023-10-27T10:30:00Z", "RAMPART_ACTION": "Blocked",
            "RAMPART_SEVERITY": "High", "RAMPART_NAMESPACE": "default",
            "RAMPART_POD": "web", "RAMPART_CONTAINER": "nginx",
            "RAMPART_POLICY": "P", "RAMPART_FILE_PATH": "/etc/passwd",
            "RAMPART_PROCESS_PATH": [47, 98, 105, 110],
        });
        let r = row(&e);
        assert_eq!(r[3], "default/web");
        assert_eq!(r[6], "/etc/passwd");
        assert_eq!(field(&e, "RAMPART_PROCESS_PATH"), "/bin");
    }
}
