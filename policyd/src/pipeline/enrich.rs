//! An agent's event, with the workload the registry knows, becomes the alert record.

use std::net::SocketAddr;

use rampart_policy::{Alert, AlertAction, EventType, Severity, Timestamp};
use rampart_protos::agent::{Event, Workload};
use serde::de::DeserializeOwned;

use crate::api::ReportedEvent;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnrichError {
    #[error(
        "event field {field} has an unknown value {value:?}; is the agent the same version as rampartd?"
    )]
    UnknownValue { field: &'static str, value: String },
    #[error("event names no policy")]
    NoPolicy,
}

fn parse<T: DeserializeOwned>(field: &'static str, value: &str) -> Result<T, EnrichError> {
    serde_json::from_value(serde_json::Value::String(value.to_owned())).map_err(|_| {
        EnrichError::UnknownValue {
            field,
            value: value.to_owned(),
        }
    })
}

fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

pub fn alert(reported: &ReportedEvent, node_name: &str) -> Result<Alert, EnrichError> {
    let e: &Event = &reported.event;
    if e.policy_name.is_empty() {
        return Err(EnrichError::NoPolicy);
    }
    // The registry (bound by rampart-nri) is the authority; the agent's own view covers a
    // container the registry has not heard of yet.
    let fallback = Workload::default();
    let w = reported
        .workload
        .as_ref()
        .map(|entry| &entry.workload)
        .or(e.workload.as_ref())
        .unwrap_or(&fallback);
    let timestamp = Timestamp::from_unix(
        (e.timestamp_ns / 1_000_000_000) as i64,
        (e.timestamp_ns % 1_000_000_000) as u32,
    )
    .filter(|_| e.timestamp_ns > 0)
    .unwrap_or_else(Timestamp::now);
    let remote: Option<SocketAddr> = e.remote.parse().ok();
    Ok(Alert {
        timestamp,
        event_type: parse::<EventType>("eventType", &e.event_type)?,
        policy_name: e.policy_name.clone(),
        pod_name: w.pod_name.clone(),
        container_name: w.container_name.clone(),
        file_path: some(&e.file_path),
        action: parse::<AlertAction>("action", &e.action)?,
        severity: parse::<Severity>("severity", &e.severity)?,
        message: e.message.clone(),
        namespace: some(&w.namespace),
        container_id: some(&e.container_id).or_else(|| some(&w.container_id)),
        node_name: some(node_name),
        pid: (e.pid != 0).then_some(e.pid),
        process_path: some(&e.process_path),
        args: (!e.args.is_empty()).then(|| e.args.clone()),
        syscall: some(&e.syscall),
        remote_address: remote.map(|r| r.ip().to_string()),
        remote_port: remote.map(|r| r.port()),
        protocol: None,
        enforcer: some(&e.enforcer),
        rule_id: some(&e.rule_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_event_becomes_the_seed_alert() {
        let ev = Event {
            timestamp_ns: 1_698_402_600_000_000_000,
            event_type: "FileAccess".into(),
            container_id: "abc".into(),
            pid: 42,
            process_path: "/bin/busybox".into(),
            syscall: "openat".into(),
            file_path: "/etc/passwd".into(),
            policy_name: "DisallowEtcAccessForNginx".into(),
            rule_id: "files[0]".into(),
            action: "Blocked".into(),
            severity: "High".into(),
            message: "File access to /etc/passwd by nginx container is prohibited by policy."
                .into(),
            enforcer: "seccomp-notify".into(),
            workload: Some(Workload {
                namespace: "default".into(),
                pod_name: "vulnerable-nginx-pod".into(),
                container_name: "nginx".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let a = alert(
            &ReportedEvent {
                event: ev,
                workload: None,
            },
            "node-1",
        )
        .unwrap();
        let json = a.to_json();
        assert!(json.starts_with(
            r#"{"timestamp":"2023-10-27T10:30:00Z","eventType":"FileAccess","policyName":"DisallowEtcAccessForNginx","podName":"vulnerable-nginx-pod","containerName":"nginx","filePath":"/etc/passwd","action":"Blocked","severity":"High","message":"File access to /etc/passwd by nginx container is prohibited by policy.""#
        ), "{json}");
        assert!(json.contains(r#""namespace":"default""#), "{json}");
        assert!(json.contains(r#""nodeName":"node-1""#), "{json}");
    }

    #[test]
    fn unknown_values_are_errors_not_guesses() {
        let ev = Event {
            event_type: "FileAccess".into(),
            policy_name: "P".into(),
            action: "Vaporised".into(),
            severity: "High".into(),
            ..Default::default()
        };
        let err = alert(
            &ReportedEvent {
                event: ev,
                workload: None,
            },
            "",
        )
        .unwrap_err();
        assert!(matches!(
            err,
            EnrichError::UnknownValue {
                field: "action",
                ..
            }
        ));
    }
}
