//! What rampart-nri injects into a new container: the seccomp plan of the policies that scope it,
//! from the snapshot in force.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use rampart_policy::Snapshot;
use rampart_protos::agent::{PlanResponse, READ_OPENS_LABEL, READ_OPENS_SECCOMP, Workload};

use crate::api::{Mechanisms, Planner};

pub struct SnapshotPlanner {
    snapshot: RwLock<(u64, Arc<Snapshot>)>,
    /// Node configuration: every protected container must be protected or not start.
    require_protection: bool,
}

impl SnapshotPlanner {
    pub fn new(require_protection: bool) -> Self {
        Self {
            snapshot: RwLock::new((0, Arc::new(Snapshot::default()))),
            require_protection,
        }
    }

    pub fn set(&self, version: u64, snapshot: Arc<Snapshot>) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = (version, snapshot);
    }
}

/// The policy crate's view of a workload, from the API's.
pub fn policy_workload(w: &Workload) -> rampart_policy::Workload {
    rampart_policy::Workload {
        namespace: w.namespace.clone(),
        pod_name: w.pod_name.clone(),
        pod_labels: w
            .pod_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        container_name: w.container_name.clone(),
        image: w.image.clone(),
    }
}

impl Planner for SnapshotPlanner {
    fn plan(&self, workload: &Workload, node: Mechanisms) -> PlanResponse {
        let (version, snapshot) = {
            let s = self.snapshot.read().unwrap_or_else(|e| e.into_inner());
            (s.0, s.1.clone())
        };
        let view = snapshot.for_workload(&policy_workload(workload));
        let policies: Vec<String> = view.policy_names().map(str::to_owned).collect();
        if policies.is_empty() {
            return PlanResponse {
                snapshot_version: version,
                ..Default::default()
            };
        }
        let mut plan = view.seccomp_plan();
        let on_seccomp = workload
            .pod_labels
            .get(READ_OPENS_LABEL)
            .map(String::as_str)
            == Some(READ_OPENS_SECCOMP);
        let exec_by_guard = node.exec_guard && !on_seccomp && plan.exec_to_file_guard();
        PlanResponse {
            protected: !plan.is_empty(),
            required: self.require_protection,
            notify_syscalls: plan.notify.iter().map(|s| (*s).to_owned()).collect(),
            deny_syscalls: plan.errno.iter().cloned().collect(),
            deny_new_namespaces: plan.deny_new_namespaces,
            deny_raw_sockets: plan.deny_raw_sockets,
            exec_by_guard,
            policies,
            snapshot_version: version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_policy_plans_notified_opens_for_nginx_only() {
        let seed = include_str!("../../config/examples/disallow-etc-access-for-nginx.yaml");
        let snapshot =
            Snapshot::new(rampart_policy::parse_str("seed.yaml", seed).unwrap()).unwrap();
        let planner = SnapshotPlanner::new(false);
        planner.set(7, Arc::new(snapshot));
        let nginx = Workload {
            namespace: "default".into(),
            pod_name: "vulnerable-nginx-pod".into(),
            container_name: "nginx".into(),
            ..Default::default()
        };
        let plan = planner.plan(&nginx, Mechanisms::default());
        assert!(plan.protected);
        assert!(
            plan.notify_syscalls.iter().any(|s| s == "openat"),
            "{plan:?}"
        );
        assert_eq!(plan.policies, ["DisallowEtcAccessForNginx"]);
        assert_eq!(plan.snapshot_version, 7);
        let other = Workload {
            container_name: "redis".into(),
            ..nginx
        };
        let plan = planner.plan(&other, Mechanisms::default());
        assert!(!plan.protected);
        assert!(plan.notify_syscalls.is_empty());
    }

    #[test]
    fn execve_is_left_to_the_file_guard_only_when_the_node_s_agent_decides_execs() {
        let allow_list = "apiVersion: rampart.dev/v1alpha1\nkind: RuntimePolicy\nmetadata: {name: OnlyNginx}\nspec:\n  processes:\n    - {allowOnly: [/usr/sbin/nginx], action: block}\n";
        let snapshot =
            Snapshot::new(rampart_policy::parse_str("p.yaml", allow_list).unwrap()).unwrap();
        let planner = SnapshotPlanner::new(false);
        planner.set(1, Arc::new(snapshot));
        let w = Workload::default();
        let notified = |p: &PlanResponse, s: &str| p.notify_syscalls.iter().any(|n| n == s);
        let plain = planner.plan(&w, Mechanisms::default());
        assert!(!plain.exec_by_guard && notified(&plain, "execve"));
        let guarded = planner.plan(&w, Mechanisms { exec_guard: true });
        assert!(guarded.exec_by_guard, "{guarded:?}");
        assert!(!notified(&guarded, "execve") && notified(&guarded, "execveat"));
        // The pod that asked for the seccomp path keeps execve there too.
        let escape = Workload {
            pod_labels: [(READ_OPENS_LABEL.to_string(), READ_OPENS_SECCOMP.to_string())].into(),
            ..Default::default()
        };
        let kept = planner.plan(&escape, Mechanisms { exec_guard: true });
        assert!(!kept.exec_by_guard && notified(&kept, "execve"), "{kept:?}");
    }
}
