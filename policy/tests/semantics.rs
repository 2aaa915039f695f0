//! Selectors, rule kinds, modes and how overlapping policies combine.

use std::collections::BTreeMap;

use rampart_policy::*;

fn snapshot(yaml: &str) -> Snapshot {
    let p = parse_str("t.yaml", yaml).unwrap_or_else(|e| panic!("{e}"));
    Snapshot::new(p).unwrap_or_else(|e| panic!("{e}"))
}

fn policy(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: rampart.dev/v1alpha1\nkind: RuntimePolicy\nmetadata: {{name: {name}}}\nspec:\n{spec}"
    )
}

fn wl(ns: &str, pod: &str, container: &str, image: &str, labels: &[(&str, &str)]) -> Workload {
    Workload {
        namespace: ns.into(),
        pod_name: pod.into(),
        container_name: container.into(),
        image: image.into(),
        pod_labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn read<'a>(path: &'a str, process: &'a str) -> Operation<'a> {
    Operation::FileAccess {
        path,
        access: Access::Read,
        process,
    }
}

const BLOCK_SHADOW: &str = "  files:\n    - {paths: [/etc/shadow], action: block}\n";

#[test]
fn selector_fields_and_globs() {
    let s = snapshot(&policy(
        "Sel",
        &format!(
            "  selector:\n    namespaces: [prod, \"team-*\"]\n    podNames: [\"web-*\"]\n    containerNames: [app]\n    images: [\"registry.local/*:v1.*\"]\n{BLOCK_SHADOW}"
        ),
    ));
    let yes = wl("team-a", "web-1", "app", "registry.local/web/app:v1.2", &[]);
    assert_eq!(
        s.for_workload(&yes).policy_names().collect::<Vec<_>>(),
        ["Sel"]
    );
    for no in [
        wl("dev", "web-1", "app", "registry.local/web/app:v1.2", &[]),
        wl("prod", "db-1", "app", "registry.local/web/app:v1.2", &[]),
        wl(
            "prod",
            "web-1",
            "sidecar",
            "registry.local/web/app:v1.2",
            &[],
        ),
        wl("prod", "web-1", "app", "registry.local/web/app:v2.0", &[]),
    ] {
        assert!(s.for_workload(&no).is_empty(), "{no:?}");
    }
}

#[test]
fn label_selector_semantics() {
    let s = snapshot(&policy(
        "Labels",
        &format!(
            "  selector:\n    podLabels:\n      matchLabels: {{app: web}}\n      matchExpressions:\n        - {{key: tier, operator: In, values: [front, edge]}}\n        - {{key: env, operator: NotIn, values: [dev]}}\n        - {{key: team, operator: Exists}}\n        - {{key: legacy, operator: DoesNotExist}}\n{BLOCK_SHADOW}"
        ),
    ));
    let m = |labels: &[(&str, &str)]| !s.for_workload(&wl("ns", "p", "c", "i", labels)).is_empty();
    let base = [("app", "web"), ("tier", "edge"), ("team", "x")];
    assert!(m(&base));
    // NotIn matches a pod without the label, as in Kubernetes.
    assert!(m(&[
        ("app", "web"),
        ("tier", "front"),
        ("team", "x"),
        ("env", "prod")
    ]));
    assert!(!m(&[
        ("app", "web"),
        ("tier", "front"),
        ("team", "x"),
        ("env", "dev")
    ]));
    assert!(!m(&[("app", "db"), ("tier", "edge"), ("team", "x")]));
    assert!(!m(&[("app", "web"), ("tier", "back"), ("team", "x")]));
    assert!(!m(&[("app", "web"), ("tier", "edge")]));
    assert!(!m(&[
        ("app", "web"),
        ("tier", "edge"),
        ("team", "x"),
        ("legacy", "1")
    ]));
}

#[test]
fn no_selector_means_every_workload() {
    let s = snapshot(&policy("All", BLOCK_SHADOW));
    assert!(!s.for_workload(&Workload::default()).is_empty());
}

#[test]
fn block_beats_alert_beats_allow_across_policies() {
    let s = snapshot(&format!(
        "{}{}{}",
        policy(
            "A-allow",
            "  files:\n    - {paths: [\"/data/**\"], action: allow}\n"
        ),
        policy(
            "B-alert",
            "  files:\n    - {paths: [\"/data/secret/**\"], action: alert}\n"
        ),
        policy(
            "C-block",
            "  files:\n    - {paths: [\"/data/**\"], action: block}\n"
        ),
    ));
    let v = s.for_workload(&Workload::default());
    // An allow in one policy never carves out of another policy's block.
    let d = v.decide(&read("/data/secret/key", "/bin/app"));
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(d.policy_name(), Some("C-block"));
}

#[test]
fn alert_beats_allow_across_policies() {
    let s = snapshot(&format!(
        "{}{}",
        policy(
            "A-allow",
            "  files:\n    - {paths: [\"/data/**\"], action: allow}\n"
        ),
        policy(
            "B-alert",
            "  files:\n    - {paths: [\"/data/**\"], action: alert}\n"
        ),
    ));
    let v = s.for_workload(&Workload::default());
    let d = v.decide(&read("/data/x", "/bin/app"));
    assert_eq!(d.verdict, Verdict::Alert);
    assert_eq!(d.policy_name(), Some("B-alert"));
}

#[test]
fn most_specific_names_the_decision() {
    let s = snapshot(&format!(
        "{}{}",
        policy(
            "Broad",
            "  severity: Critical\n  files:\n    - {id: etc, paths: [\"/etc/**\"], action: block}\n"
        ),
        policy(
            "Narrow",
            "  severity: Low\n  files:\n    - {id: ssl, paths: [\"/etc/ssl/**\"], action: block}\n"
        ),
    ));
    let v = s.for_workload(&Workload::default());
    let d = v.decide(&read("/etc/ssl/private/key.pem", "/bin/cat"));
    assert_eq!(
        (d.policy_name(), d.rule_id()),
        (Some("Narrow"), Some("ssl"))
    );
    let d = v.decide(&read("/etc/hosts", "/bin/cat"));
    assert_eq!((d.policy_name(), d.rule_id()), (Some("Broad"), Some("etc")));
}

#[test]
fn same_specificity_prefers_severity_then_name() {
    let s = snapshot(&format!(
        "{}{}{}",
        policy(
            "Z",
            "  severity: High\n  files:\n    - {paths: [\"/x/**\"], action: block}\n"
        ),
        policy(
            "B",
            "  severity: Low\n  files:\n    - {paths: [\"/x/**\"], action: block}\n"
        ),
        policy(
            "A",
            "  severity: Low\n  files:\n    - {paths: [\"/x/**\"], action: block}\n"
        ),
    ));
    let v = s.for_workload(&Workload::default());
    assert_eq!(v.decide(&read("/x/y", "")).policy_name(), Some("Z"));
    let s = snapshot(&format!(
        "{}{}",
        policy("B", "  files:\n    - {paths: [\"/x/**\"], action: block}\n"),
        policy("A", "  files:\n    - {paths: [\"/x/**\"], action: block}\n"),
    ));
    let v = s.for_workload(&Workload::default());
    assert_eq!(v.decide(&read("/x/y", "")).policy_name(), Some("A"));
}

#[test]
fn audit_mode_turns_block_into_alert_and_enforce_still_wins() {
    let s = snapshot(&policy(
        "Audit",
        "  mode: audit\n  files:\n    - {paths: [\"/etc/**\"], action: block}\n",
    ));
    let v = s.for_workload(&Workload::default());
    let d = v.decide(&read("/etc/passwd", "/bin/cat"));
    assert_eq!(d.verdict, Verdict::Alert);
    assert_eq!(d.response(), None);
    let w = Workload::default();
    let op = read("/etc/passwd", "/bin/cat");
    let a = Alert::from_decision(&d, &w, &op, Timestamp::now()).unwrap();
    assert_eq!(a.action, AlertAction::Alerted);
    assert_eq!(
        a.message,
        "File access to /etc/passwd by - container is reported by policy Audit."
    );

    let s = snapshot(&format!(
        "{}{}",
        policy(
            "Audit",
            "  mode: audit\n  files:\n    - {paths: [\"/etc/**\"], action: block}\n"
        ),
        policy(
            "Enforce",
            "  files:\n    - {paths: [\"/etc/**\"], action: block}\n"
        ),
    ));
    let v = s.for_workload(&Workload::default());
    let d = v.decide(&read("/etc/passwd", "/bin/cat"));
    assert_eq!(
        (d.verdict, d.policy_name()),
        (Verdict::Block, Some("Enforce"))
    );
}

#[test]
fn learn_mode_decides_nothing_but_flags_learning() {
    let s = snapshot(&policy(
        "Learn",
        "  mode: learn\n  files:\n    - {paths: [\"/etc/**\"], action: block}\n",
    ));
    let v = s.for_workload(&Workload::default());
    assert!(v.learning());
    assert!(v.is_empty());
    assert!(v.decide(&read("/etc/passwd", "/bin/cat")).is_allow());
}

#[test]
fn access_kinds_and_integrity() {
    let s = snapshot(&policy(
        "Fim",
        "  severity: Critical\n  files:\n    - {paths: [\"/var/log/**\"], access: [delete, chmod], action: block}\n  integrity:\n    - paths: [\"/usr/bin/**\"]\n      exceptProcesses: [/usr/bin/dpkg]\n      action: alert\n",
    ));
    let v = s.for_workload(&Workload::default());
    let op = |path, access, process| Operation::FileAccess {
        path,
        access,
        process,
    };
    assert!(
        v.decide(&op("/var/log/app.log", Access::Write, "/app"))
            .is_allow()
    );
    assert_eq!(
        v.decide(&op("/var/log/app.log", Access::Delete, "/app"))
            .verdict,
        Verdict::Block
    );
    assert_eq!(
        v.decide(&op("/var/log/app.log", Access::Chmod, "/app"))
            .verdict,
        Verdict::Block
    );
    // Reading a watched file is fine; writing it is reported as integrity.
    assert!(
        v.decide(&op("/usr/bin/ls", Access::Read, "/app"))
            .is_allow()
    );
    let w = Workload::default();
    let o = op("/usr/bin/ls", Access::Write, "/app");
    let d = v.decide(&o);
    assert_eq!(
        (d.verdict, d.rule_kind()),
        (Verdict::Alert, Some(RuleKind::Integrity))
    );
    let a = Alert::from_decision(&d, &w, &o, Timestamp::now()).unwrap();
    assert_eq!(a.event_type, EventType::FileIntegrity);
    assert!(
        v.decide(&op("/usr/bin/ls", Access::Write, "/usr/bin/dpkg"))
            .is_allow()
    );
    let iw = Operation::IntegrityWrite {
        path: "/usr/bin/../bin/ls",
        process: "",
    };
    assert_eq!(v.decide(&iw).verdict, Verdict::Alert);
}

#[test]
fn process_allow_list_and_deny_list() {
    let s = snapshot(&format!(
        "{}{}",
        policy(
            "OnlyNginx",
            "  response: kill-process\n  processes:\n    - allowOnly: [/usr/sbin/nginx, /docker-entrypoint.sh, \"/docker-entrypoint.d/*\"]\n      action: block\n",
        ),
        policy(
            "NoShells",
            "  processes:\n    - {paths: [/bin/sh, /bin/bash, /usr/bin/curl], action: alert, response: kill-pod}\n",
        ),
    ));
    let v = s.for_workload(&Workload::default());
    let exec = |path| Operation::Exec {
        path,
        in_image: true,
    };
    assert!(v.decide(&exec("/usr/sbin/nginx")).is_allow());
    assert!(
        v.decide(&exec("/docker-entrypoint.d/10-listen.sh"))
            .is_allow()
    );
    let d = v.decide(&exec("/usr/bin/id"));
    assert_eq!(
        (d.verdict, d.response()),
        (Verdict::Block, Some(Response::KillProcess))
    );
    // A relative path is not on the allow-list either.
    assert_eq!(v.decide(&exec("usr/sbin/nginx")).verdict, Verdict::Block);
    let w = Workload::default();
    let mut a = Alert::from_decision(&d, &w, &exec("/usr/bin/id"), Timestamp::now()).unwrap();
    // Killed only once the enforcer says the kill worked.
    assert_eq!(
        (a.action, a.event_type, a.file_path.as_deref()),
        (
            AlertAction::Blocked,
            EventType::ProcessExecution,
            Some("/usr/bin/id")
        )
    );
    a.process_killed();
    assert_eq!(a.action, AlertAction::ProcessKilled);
    // Both match /bin/sh: the block of the allow-list outranks the alert of the deny-list.
    let d = v.decide(&exec("/bin/sh"));
    assert_eq!(
        (d.verdict, d.policy_name()),
        (Verdict::Block, Some("OnlyNginx"))
    );
    let mut plan = v.seccomp_plan();
    assert!(plan.notify.contains("execve") && plan.notify.contains("execveat"));
    // The deny-list only reports /bin/sh: every execve must be seen for it.
    assert!(!plan.execs_only_refused);
    assert!(!plan.exec_to_file_guard());
    assert!(plan.notify.contains("execve"));
}

#[test]
fn execs_go_to_the_file_guard_only_where_every_exec_rule_refuses() {
    let plan = |spec: &str| {
        snapshot(&policy("P", spec))
            .for_workload(&Workload::default())
            .seccomp_plan()
    };
    for spec in [
        "  processes:\n    - {allowOnly: [/usr/sbin/nginx], action: block}\n",
        "  drift: {action: block}\n",
        "  response: kill-process\n  processes:\n    - {paths: [/bin/sh], action: block}\n",
    ] {
        let mut p = plan(spec);
        assert!(p.execs_only_refused, "{spec}");
        assert!(p.exec_to_file_guard(), "{spec}");
        assert!(!p.notify.contains("execve"), "{spec}");
        // fexecve's way to run a memfd, and what keeps the container's listener.
        assert!(p.notify.contains("execveat"), "{spec}");
    }
    for spec in [
        "  drift: {action: alert}\n",
        "  mode: audit\n  processes:\n    - {allowOnly: [/usr/sbin/nginx], action: block}\n",
        "  drift: {action: block}\n  processes:\n    - {paths: [/bin/sh], action: alert}\n",
        // No exec rule at all: nothing to leave to anyone.
        "  files:\n    - {paths: [\"/etc/**\"], action: block}\n",
    ] {
        let mut p = plan(spec);
        assert!(!p.execs_only_refused, "{spec}");
        assert!(!p.exec_to_file_guard(), "{spec}");
    }
}

#[test]
fn process_allow_rule_carves_out_of_same_policy() {
    let s = snapshot(&policy(
        "Tools",
        "  processes:\n    - {paths: [\"/usr/bin/*\"], action: block}\n    - {paths: [/usr/bin/env], action: allow}\n",
    ));
    let v = s.for_workload(&Workload::default());
    assert!(
        v.decide(&Operation::Exec {
            path: "/usr/bin/env",
            in_image: true,
        })
        .is_allow()
    );
    assert_eq!(
        v.decide(&Operation::Exec {
            path: "/usr/bin/id",
            in_image: true,
        })
        .verdict,
        Verdict::Block
    );
    // `*` does not cross `/`.
    assert!(
        v.decide(&Operation::Exec {
            path: "/usr/bin/x/y",
            in_image: true,
        })
        .is_allow()
    );
    // The allow names the image's env, not a file put at its path.
    assert_eq!(
        v.decide(&Operation::Exec {
            path: "/usr/bin/env",
            in_image: false,
        })
        .verdict,
        Verdict::Block
    );
}

#[test]
fn an_allow_list_allows_only_the_images_own_files() {
    let s = snapshot(&policy(
        "OnlyNginx",
        "  processes:\n    - {allowOnly: [/usr/sbin/nginx], action: block}\n",
    ));
    let v = s.for_workload(&Workload::default());
    let exec = |path, in_image| v.decide(&Operation::Exec { path, in_image }).verdict;
    assert_eq!(exec("/usr/sbin/nginx", true), Verdict::Allow);
    // Written over, or a memfd whatever its name: not on the list.
    assert_eq!(exec("/usr/sbin/nginx", false), Verdict::Block);
    assert_eq!(exec("/memfd:nginx (deleted)", false), Verdict::Block);
    assert_eq!(exec("/bin/sh", true), Verdict::Block);
}

#[test]
fn network_cidr_port_protocol_direction() {
    let s = snapshot(&policy(
        "Egress",
        "  network:\n    - {id: all, cidrs: [\"0.0.0.0/0\", \"::/0\"], action: block}\n    - {id: dns, cidrs: [10.96.0.10/32], ports: [53], protocols: [udp], action: allow}\n    - {id: web, cidrs: [\"10.0.0.0/8\", \"fd00::/8\"], ports: [443, \"8000-8080\"], protocols: [tcp], action: allow}\n    - {id: in, direction: ingress, ports: [22], action: alert}\n",
    ));
    let v = s.for_workload(&Workload::default());
    let c = |addr: &str, port, protocol| Operation::Connect {
        direction: Direction::Egress,
        address: addr.parse().unwrap(),
        port,
        protocol,
        process: "/app",
    };
    assert!(v.decide(&c("10.96.0.10", 53, Protocol::Udp)).is_allow());
    assert_eq!(
        v.decide(&c("10.96.0.10", 53, Protocol::Tcp)).verdict,
        Verdict::Block
    );
    assert!(v.decide(&c("10.1.2.3", 443, Protocol::Tcp)).is_allow());
    assert!(v.decide(&c("10.1.2.3", 8080, Protocol::Tcp)).is_allow());
    assert_eq!(
        v.decide(&c("10.1.2.3", 8081, Protocol::Tcp)).verdict,
        Verdict::Block
    );
    assert!(v.decide(&c("fd00::1", 8000, Protocol::Tcp)).is_allow());
    let op6 = c("2001:db8::1", 443, Protocol::Tcp);
    let d6 = v.decide(&op6);
    assert_eq!(d6.verdict, Verdict::Block);
    assert_eq!(
        d6.message(&Workload::default(), &op6),
        "Network connection with [2001:db8::1]:443/tcp by - container is prohibited by policy."
    );
    let d = v.decide(&c("93.184.216.34", 443, Protocol::Tcp));
    assert_eq!((d.verdict, d.rule_id()), (Verdict::Block, Some("all")));
    let w = Workload {
        container_name: "app".into(),
        ..Workload::default()
    };
    let op = c("93.184.216.34", 443, Protocol::Tcp);
    let a = Alert::from_decision(&d, &w, &op, Timestamp::now()).unwrap();
    assert_eq!(a.event_type, EventType::NetworkConnection);
    assert_eq!(
        a.message,
        "Network connection with 93.184.216.34:443/tcp by app container is prohibited by policy."
    );
    assert_eq!(
        (a.remote_address.as_deref(), a.remote_port),
        (Some("93.184.216.34"), Some(443))
    );
    let ingress = Operation::Connect {
        direction: Direction::Ingress,
        address: "192.0.2.1".parse().unwrap(),
        port: 22,
        protocol: Protocol::Tcp,
        process: "/usr/sbin/sshd",
    };
    assert_eq!(v.decide(&ingress).verdict, Verdict::Alert);
    let plan = v.seccomp_plan();
    // Egress is notified; ingress can't be decided by seccomp (the peer is known only after
    // accept returns), so nothing is notified for it, and the policy says so in its warnings.
    assert!(plan.notify.contains("connect") && plan.notify.contains("sendmmsg"));
    assert!(!plan.notify.contains("accept4") && !plan.notify.contains("recvfrom"));
    // io_uring's connects would pass the filter unseen.
    assert!(plan.errno.contains("io_uring_setup"));
}

#[test]
fn raw_sockets_are_refused_with_egress_rules_unless_an_allow_rule_lists_raw() {
    let plan = |spec: &str| {
        let s = snapshot(&policy("Net", spec));
        let v = s.for_workload(&Workload::default());
        (v.seccomp_plan().deny_raw_sockets, v)
    };
    let (deny, v) = plan(
        "  network:\n    - {cidrs: [\"0.0.0.0/0\"], action: block}\n    - {ports: [53], protocols: [udp], action: allow}\n",
    );
    assert!(deny);
    // A rule without `protocols` is for every protocol, raw sends included.
    let raw = Operation::Connect {
        direction: Direction::Egress,
        address: "192.0.2.1".parse().unwrap(),
        port: 0,
        protocol: Protocol::Raw,
        process: "/app",
    };
    assert_eq!(v.decide(&raw).verdict, Verdict::Block);
    let (deny, v) = plan(
        "  network:\n    - {cidrs: [\"0.0.0.0/0\"], action: block}\n    - {cidrs: [192.0.2.0/24], protocols: [raw], action: allow}\n",
    );
    assert!(
        !deny,
        "an allow rule that lists raw lets the workload make raw sockets"
    );
    assert!(v.decide(&raw).is_allow());
    // Ingress rules alone don't refuse them (nothing egress to protect), nor does no rule.
    assert!(!plan("  network:\n    - {direction: ingress, ports: [22], action: alert}\n").0);
    assert!(!plan("  files:\n    - {paths: [/etc/**], action: block}\n").0);
}

#[test]
fn hardening_and_drift() {
    let s = snapshot(&format!(
        "{}{}",
        policy(
            "Hard",
            "  hardening:\n    syscalls: [io_uring_setup, io_uring_enter, io_uring_register, bpf, ptrace]\n  drift: {action: block, response: kill-pod}\n",
        ),
        policy(
            "Watch",
            "  hardening: {syscalls: [unshare], action: alert}\n"
        ),
    ));
    let v = s.for_workload(&Workload::default());
    let d = v.decide(&Operation::Syscall { name: "bpf" });
    assert_eq!(
        (d.verdict, d.rule_id()),
        (Verdict::Block, Some("hardening"))
    );
    assert!(v.decide(&Operation::Syscall { name: "read" }).is_allow());
    assert_eq!(
        v.decide(&Operation::Syscall { name: "unshare" }).verdict,
        Verdict::Alert
    );
    let d = v.decide(&Operation::Drift { path: "/tmp/x" });
    assert_eq!(
        (d.verdict, d.response()),
        (Verdict::Block, Some(Response::KillPod))
    );
    let plan = v.seccomp_plan();
    assert!(plan.errno.contains("bpf") && plan.errno.contains("io_uring_setup"));
    assert!(!plan.notify.contains("bpf"));
    assert!(plan.notify.contains("unshare"));
    assert!(plan.notify.contains("execve"));
}

#[test]
fn the_hardening_baseline_refuses_mounts_and_namespaces_unless_a_policy_allows_them() {
    let files = "  files:\n    - {paths: [/etc/**], action: block}\n";
    let plan = |yaml: &str| {
        snapshot(yaml)
            .for_workload(&Workload::default())
            .seccomp_plan()
    };
    let enforced = plan(&policy("Files", files));
    for s in [
        "setns",
        "mount",
        "open_tree",
        "move_mount",
        "fsopen",
        "fsmount",
    ] {
        assert!(enforced.errno.contains(s), "{s} refused by the baseline");
    }
    // unshare is refused for its namespace flags only (deny_new_namespaces), in the filter.
    assert!(!enforced.errno.contains("unshare"));
    assert!(enforced.deny_new_namespaces);

    // Another policy of the workload's lifts one part; the rest stays refused.
    let lifted = plan(&format!(
        "{}{}",
        policy("Files", files),
        policy(
            "Builder",
            &format!("{files}  hardening: {{allow: [unshare, mount]}}\n")
        )
    ));
    assert!(!lifted.errno.contains("unshare") && !lifted.errno.contains("fsopen"));
    assert!(!lifted.deny_new_namespaces);
    assert!(lifted.errno.contains("setns"));

    // An explicit denial wins over another policy's allowance.
    let denied = plan(&format!(
        "{}{}",
        policy(
            "Strict",
            &format!("{files}  hardening: {{syscalls: [unshare]}}\n")
        ),
        policy(
            "Builder",
            &format!("{files}  hardening: {{allow: [unshare]}}\n")
        )
    ));
    assert!(denied.errno.contains("unshare"));

    // Audit mode blocks nothing, the baseline included.
    let audit = plan(&policy("Files", &format!("  mode: audit\n{files}")));
    assert!(!audit.errno.contains("unshare") && !audit.deny_new_namespaces);
}

#[test]
fn hardening_allow_takes_only_the_baselines_names() {
    let err = parse_str(
        "t.yaml",
        &policy(
            "Bad",
            "  files:\n    - {paths: [/etc/**], action: block}\n  hardening: {allow: [fsopen]}\n",
        ),
    )
    .and_then(Snapshot::new)
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`fsopen` is not part of the hardening baseline"),
        "{err}"
    );
    assert!(err.contains("`mount` covers the whole mount API"), "{err}");
}

#[test]
fn message_templates_rule_over_policy_over_default() {
    let s = snapshot(&policy(
        "Msg",
        "  message: \"{policy}: {process} touched {path} in {namespace}/{pod}\"\n  files:\n    - {paths: [/a], action: block}\n    - {paths: [/b], action: block, message: \"rule {rule} ({severity})\"}\n",
    ));
    let w = wl("ns", "pod", "c", "img", &[]);
    let v = s.for_workload(&w);
    let op = read("/a", "/bin/cat");
    assert_eq!(
        v.decide(&op).message(&w, &op),
        "Msg: /bin/cat touched /a in ns/pod"
    );
    let op = read("/b", "/bin/cat");
    assert_eq!(v.decide(&op).message(&w, &op), "rule files[1] (Medium)");
}

#[test]
fn load_dir_reads_yaml_files_in_order() {
    let dir = std::env::temp_dir().join(format!("rampart-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("b.yaml"), policy("B", BLOCK_SHADOW)).unwrap();
    std::fs::write(
        dir.join("a.yml"),
        format!(
            "{}{}",
            policy("A1", BLOCK_SHADOW),
            policy("A2", BLOCK_SHADOW)
        ),
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a policy").unwrap();
    std::fs::write(dir.join(".hidden.yaml"), "junk: [").unwrap();
    let p = load_dir(&dir).unwrap();
    let names: Vec<_> = p.iter().map(|p| p.name().to_owned()).collect();
    assert_eq!(names, ["A1", "A2", "B"]);
    std::fs::write(dir.join("c.yaml"), "apiVersion: x\n").unwrap();
    let e = load_dir(&dir).unwrap_err();
    assert!(e.to_string().contains("c.yaml:"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(load_dir(&dir), Err(Error::ReadDir { .. })));
}

#[test]
fn the_executables_an_allowance_names_may_not_be_modified() {
    let s = snapshot(&policy(
        "Seedlike",
        "  files:\n    - {paths: [\"/etc/**\"], access: [read], action: block}\n    - {paths: [/etc/passwd], processes: [/usr/sbin/nginx], access: [read], action: allow}\n  processes:\n    - {allowOnly: [/usr/sbin/nginx, \"/docker-entrypoint.d/*\"], action: block}\n",
    ));
    let w = Workload::default();
    let v = s.for_workload(&w);
    let file = |path, access| Operation::FileAccess {
        path,
        access,
        process: "/bin/sh",
    };
    for (path, access) in [
        ("/usr/sbin/nginx", Access::Write),
        ("/usr/sbin/nginx", Access::Create),
        ("/usr/sbin/nginx", Access::Delete),
        ("/usr/sbin/nginx", Access::Chmod),
        ("/docker-entrypoint.d/10-x.sh", Access::Create),
    ] {
        let op = file(path, access);
        let d = v.decide(&op);
        assert_eq!(d.verdict, Verdict::Block, "{path} {access:?}");
        assert_eq!(
            d.message(&w, &op),
            format!(
                "Modification of {path}, an executable policy Seedlike allows, in - container is prohibited by policy."
            )
        );
    }
    // Reading and running them is what the allowance is for.
    assert!(v.decide(&file("/usr/sbin/nginx", Access::Read)).is_allow());
    assert!(v.decide(&file("/usr/sbin/other", Access::Write)).is_allow());
    // Audit mode reports instead.
    let s = snapshot(&policy(
        "Audited",
        "  mode: audit\n  processes:\n    - {allowOnly: [/usr/sbin/nginx], action: block}\n",
    ));
    let v = s.for_workload(&w);
    assert_eq!(
        v.decide(&file("/usr/sbin/nginx", Access::Write)).verdict,
        Verdict::Alert
    );
    assert!(v.seccomp_plan().notify.contains("openat"));
}
