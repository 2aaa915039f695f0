//! The alert on the wire and back. The policy crate's [`Alert`] is the one shape of a reported
//! decision; an [`agent::Event`] is that alert without the workload's identity, which rampartd
//! holds in its registry. Agents call [`to_event`], rampartd [`to_alert`]: the enums travel as
//! enums, so nothing is re-described or parsed back from strings on the way to journald.

use rampart_policy::{Alert, AlertAction, EventType, ProcessRef, Severity, Timestamp};

use crate::agent;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error(
        "event field {field} has the value {value}, which this rampartd does not know; is the \
         agent a newer version than rampartd?"
    )]
    UnknownValue { field: &'static str, value: i32 },
    #[error("event field {field} is not set; the agent that sent it is broken")]
    Unspecified { field: &'static str },
    #[error("event names no policy; the agent that sent it is broken")]
    NoPolicy,
}

/// Who the event's container is, as rampartd's registry knows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity<'a> {
    pub namespace: &'a str,
    pub pod_name: &'a str,
    pub container_name: &'a str,
    pub container_id: &'a str,
}

impl<'a> From<&'a agent::Workload> for Identity<'a> {
    fn from(w: &'a agent::Workload) -> Self {
        Identity {
            namespace: &w.namespace,
            pod_name: &w.pod_name,
            container_name: &w.container_name,
            container_id: &w.container_id,
        }
    }
}

/// The event an agent reports for `alert` (identity fields other than the container id stay
/// behind: rampartd has them).
pub fn to_event(alert: &Alert, cgroup_id: u64) -> agent::Event {
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    agent::Event {
        timestamp_ns: alert.timestamp.unix_nanos(),
        event_type: wire_event_type(alert.event_type) as i32,
        container_id: text(&alert.container_id),
        cgroup_id,
        pid: alert.pid.unwrap_or(0),
        process_path: text(&alert.process_path),
        args: alert.args.clone().unwrap_or_default(),
        syscall: text(&alert.syscall),
        file_path: text(&alert.file_path),
        remote_address: text(&alert.remote_address),
        remote_port: alert.remote_port.map_or(0, u32::from),
        protocol: text(&alert.protocol),
        policy_name: alert.policy_name.clone(),
        rule_id: text(&alert.rule_id),
        action: wire_action(alert.action) as i32,
        severity: wire_severity(alert.severity) as i32,
        message: alert.message.clone(),
        enforcer: text(&alert.enforcer),
        ancestors: alert
            .ancestors
            .iter()
            .map(|a| agent::ProcessRef {
                pid: a.pid,
                executable: a.executable.clone(),
                args: a.args.clone(),
            })
            .collect(),
    }
}

/// The alert for a reported event, with the identity rampartd's registry gave it (empty when the
/// registry does not know the container) and the node's name.
pub fn to_alert(e: &agent::Event, who: Identity<'_>, node_name: &str) -> Result<Alert, EventError> {
    if e.policy_name.is_empty() {
        return Err(EventError::NoPolicy);
    }
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let timestamp = Timestamp::from_unix(
        (e.timestamp_ns / 1_000_000_000) as i64,
        (e.timestamp_ns % 1_000_000_000) as u32,
    )
    .filter(|_| e.timestamp_ns > 0)
    .unwrap_or_else(Timestamp::now);
    Ok(Alert {
        timestamp,
        event_type: event_type(e.event_type)?,
        policy_name: e.policy_name.clone(),
        pod_name: who.pod_name.to_owned(),
        container_name: who.container_name.to_owned(),
        file_path: some(&e.file_path),
        action: action(e.action)?,
        severity: severity(e.severity)?,
        message: e.message.clone(),
        namespace: some(who.namespace),
        container_id: some(&e.container_id).or_else(|| some(who.container_id)),
        node_name: some(node_name),
        pid: (e.pid != 0).then_some(e.pid),
        process_path: some(&e.process_path),
        args: (!e.args.is_empty()).then(|| e.args.clone()),
        syscall: some(&e.syscall),
        remote_address: some(&e.remote_address),
        remote_port: u16::try_from(e.remote_port).ok().filter(|p| *p != 0),
        protocol: some(&e.protocol),
        enforcer: some(&e.enforcer),
        rule_id: some(&e.rule_id),
        ancestors: e
            .ancestors
            .iter()
            .map(|a| ProcessRef {
                pid: a.pid,
                executable: a.executable.clone(),
                args: a.args.clone(),
            })
            .collect(),
    })
}

fn known<T>(field: &'static str, value: i32, parsed: Option<T>) -> Result<T, EventError> {
    match (value, parsed) {
        (_, Some(v)) => Ok(v),
        (0, None) => Err(EventError::Unspecified { field }),
        (value, None) => Err(EventError::UnknownValue { field, value }),
    }
}

fn wire_event_type(t: EventType) -> agent::EventType {
    use agent::EventType as W;
    match t {
        EventType::FileAccess => W::FileAccess,
        EventType::ProcessExecution => W::ProcessExecution,
        EventType::NetworkConnection => W::NetworkConnection,
        EventType::FileIntegrity => W::FileIntegrity,
        EventType::Drift => W::Drift,
        EventType::Anomaly => W::Anomaly,
        EventType::Syscall => W::Syscall,
    }
}

fn event_type(v: i32) -> Result<EventType, EventError> {
    use agent::EventType as W;
    let t = match agent::EventType::try_from(v) {
        Ok(W::FileAccess) => Some(EventType::FileAccess),
        Ok(W::ProcessExecution) => Some(EventType::ProcessExecution),
        Ok(W::NetworkConnection) => Some(EventType::NetworkConnection),
        Ok(W::FileIntegrity) => Some(EventType::FileIntegrity),
        Ok(W::Drift) => Some(EventType::Drift),
        Ok(W::Anomaly) => Some(EventType::Anomaly),
        Ok(W::Syscall) => Some(EventType::Syscall),
        Ok(W::Unspecified) | Err(_) => None,
    };
    known("eventType", v, t)
}

