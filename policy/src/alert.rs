//! The alert record: one JSON object per reported decision, with the field names and casing that
//! docs/policy.md fixes, and the same fields as native journald fields. [`Alert::from_decision`] is
//! the one mapping from a decision to what is reported (event type, action, severity, message):
//! agents build their events with it, and rampartd only adds who the workload is.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::compile::{RuleKind, Verdict};
use crate::decide::{Decision, Operation};
use crate::model::{Response, Severity};
use crate::selector::Workload;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    FileAccess,
    ProcessExecution,
    NetworkConnection,
    FileIntegrity,
    Drift,
    Anomaly,
    Syscall,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::FileAccess,
        EventType::ProcessExecution,
        EventType::NetworkConnection,
        EventType::FileIntegrity,
        EventType::Drift,
        EventType::Anomaly,
        EventType::Syscall,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::FileAccess => "FileAccess",
            EventType::ProcessExecution => "ProcessExecution",
            EventType::NetworkConnection => "NetworkConnection",
            EventType::FileIntegrity => "FileIntegrity",
            EventType::Drift => "Drift",
            EventType::Anomaly => "Anomaly",
            EventType::Syscall => "Syscall",
        }
    }
}

/// What was done about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlertAction {
    Blocked,
    /// Reported only (an `alert` rule, or a `block` rule in audit mode).
    Alerted,
    ProcessKilled,
    PodKilled,
}

impl AlertAction {
    pub const ALL: [AlertAction; 4] = [
        AlertAction::Blocked,
        AlertAction::Alerted,
        AlertAction::ProcessKilled,
        AlertAction::PodKilled,
    ];

    /// The action named as records name it (`Blocked`, …).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The operation did not happen (blocked, and maybe more).
    pub fn stopped(self) -> bool {
        self != AlertAction::Alerted
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlertAction::Blocked => "Blocked",
            AlertAction::Alerted => "Alerted",
            AlertAction::ProcessKilled => "ProcessKilled",
            AlertAction::PodKilled => "PodKilled",
        }
    }
}

/// An RFC 3339 UTC time (`2023-10-27T10:30:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(OffsetDateTime::now_utc())
    }

    /// Seconds since the Unix epoch; `None` if out of range.
    pub fn from_unix(secs: i64, nanos: u32) -> Option<Self> {
        let t = OffsetDateTime::from_unix_timestamp(secs).ok()?;
        t.replace_nanosecond(nanos).ok().map(Timestamp)
    }

    /// Parses RFC 3339 with any offset and converts to UTC.
    pub fn parse(s: &str) -> Option<Self> {
        OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .map(|t| Timestamp(t.to_offset(time::UtcOffset::UTC)))
    }

    /// Nanoseconds since the Unix epoch (0 before it).
    pub fn unix_nanos(&self) -> u64 {
        u64::try_from(self.0.unix_timestamp_nanos()).unwrap_or(0)
    }

    pub fn to_rfc3339(&self) -> String {
        // The only failure is a year outside 0..=9999, which `now` and `parse` cannot give.
        self.0.format(&Rfc3339).unwrap_or_default()
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not an RFC 3339 time")))
    }
}

/// One alert. The first nine fields are always present, in this order; the rest are left out
/// of the JSON when unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub timestamp: Timestamp,
    pub event_type: EventType,
    pub policy_name: String,
    pub pod_name: String,
    pub container_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    pub action: AlertAction,
    pub severity: Severity,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Which component acted: `seccomp`, `fanotify`, `bpf-lsm`, `cgroup-bpf`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The processes that started the one that acted, its parent first (bounded; the kernel
    /// auditor's process table, where it runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<ProcessRef>,
}

/// A process an alert names beside the one that acted (an ancestor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessRef {
    pub pid: u32,
    pub executable: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

