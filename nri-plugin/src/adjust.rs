//! The ContainerAdjustment rampart returns at CreateContainer, built from rampartd's plan. Pure:
//! no I/O, so every shape is unit-tested.

use std::collections::BTreeMap;

use rampart_protos::agent::{PlanResponse, Workload};
use rampart_protos::nri::{Container, ContainerAdjustment, LinuxContainerAdjustment};

use crate::mode::Injection;
use crate::runc_wrapper::SECCOMP_ANNOTATION;
use crate::seccomp_merge::{Additions, READ_OPENS_LABEL, READ_OPENS_SECCOMP};
use crate::seccomp_policy::{self, ExistingSeccomp, PolicyError};
use crate::workload;

/// Every annotation rampart owns starts with this; nobody else may set one.
pub const ANNOTATION_PREFIX: &str = "rampart.dev/";
/// The policies in scope, comma separated.
pub const POLICIES_ANNOTATION: &str = "rampart.dev/policies";
/// The policy snapshot the plan came from.
pub const SNAPSHOT_ANNOTATION: &str = "rampart.dev/snapshot";
/// `<namespace>/<pod>/<container>` as rampart identified the container.
pub const WORKLOAD_ANNOTATION: &str = "rampart.dev/workload";

/// The pod's labels as a JSON object, read by rampart-seccomp from the OCI state.
pub const POD_LABELS_ANNOTATION: &str = "rampart.dev/pod-labels";

/// The plan left execve to the seccomp agent's file guard (`exec_by_guard`): the agent reads it
/// from the OCI state, and rampart-nri waits at StartContainer until the guard watches.
pub use rampart_protos::agent::{EXEC_GUARD_ANNOTATION, EXEC_GUARD_FANOTIFY};

/// NRI's marker for "remove this key" in an adjustment's annotations.
const REMOVE: char = '-';

/// The seccomp additions a plan asks for, addressed to the agent at `listener_path`.
pub fn additions(plan: &PlanResponse, w: &Workload, listener_path: &str) -> Additions {
    Additions {
        notify: plan.notify_syscalls.clone(),
        deny: plan.deny_syscalls.clone(),
        deny_new_namespaces: plan.deny_new_namespaces,
        deny_raw_sockets: plan.deny_raw_sockets,
        listener_path: listener_path.to_owned(),
        listener_metadata: workload::listener_metadata(w),
        reads_in_kernel: w.pod_labels.get(READ_OPENS_LABEL).map(String::as_str)
            != Some(READ_OPENS_SECCOMP),
        exec_by_guard: plan.exec_by_guard,
    }
}

/// The adjustment for a container that a policy scopes.
pub fn protected(
    plan: &PlanResponse,
    w: &Workload,
    c: &Container,
    injection: Injection,
    listener_path: &str,
    existing: &ExistingSeccomp,
) -> Result<ContainerAdjustment, PolicyError> {
    let add = additions(plan, w, listener_path);
    let mut ann = BTreeMap::new();
    ann.insert(POLICIES_ANNOTATION.to_owned(), plan.policies.join(","));
    ann.insert(
        SNAPSHOT_ANNOTATION.to_owned(),
        plan.snapshot_version.to_string(),
    );
    ann.insert(WORKLOAD_ANNOTATION.to_owned(), workload::display(w));
    // CRI does not hand pod labels to the runtime; the seccomp agent selects policies by them.
    ann.insert(
        POD_LABELS_ANNOTATION.to_owned(),
        serde_json::to_string(&w.pod_labels).expect("a string map serialises"),
    );
    if plan.exec_by_guard {
        ann.insert(
            EXEC_GUARD_ANNOTATION.to_owned(),
            EXEC_GUARD_FANOTIFY.to_owned(),
        );
    }
    let mut linux = None;
    let has_seccomp = !add.notify.is_empty() || !add.deny.is_empty();
    match injection {
        Injection::Annotation if has_seccomp => {
            let json = serde_json::to_string(&add).expect("Additions serialise");
            ann.insert(SECCOMP_ANNOTATION.to_owned(), json);
        }
        Injection::Adjustment if has_seccomp => {
            linux = Some(LinuxContainerAdjustment {
                seccomp_policy: Some(seccomp_policy::adjusted(existing, &add)?),
                ..Default::default()
            });
        }
        _ => {}
    }
    strip_foreign(c, &mut ann);
    Ok(ContainerAdjustment {
        annotations: ann,
        linux,
        ..Default::default()
    })
}

