//! An agent's event, with the workload the registry knows, becomes the alert record.

use rampart_policy::Alert;
use rampart_protos::event::{EventError, Identity, to_alert};

use crate::api::ReportedEvent;

pub fn alert(reported: &ReportedEvent, node_name: &str) -> Result<Alert, EventError> {
    let who = reported
        .workload
        .as_ref()
        .map(|entry| Identity::from(&entry.workload))
        .unwrap_or_default();
    to_alert(&reported.event, who, node_name)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::SystemTime;

    use rampart_protos::agent::{Action, Event, EventType, Severity, Workload};

    use super::*;
    use crate::registry::ContainerEntry;

    fn seed_event() -> Event {
        Event {
            timestamp_ns: 1_698_402_600_000_000_000,
            event_type: EventType::FileAccess as i32,
            container_id: "abc".into(),
            pid: 42,
            process_path: "/bin/busybox".into(),
            syscall: "openat".into(),
            file_path: "/etc/passwd".into(),
            policy_name: "DisallowEtcAccessForNginx".into(),
            rule_id: "files[0]".into(),
            action: Action::Blocked as i32,
            severity: Severity::High as i32,
            message: "File access to /etc/passwd by nginx container is prohibited by policy."
                .into(),
            enforcer: "seccomp-notify".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_seed_event_becomes_the_seed_alert_with_the_registry_identity() {
        let entry = ContainerEntry {
            workload: Workload {
                namespace: "default".into(),
                pod_name: "vulnerable-nginx-pod".into(),
                container_name: "nginx".into(),
                container_id: "abc".into(),
                ..Default::default()
            },
            cgroup_id: 0,
            cgroup_path: String::new(),
            pid: 0,
            bound_at: SystemTime::now(),
        };
        let a = alert(
            &ReportedEvent {
                event: seed_event(),
                workload: Some(Arc::new(entry)),
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
    fn an_unknown_container_keeps_its_id_and_no_pod() {
        let a = alert(
            &ReportedEvent {
                event: seed_event(),
                workload: None,
            },
            "node-1",
        )
        .unwrap();
        assert_eq!(
            (a.pod_name.as_str(), a.container_id.as_deref()),
            ("", Some("abc"))
        );
    }

    #[test]
    fn unknown_values_are_errors_not_guesses() {
        let ev = Event {
            action: 42,
            ..seed_event()
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
            EventError::UnknownValue {
                field: "action",
                ..
            }
        ));
    }
}