impl Alert {
    /// The alert for a decision, or `None` if the decision is an allow (nothing to report).
    /// Fills what the decision, workload and operation know; the caller adds pid, the process
    /// (for execs: the one that asked), syscall, container id, node name, args and enforcer.
    ///
    /// A kill-process response is `Blocked` here: the process is killed only if the enforcer
    /// manages to, and it says so with [`Alert::process_killed`]. A kill-pod response is
    /// `PodKilled`: rampartd stops the pod when it records the alert.
    pub fn from_decision(
        d: &Decision<'_>,
        w: &Workload,
        op: &Operation<'_>,
        timestamp: Timestamp,
    ) -> Option<Alert> {
        let action = match (d.verdict, d.response()) {
            (Verdict::Allow, _) => return None,
            (Verdict::Alert, _) => AlertAction::Alerted,
            (Verdict::Block, Some(Response::KillPod)) => AlertAction::PodKilled,
            (Verdict::Block, _) => AlertAction::Blocked,
        };
        let mut a = Alert {
            timestamp,
            event_type: EventType::Anomaly,
            policy_name: d.policy_name()?.to_owned(),
            pod_name: w.pod_name.clone(),
            container_name: w.container_name.clone(),
            file_path: None,
            action,
            severity: d.severity()?,
            message: d.message(w, op),
            namespace: (!w.namespace.is_empty()).then(|| w.namespace.clone()),
            container_id: None,
            node_name: None,
            pid: None,
            process_path: None,
            args: None,
            syscall: None,
            remote_address: None,
            remote_port: None,
            protocol: None,
            enforcer: None,
            rule_id: d.rule_id().map(str::to_owned),
            ancestors: Vec::new(),
        };
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        match *op {
            Operation::FileAccess { path, process, .. } => {
                a.event_type = if d.rule_kind() == Some(RuleKind::Integrity) {
                    EventType::FileIntegrity
                } else {
                    EventType::FileAccess
                };
                a.file_path = some(path);
                a.process_path = some(process);
            }
            Operation::IntegrityWrite { path, process } => {
                a.event_type = EventType::FileIntegrity;
                a.file_path = some(path);
                a.process_path = some(process);
            }
            // The program that was to run; the process that asked is the caller's to add.
            Operation::Exec { path, .. } => {
                a.event_type = EventType::ProcessExecution;
                a.file_path = some(path);
            }
            Operation::Drift { path } => {
                a.event_type = EventType::Drift;
                a.file_path = some(path);
            }
            Operation::Connect {
                address,
                port,
                protocol,
                process,
                ..
            } => {
                a.event_type = EventType::NetworkConnection;
                a.remote_address = Some(address.to_string());
                a.remote_port = Some(port);
                a.protocol = Some(protocol.as_str().to_owned());
                a.process_path = some(process);
            }
            Operation::Syscall { name } => {
                a.event_type = EventType::Syscall;
                a.syscall = some(name);
            }
        }
        Some(a)
    }

    /// The enforcer killed the process a kill-process response named.
    pub fn process_killed(&mut self) {
        if self.action == AlertAction::Blocked {
            self.action = AlertAction::ProcessKilled;
        }
    }

    /// The JSON record, one line.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and numbers into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Syslog priority: Critical 2 (crit), High 3 (err), Medium 4 (warning), Low 5 (notice).
    pub fn priority(&self) -> u8 {
        match self.severity {
            Severity::Critical => 2,
            Severity::High => 3,
            Severity::Medium => 4,
            Severity::Low => 5,
        }
    }

    /// journald fields: MESSAGE carries the JSON, PRIORITY the severity, and every alert field
    /// is also a `RAMPART_*` field so `journalctl RAMPART_ACTION=Blocked` finds it.
    pub fn journal_fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("MESSAGE", self.to_json()),
            ("PRIORITY", self.priority().to_string()),
            ("SYSLOG_IDENTIFIER", "rampart".to_owned()),
            ("RAMPART_TIMESTAMP", self.timestamp.to_rfc3339()),
            ("RAMPART_EVENT_TYPE", self.event_type.as_str().to_owned()),
            ("RAMPART_POLICY", self.policy_name.clone()),
            ("RAMPART_POD", self.pod_name.clone()),
            ("RAMPART_CONTAINER", self.container_name.clone()),
            ("RAMPART_ACTION", self.action.as_str().to_owned()),
            ("RAMPART_SEVERITY", self.severity.as_str().to_owned()),
        ];
        let opt = [
            ("RAMPART_FILE_PATH", self.file_path.clone()),
            ("RAMPART_NAMESPACE", self.namespace.clone()),
            ("RAMPART_CONTAINER_ID", self.container_id.clone()),
            ("RAMPART_NODE", self.node_name.clone()),
            ("RAMPART_PID", self.pid.map(|p| p.to_string())),
            ("RAMPART_PROCESS_PATH", self.process_path.clone()),
            // JSON keeps argument boundaries that a space-joined string would lose.
            (
                "RAMPART_ARGS",
                self.args
                    .as_ref()
                    .map(|a| serde_json::to_string(a).unwrap_or_default()),
            ),
            ("RAMPART_SYSCALL", self.syscall.clone()),
            ("RAMPART_REMOTE_ADDRESS", self.remote_address.clone()),
            (
                "RAMPART_REMOTE_PORT",
                self.remote_port.map(|p| p.to_string()),
            ),
            ("RAMPART_PROTOCOL", self.protocol.clone()),
            ("RAMPART_ENFORCER", self.enforcer.clone()),
            ("RAMPART_RULE_ID", self.rule_id.clone()),
            // The parent alone, to match on (`journalctl RAMPART_PARENT_PATH=/bin/bash`); the
            // whole chain is in MESSAGE.
            (
                "RAMPART_PARENT_PATH",
                self.ancestors.first().map(|a| a.executable.clone()),
            ),
        ];
        f.extend(opt.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_value_is_named_as_records_name_it() {
        for a in AlertAction::ALL {
            assert_eq!(AlertAction::from_name(a.as_str()), Some(a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        assert_eq!(AlertAction::from_name("Vaporised"), None);
        for t in EventType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for s in Severity::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