/// The adjustment for a container no policy scopes (or that runs unprotected because rampartd
/// failed): nothing, unless it carries rampart annotations it did not get from rampart. Those
/// are removed, so a pod author cannot hand rampart-runc a filter of their own (e.g. one whose
/// listenerPath is a socket they control) or pose as another workload.
pub fn unprotected(c: &Container) -> Option<ContainerAdjustment> {
    let mut ann = BTreeMap::new();
    strip_foreign(c, &mut ann);
    (!ann.is_empty()).then(|| ContainerAdjustment {
        annotations: ann,
        ..Default::default()
    })
}

/// Marks for removal every `rampart.dev/` annotation on the container that `ann` does not set.
fn strip_foreign(c: &Container, ann: &mut BTreeMap<String, String>) {
    let foreign: Vec<String> = c
        .annotations
        .keys()
        .filter(|k| k.starts_with(ANNOTATION_PREFIX) && !ann.contains_key(*k))
        .cloned()
        .collect();
    for k in foreign {
        ann.insert(format!("{REMOVE}{k}"), String::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp_merge::{ACT_ERRNO, ACT_NOTIFY};
    use rampart_protos::nri::{LinuxSeccomp, LinuxSyscall};

    fn plan() -> PlanResponse {
        PlanResponse {
            protected: true,
            required: false,
            notify_syscalls: vec!["openat".into(), "execve".into()],
            deny_syscalls: vec!["io_uring_setup".into()],
            policies: vec!["nginx-files".into(), "nginx-exec".into()],
            snapshot_version: 7,
            ..Default::default()
        }
    }

    fn w() -> Workload {
        Workload {
            namespace: "shop".into(),
            pod_name: "web".into(),
            container_name: "nginx".into(),
            container_id: "c1".into(),
            ..Default::default()
        }
    }

    fn smuggling() -> Container {
        Container {
            id: "c1".into(),
            annotations: [
                (
                    SECCOMP_ANNOTATION.to_string(),
                    r#"{"notify":[],"deny":[],"listenerPath":"/tmp/evil.sock","listenerMetadata":""}"#
                        .to_string(),
                ),
                ("rampart.dev/anything".to_string(), "x".to_string()),
                ("other.io/kept".to_string(), "y".to_string()),
            ]
            .into(),
            ..Default::default()
        }
    }

    const SOCK: &str = "/run/rampart/seccomp.sock";

    #[test]
    fn annotation_mode_carries_additions_and_identity() {
        let adj = protected(
            &plan(),
            &w(),
            &Container::default(),
            Injection::Annotation,
            SOCK,
            &ExistingSeccomp::Unknown("test".into()),
        )
        .unwrap();
        assert_eq!(
            adj.annotations[POLICIES_ANNOTATION],
            "nginx-files,nginx-exec"
        );
        assert_eq!(adj.annotations[SNAPSHOT_ANNOTATION], "7");
        assert_eq!(adj.annotations[WORKLOAD_ANNOTATION], "shop/web/nginx");
        let add: Additions = serde_json::from_str(&adj.annotations[SECCOMP_ANNOTATION]).unwrap();
        assert_eq!(add.notify, ["openat", "execve"]);
        assert_eq!(add.deny, ["io_uring_setup"]);
        assert_eq!(add.listener_path, SOCK);
        assert_eq!(add.listener_metadata, "rampart/v1 shop/web/nginx");
        assert!(adj.linux.is_none(), "annotation mode must not touch linux");
        assert!(!adj.annotations.contains_key(EXEC_GUARD_ANNOTATION));
    }

    #[test]
    fn a_plan_that_leaves_execs_to_the_guard_says_so_and_nobody_else_can() {
        let guarded = PlanResponse {
            exec_by_guard: true,
            ..plan()
        };
        let adj = protected(
            &guarded,
            &w(),
            &Container::default(),
            Injection::Annotation,
            SOCK,
            &ExistingSeccomp::Unknown("test".into()),
        )
        .unwrap();
        assert_eq!(adj.annotations[EXEC_GUARD_ANNOTATION], EXEC_GUARD_FANOTIFY);
        // A pod's own claim is removed, protected or not.
        let claimed = Container {
            annotations: [(EXEC_GUARD_ANNOTATION.to_string(), "fanotify".to_string())].into(),
            ..Default::default()
        };
        let adj = protected(
            &plan(),
            &w(),
            &claimed,
            Injection::Annotation,
            SOCK,
            &ExistingSeccomp::Unknown("test".into()),
        )
        .unwrap();
        assert!(
            adj.annotations
                .contains_key(&format!("-{EXEC_GUARD_ANNOTATION}"))
        );
        let adj = unprotected(&claimed).unwrap();
        assert!(
            adj.annotations
                .contains_key(&format!("-{EXEC_GUARD_ANNOTATION}"))
        );
    }

    #[test]
    fn adjustment_mode_sets_the_seccomp_policy_not_the_annotation() {
        let base = LinuxSeccomp {
            default_action: "SCMP_ACT_ERRNO".into(),
            syscalls: vec![LinuxSyscall {
                names: vec!["openat".into(), "read".into()],
                action: "SCMP_ACT_ALLOW".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let adj = protected(
            &plan(),
            &w(),
            &smuggling(),
            Injection::Adjustment,
            SOCK,
            &ExistingSeccomp::Policy(base),
        )
        .unwrap();
        let p = adj.linux.unwrap().seccomp_policy.unwrap();
        assert_eq!(p.listener_path, SOCK);
        assert_eq!(p.listener_metadata, "rampart/v1 shop/web/nginx");
        assert_eq!(p.default_action, "SCMP_ACT_ERRNO");
        assert!(
            p.syscalls
                .iter()
                .any(|s| s.action == ACT_NOTIFY && s.names == ["openat"])
        );
        assert!(
            p.syscalls
                .iter()
                .any(|s| s.action == "SCMP_ACT_ALLOW" && s.names == ["read"])
        );
        assert!(!p.syscalls.iter().any(|s| s.action == ACT_ERRNO));
        // A smuggled annotation must not reach a rampart-runc that may also be installed.
        assert_eq!(adj.annotations[&format!("-{SECCOMP_ANNOTATION}")], "");
        assert!(!adj.annotations.contains_key(SECCOMP_ANNOTATION));
        assert_eq!(
            adj.annotations[POLICIES_ANNOTATION],
            "nginx-files,nginx-exec"
        );
    }

    #[test]
    fn adjustment_mode_refuses_an_unknown_profile() {
        let err = protected(
            &plan(),
            &w(),
            &Container::default(),
            Injection::Adjustment,
            SOCK,
            &ExistingSeccomp::Unknown("test".into()),
        )
        .unwrap_err();
        assert!(matches!(err, PolicyError::Unknown(_)));
    }

    #[test]
    fn scoped_container_overrides_a_smuggled_filter() {
        let adj = protected(
            &plan(),
            &w(),
            &smuggling(),
            Injection::Annotation,
            SOCK,
            &ExistingSeccomp::Unknown("test".into()),
        )
        .unwrap();
        let add: Additions = serde_json::from_str(&adj.annotations[SECCOMP_ANNOTATION]).unwrap();
        assert_eq!(add.listener_path, SOCK);
        assert_eq!(adj.annotations["-rampart.dev/anything"], "");
        assert!(!adj.annotations.keys().any(|k| k.contains("other.io")));
    }

    #[test]
    fn unscoped_container_is_untouched() {
        let c = Container {
            annotations: [("other.io/kept".to_string(), "y".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(unprotected(&c), None);
    }

    #[test]
    fn unscoped_container_loses_smuggled_rampart_annotations_only() {
        let adj = unprotected(&smuggling()).unwrap();
        let keys: Vec<_> = adj.annotations.keys().cloned().collect();
        assert_eq!(keys, ["-rampart.dev/anything", "-rampart.dev/seccomp"]);
        assert!(adj.annotations.values().all(String::is_empty));
        assert!(adj.linux.is_none());
    }

    #[test]
    fn a_plan_without_syscalls_adds_identity_only() {
        let mut p = plan();
        p.notify_syscalls.clear();
        p.deny_syscalls.clear();
        let adj = protected(
            &p,
            &w(),
            &Container::default(),
            Injection::Adjustment,
            SOCK,
            &ExistingSeccomp::Unknown("test".into()),
        )
        .unwrap();
        assert!(adj.linux.is_none());
        assert!(!adj.annotations.contains_key(SECCOMP_ANNOTATION));
        assert!(adj.annotations.contains_key(POLICIES_ANNOTATION));
    }
}
