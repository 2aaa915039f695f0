//! A hypothetical workload and operation, as given on the command line (`policy explain`) or in
//! a case file (`policy test`), turned into what the policy crate decides on.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{Context, bail};
use clap::{ArgGroup, Args};
use rampart_policy::{
    Access, Decision, Direction, Operation, Protocol, User, Verdict, Workload, WorkloadView,
};
use serde::Deserialize;

/// Who does it.
#[derive(Debug, Clone, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadArgs {
    /// The pod's namespace.
    #[arg(long, default_value = "default")]
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The pod's name.
    #[arg(long)]
    pub pod: String,
    /// A pod label, `key=value`; repeat for more.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    #[serde(skip)]
    pub label_args: Vec<(String, String)>,
    #[arg(skip)]
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The container's name.
    #[arg(long)]
    pub container: String,
    /// The container's image reference.
    #[arg(long, default_value = "")]
    #[serde(default)]
    pub image: String,
}

fn default_namespace() -> String {
    "default".to_owned()
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

impl WorkloadArgs {
    pub fn workload(&self) -> Workload {
        let mut pod_labels = self.labels.clone();
        pod_labels.extend(self.label_args.iter().cloned());
        Workload {
            namespace: self.namespace.clone(),
            pod_name: self.pod.clone(),
            pod_labels,
            container_name: self.container.clone(),
            image: self.image.clone(),
        }
    }

    pub fn describe(&self) -> String {
        let w = self.workload();
        let mut s = format!(
            "{}/{} container {}",
            w.namespace, w.pod_name, w.container_name
        );
        if !w.image.is_empty() {
            s.push_str(&format!(" image {}", w.image));
        }
        if !w.pod_labels.is_empty() {
            let labels: Vec<String> = w
                .pod_labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            s.push_str(&format!(" labels {}", labels.join(",")));
        }
        s
    }
}

/// What it does: exactly one operation, and the process doing it. Also the shape of a case
/// file's `operation:` map.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[command(group(ArgGroup::new("op").required(true).args(
    ["read", "write", "create", "delete", "chmod", "exec", "connect", "syscall"]
)))]
#[serde(deny_unknown_fields)]
pub struct OperationArgs {
    /// A file read.
    #[arg(long, value_name = "PATH")]
    pub read: Option<String>,
    /// A file write.
    #[arg(long, value_name = "PATH")]
    pub write: Option<String>,
    /// A file creation.
    #[arg(long, value_name = "PATH")]
    pub create: Option<String>,
    /// A file deletion.
    #[arg(long, value_name = "PATH")]
    pub delete: Option<String>,
    /// A file mode change.
    #[arg(long, value_name = "PATH")]
    pub chmod: Option<String>,
    /// Running an executable.
    #[arg(long, value_name = "PATH")]
    pub exec: Option<String>,
    /// A network connection to (or, with --ingress, from) IP:PORT.
    #[arg(long, value_name = "IP:PORT")]
    pub connect: Option<String>,
    /// The connection's protocol.
    #[arg(long = "proto", value_name = "tcp|udp", default_value = "tcp", value_parser = ["tcp", "udp"])]
    #[serde(default, alias = "proto")]
    pub protocol: Option<String>,
    /// The connection is incoming: IP is the peer, PORT the local port.
    #[arg(long)]
    #[serde(default)]
    pub ingress: bool,
    /// A syscall (hardening rules).
    #[arg(long, value_name = "NAME")]
    pub syscall: Option<String>,
    /// The executable of the process doing it (file and network rules may name processes).
    #[arg(long, value_name = "EXE", default_value = "")]
    #[serde(default)]
    pub process: Option<String>,
    /// The user the process runs as, by name (file rules may name `users`).
    #[arg(long, value_name = "NAME")]
    #[serde(default)]
    pub user: Option<String>,
    /// The user the process runs as, by id (file rules may name `uids`).
    #[arg(long, value_name = "UID")]
    #[serde(default)]
    pub uid: Option<u32>,
}

/// An operation with owned strings; [`Probe::operation`] borrows it for the policy crate.
#[derive(Debug, Clone)]
pub enum Probe {
    File {
        path: String,
        access: Access,
        process: String,
        user: Option<String>,
        uid: Option<u32>,
    },
    Exec {
        path: String,
    },
    Connect {
        direction: Direction,
        addr: SocketAddr,
        protocol: Protocol,
        process: String,
    },
    Syscall {
        name: String,
    },
}