fn wire_action(a: AlertAction) -> agent::Action {
    use agent::Action as W;
    match a {
        AlertAction::Blocked => W::Blocked,
        AlertAction::Alerted => W::Alerted,
        AlertAction::ProcessKilled => W::ProcessKilled,
        AlertAction::PodKilled => W::PodKilled,
    }
}

fn action(v: i32) -> Result<AlertAction, EventError> {
    use agent::Action as W;
    let a = match agent::Action::try_from(v) {
        Ok(W::Blocked) => Some(AlertAction::Blocked),
        Ok(W::Alerted) => Some(AlertAction::Alerted),
        Ok(W::ProcessKilled) => Some(AlertAction::ProcessKilled),
        Ok(W::PodKilled) => Some(AlertAction::PodKilled),
        Ok(W::Unspecified) | Err(_) => None,
    };
    known("action", v, a)
}

fn wire_severity(s: Severity) -> agent::Severity {
    use agent::Severity as W;
    match s {
        Severity::Low => W::Low,
        Severity::Medium => W::Medium,
        Severity::High => W::High,
        Severity::Critical => W::Critical,
    }
}

fn severity(v: i32) -> Result<Severity, EventError> {
    use agent::Severity as W;
    let s = match agent::Severity::try_from(v) {
        Ok(W::Low) => Some(Severity::Low),
        Ok(W::Medium) => Some(Severity::Medium),
        Ok(W::High) => Some(Severity::High),
        Ok(W::Critical) => Some(Severity::Critical),
        Ok(W::Unspecified) | Err(_) => None,
    };
    known("severity", v, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Alert {
        Alert {
            timestamp: Timestamp::parse("2023-10-27T10:30:00Z").unwrap(),
            event_type: EventType::FileAccess,
            policy_name: "DisallowEtcAccessForNginx".into(),
            pod_name: "vulnerable-nginx-pod".into(),
            container_name: "nginx".into(),
            file_path: Some("/etc/passwd".into()),
            action: AlertAction::Blocked,
            severity: Severity::High,
            message: "File access to /etc/passwd by nginx container is prohibited by policy."
                .into(),
            namespace: Some("default".into()),
            container_id: Some("abc".into()),
            node_name: None,
            pid: Some(42),
            process_path: Some("/bin/busybox".into()),
            args: None,
            syscall: Some("openat".into()),
            remote_address: None,
            remote_port: None,
            protocol: None,
            enforcer: Some("seccomp-notify".into()),
            rule_id: Some("files[0]".into()),
            ancestors: vec![ProcessRef {
                pid: 41,
                executable: "/bin/busybox".into(),
                args: vec!["sh".into(), "-c".into(), "cat /etc/passwd".into()],
            }],
        }
    }

    #[test]
    fn an_alert_survives_the_wire_with_the_registry_identity() {
        let a = seed();
        let e = to_event(&a, 7);
        let w = agent::Workload {
            namespace: "default".into(),
            pod_name: "vulnerable-nginx-pod".into(),
            container_name: "nginx".into(),
            container_id: "abc".into(),
            ..Default::default()
        };
        let back = to_alert(&e, Identity::from(&w), "node-1").unwrap();
        assert_eq!(
            back,
            Alert {
                node_name: Some("node-1".into()),
                ..a
            }
        );
        assert!(back.to_json().starts_with(
            r#"{"timestamp":"2023-10-27T10:30:00Z","eventType":"FileAccess","policyName":"DisallowEtcAccessForNginx","podName":"vulnerable-nginx-pod","containerName":"nginx","filePath":"/etc/passwd","action":"Blocked","severity":"High","message":"File access to /etc/passwd by nginx container is prohibited by policy.""#
        ));
    }

    #[test]
    fn every_enum_value_maps_both_ways() {
        for t in EventType::ALL {
            assert_eq!(event_type(wire_event_type(t) as i32), Ok(t));
        }
        for a in AlertAction::ALL {
            assert_eq!(action(wire_action(a) as i32), Ok(a));
        }
        for s in Severity::ALL {
            assert_eq!(severity(wire_severity(s) as i32), Ok(s));
        }
    }

    #[test]
    fn unknown_and_unset_values_are_errors_not_guesses() {
        let mut e = to_event(&seed(), 0);
        e.action = 99;
        assert_eq!(
            to_alert(&e, Identity::default(), "").unwrap_err(),
            EventError::UnknownValue {
                field: "action",
                value: 99
            }
        );
        e.action = 0;
        assert_eq!(
            to_alert(&e, Identity::default(), "").unwrap_err(),
            EventError::Unspecified { field: "action" }
        );
        e.policy_name.clear();
        assert_eq!(
            to_alert(&e, Identity::default(), "").unwrap_err(),
            EventError::NoPolicy
        );
    }

    #[test]
    fn network_fields_travel_apart() {
        let mut a = seed();
        a.event_type = EventType::NetworkConnection;
        a.file_path = None;
        a.remote_address = Some("2001:db8::1".into());
        a.remote_port = Some(443);
        a.protocol = Some("tcp".into());
        let back = to_alert(&to_event(&a, 0), Identity::default(), "").unwrap();
        assert_eq!(
            (
                back.remote_address.as_deref(),
                back.remote_port,
                back.protocol.as_deref()
            ),
            (Some("2001:db8::1"), Some(443), Some("tcp"))
        );
    }
}
