//! Where reportable decisions go, and the one place that turns a decision into rampartd's event.

use std::time::{SystemTime, UNIX_EPOCH};

use rampart_policy::Verdict;
use rampart_protos::agent;

use crate::outcome::Report;
use crate::workload::Workload;

/// Where reportable decisions go (rampartd's ReportEvents, batched by the caller). Must not block.
pub trait Reporter: Send + Sync + 'static {
    fn report(&self, event: agent::Event);
}

/// The event reporting `r`, about task `pid` of workload `w`.
pub fn event(w: &Workload, pid: u32, r: &Report<'_>) -> agent::Event {
    let action = match r.decision.verdict {
        Verdict::Block => "Blocked",
        _ => "Alerted",
    };
    agent::Event {
        timestamp_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
        event_type: r.subject.event_type.as_str().to_owned(),
        container_id: w.container_id.clone(),
        cgroup_id: 0,
        pid,
        process_path: r.subject.process.clone(),
        args: Vec::new(),
        syscall: r.subject.syscall.to_owned(),
        file_path: r.subject.path.clone(),
        remote: r.subject.remote.clone(),
        policy_name: r.decision.policy_name().unwrap_or_default().to_owned(),
        rule_id: r.decision.rule_id().unwrap_or_default().to_owned(),
        action: action.to_owned(),
        severity: r
            .decision
            .severity()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        message: r.message.clone(),
        enforcer: "seccomp-notify".to_owned(),
        workload: Some(agent::Workload {
            namespace: w.namespace.clone(),
            pod_name: w.pod_name.clone(),
            pod_uid: w.pod_uid.clone(),
            pod_labels: w.pod_labels.clone().into_iter().collect(),
            container_name: w.container_name.clone(),
            container_id: w.container_id.clone(),
            image: w.image.clone(),
            ..Default::default()
        }),
    }
}