impl OperationArgs {
    pub fn probe(&self) -> anyhow::Result<Probe> {
        let process = self.process.clone().unwrap_or_default();
        let files = [
            (&self.read, Access::Read),
            (&self.write, Access::Write),
            (&self.create, Access::Create),
            (&self.delete, Access::Delete),
            (&self.chmod, Access::Chmod),
        ];
        let mut found = Vec::new();
        for (path, access) in files {
            if let Some(path) = path {
                found.push(Probe::File {
                    path: path.clone(),
                    access,
                    process: process.clone(),
                    user: self.user.clone(),
                    uid: self.uid,
                });
            }
        }
        if let Some(path) = &self.exec {
            found.push(Probe::Exec { path: path.clone() });
        }
        if let Some(target) = &self.connect {
            let addr: SocketAddr = target
                .parse()
                .with_context(|| format!("`{target}` is not IP:PORT (IPv6: [addr]:port)"))?;
            let protocol = match self.protocol.as_deref().unwrap_or("tcp") {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                "raw" => Protocol::Raw,
                other => bail!("protocol `{other}` is not tcp, udp or raw"),
            };
            let direction = if self.ingress {
                Direction::Ingress
            } else {
                Direction::Egress
            };
            found.push(Probe::Connect {
                direction,
                addr,
                protocol,
                process: process.clone(),
            });
        }
        if let Some(name) = &self.syscall {
            found.push(Probe::Syscall { name: name.clone() });
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => bail!(
                "no operation: give one of read, write, create, delete, chmod, exec, connect, syscall"
            ),
            _ => bail!(
                "more than one operation: give only one of read, write, create, delete, chmod, exec, connect, syscall"
            ),
        }
    }
}

impl Probe {
    /// The user a file access is made as, if the probe names one (by name, id or both; a
    /// name alone has no id, which no `uids` matches).
    pub fn user(&self) -> Option<User<'_>> {
        match self {
            Probe::File { user, uid, .. } if user.is_some() || uid.is_some() => Some(User {
                uid: uid.unwrap_or(u32::MAX),
                name: user.as_deref(),
            }),
            _ => None,
        }
    }

    /// The policy's decision on this probe.
    pub fn decide<'v>(&self, view: &'v WorkloadView) -> Decision<'v> {
        view.decide_as(&self.operation(), self.user().as_ref())
    }

    pub fn operation(&self) -> Operation<'_> {
        match self {
            Probe::File {
                path,
                access,
                process,
                ..
            } => Operation::FileAccess {
                path,
                access: *access,
                process,
            },
            Probe::Exec { path } => Operation::Exec {
                path,
                in_image: true,
            },
            Probe::Connect {
                direction,
                addr,
                protocol,
                process,
            } => Operation::Connect {
                direction: *direction,
                address: addr.ip(),
                port: addr.port(),
                protocol: *protocol,
                process,
            },
            Probe::Syscall { name } => Operation::Syscall { name },
        }
    }

    pub fn describe(&self) -> String {
        let by = |p: &str| {
            if p.is_empty() {
                String::new()
            } else {
                format!(" by {p}")
            }
        };
        match self {
            Probe::File {
                path,
                access,
                process,
                user,
                uid,
            } => {
                let who = match (user, uid) {
                    (Some(n), Some(u)) => format!(" as {n} ({u})"),
                    (Some(n), None) => format!(" as {n}"),
                    (None, Some(u)) => format!(" as uid {u}"),
                    (None, None) => String::new(),
                };
                format!("{} {path}{}{who}", access.as_str(), by(process))
            }
            Probe::Exec { path } => format!("exec {path}"),
            Probe::Connect {
                direction,
                addr,
                protocol,
                process,
            } => {
                let what = match direction {
                    Direction::Egress => "connect to",
                    Direction::Ingress => "connection from",
                };
                format!("{what} {addr}/{}{}", protocol.as_str(), by(process))
            }
            Probe::Syscall { name } => format!("syscall {name}"),
        }
    }
}

/// How explain and test name verdicts: the words of the alert's `action`.
pub fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Block => "Blocked",
        Verdict::Alert => "Alerted",
        Verdict::Allow => "Allowed",
    }
}

/// Accepts the verdict words and the rule actions (`Blocked`, `block`, …), any case.
pub fn parse_verdict(s: &str) -> Option<Verdict> {
    match s.to_ascii_lowercase().as_str() {
        "blocked" | "block" => Some(Verdict::Block),
        "alerted" | "alert" => Some(Verdict::Alert),
        "allowed" | "allow" => Some(Verdict::Allow),
        _ => None,
    }
}
