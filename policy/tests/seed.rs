//! The seed nginx policy: its decisions and its alert, byte for byte.

use rampart_policy::*;

// The one copy of the seed, shipped for operators in config/examples/.
const SEED: &str = include_str!("../../config/examples/disallow-etc-access-for-nginx.yaml");
const SEED_FILE: &str = "config/examples/disallow-etc-access-for-nginx.yaml";

/// nginx's master and its workers, as the container's /etc/passwd names them.
const MASTER: User<'static> = User {
    uid: 0,
    name: Some("root"),
};
const WORKER: User<'static> = User {
    uid: 33,
    name: Some("www-data"),
};

fn nginx() -> Workload {
    Workload {
        namespace: "default".into(),
        pod_name: "vulnerable-nginx-pod".into(),
        container_name: "nginx".into(),
        image: "docker.io/library/nginx:1.25".into(),
        ..Workload::default()
    }
}

fn view(w: &Workload) -> WorkloadView {
    let policies = parse_str(SEED_FILE, SEED).expect("seed parses");
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].name(), "DisallowEtcAccessForNginx");
    Snapshot::new(policies).unwrap().for_workload(w)
}

fn read(path: &str, process: &str) -> Operation<'static> {
    // Tests only: leak to get 'static strs for a compact helper.
    Operation::FileAccess {
        path: Box::leak(path.to_owned().into_boxed_str()),
        access: Access::Read,
        process: Box::leak(process.to_owned().into_boxed_str()),
    }
}

#[test]
fn seed_loads_from_disk_too() {
    let p = load_file(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/examples/disallow-etc-access-for-nginx.yaml"
    )))
    .unwrap();
    assert_eq!(p.len(), 1);
}

#[test]
fn cat_reading_passwd_is_blocked() {
    let v = view(&nginx());
    let d = v.decide(&read("/etc/passwd", "/usr/bin/cat"));
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(d.policy_name(), Some("DisallowEtcAccessForNginx"));
    assert_eq!(d.rule_id(), Some("files[0]"));
    assert_eq!(d.severity(), Some(Severity::High));
    assert_eq!(d.response(), Some(Response::Block));
}

#[test]
fn nginx_reading_passwd_and_its_config_is_allowed() {
    let v = view(&nginx());
    for p in [
        "/etc/passwd",
        "/etc/nginx/nginx.conf",
        "/etc/nginx/conf.d/default.conf",
    ] {
        let d = v.decide_as(&read(p, "/usr/sbin/nginx"), Some(&MASTER));
        assert_eq!(d.verdict, Verdict::Allow, "{p}");
        // The allow names itself, for `rampartctl explain`.
        assert_eq!(d.rule_id(), Some("files[1]"));
    }
}

#[test]
fn nginx_workers_may_not_read_what_the_master_may() {
    // A symlink in the web root would otherwise make a worker serve /etc/passwd.
    let v = view(&nginx());
    for user in [Some(&WORKER), None] {
        let d = v.decide_as(&read("/etc/passwd", "/usr/sbin/nginx"), user);
        assert_eq!(
            (d.verdict, d.rule_id()),
            (Verdict::Block, Some("files[0]")),
            "{user:?}"
        );
    }
    // By id as well as by name: a uid the passwd file doesn't name is not root.
    let nameless = User { uid: 0, name: None };
    assert_eq!(
        v.decide_as(&read("/etc/passwd", "/usr/sbin/nginx"), Some(&nameless))
            .verdict,
        Verdict::Block
    );
    // Reads that depend on the user are never remembered for the whole container.
    assert!(v.read_depends_on_process("/etc/passwd"));
}

#[test]
fn nginx_reading_other_etc_files_is_blocked() {
    let v = view(&nginx());
    let d = v.decide(&read("/etc/shadow", "/usr/sbin/nginx"));
    assert_eq!(d.verdict, Verdict::Block);
}

#[test]
fn runtime_managed_files_stay_readable_by_everyone() {
    // The runtime writes hostname, hosts and resolv.conf for the pod; DNS and logging need them.
    let v = view(&nginx());
    for f in ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"] {
        assert_eq!(
            v.decide(&read(f, "/bin/cat")).verdict,
            Verdict::Allow,
            "{f}"
        );
    }
    // What nginx needs to resolve its `user` directive, and nothing more for other processes.
    assert_eq!(
        v.decide_as(&read("/etc/group", "/usr/sbin/nginx"), Some(&MASTER))
            .verdict,
        Verdict::Allow
    );
    assert_eq!(
        v.decide(&read("/etc/group", "/bin/cat")).verdict,
        Verdict::Block
    );
}

#[test]
fn writes_and_other_dirs_are_not_covered() {
    let v = view(&nginx());
    assert!(
        v.decide(&read("/usr/share/nginx/html/index.html", "/bin/cat"))
            .is_allow()
    );
    let w = Operation::FileAccess {
        path: "/etc/passwd",
        access: Access::Write,
        process: "/bin/cat",
    };
    assert!(v.decide(&w).is_allow());
}

#[test]
fn path_tricks_do_not_bypass() {
    let v = view(&nginx());
    for p in [
        "/etc/../etc/passwd",
        "//etc///passwd",
        "/etc/./passwd",
        "/etc/passwd/",
        "/tmp/../etc/passwd",
        "/../../etc/passwd",
    ] {
        assert_eq!(
            v.decide(&read(p, "/bin/cat")).verdict,
            Verdict::Block,
            "{p}"
        );
    }
    // And nginx's own exception survives the same tricks in the process path.
    assert!(
        v.decide_as(&read("/etc/./passwd", "/usr//sbin/nginx"), Some(&MASTER))
            .is_allow()
    );
    // Not /etc: a sibling with the same prefix, and a relative path (caller must resolve).
    assert!(v.decide(&read("/etcetera", "/bin/cat")).is_allow());
    assert!(v.decide(&read("/etcetera/passwd", "/bin/cat")).is_allow());
    assert!(v.decide(&read("etc/passwd", "/bin/cat")).is_allow());
}

#[test]
fn unknown_process_gets_no_exception() {
    let v = view(&nginx());
    assert_eq!(v.decide(&read("/etc/passwd", "")).verdict, Verdict::Block);
}

#[test]
fn other_containers_are_unaffected() {
    let mut w = nginx();
    w.container_name = "sidecar".into();
    let v = view(&w);
    assert!(v.is_empty());
    assert!(v.decide(&read("/etc/passwd", "/bin/cat")).is_allow());
    assert!(v.seccomp_plan().is_empty());
}

#[test]
fn seed_needs_opens_and_new_names_notified_and_side_doors_shut() {
    let plan = view(&nginx()).seccomp_plan();
    let notify: Vec<_> = plan.notify.iter().copied().collect();
    // Opens are decided; renames and links too, or `ln /etc/passwd /tmp/p` would give the file
    // a name the rule does not cover. The rest of the file calls are decided because nginx, which
    // the seed's allow names, may not be written over, removed or made another file.
    assert_eq!(
        notify,
        [
            "chmod",
            "creat",
            "fchmod",
            "fchmodat",
            "fchmodat2",
            "link",
            "linkat",
            "open",
            "openat",
            "openat2",
            "rename",
            "renameat",
            "renameat2",
            "rmdir",
            "truncate",
            "unlink",
            "unlinkat"
        ]
    );
    let errno: Vec<_> = plan.errno.iter().map(String::as_str).collect();
    assert_eq!(
        errno,
        [
            // The file rules' side doors.
            "io_uring_enter",
            "io_uring_register",
            "io_uring_setup",
            "open_by_handle_at",
            // The hardening baseline: no new mounts, no namespaces of its own.
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "pivot_root",
            "setns",
            "umount",
            "umount2",
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    assert!(plan.deny_new_namespaces);
}

#[test]
fn moving_or_linking_guarded_files_is_decided_by_what_escapes() {
    let v = view(&nginx());
    // A hard link or rename of a guarded file to an unguarded name: blocked by the guard.
    let d = v.decide_move("/etc/passwd", "/tmp/p", false);
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(d.policy_name(), Some("DisallowEtcAccessForNginx"));
    // Within the guarded tree nothing escapes.
    assert!(
        v.decide_move("/etc/nginx/a.conf", "/etc/nginx/b.conf", false)
            .is_allow()
    );
    // Unguarded files move freely, into guarded places too.
    assert!(v.decide_move("/tmp/a", "/tmp/b", false).is_allow());
    assert!(v.decide_move("/tmp/a", "/etc/a", false).is_allow());
    // Moving a directory that holds guarded files, or one that lies inside the guarded tree.
    assert_eq!(v.decide_move("/etc", "/x", true).verdict, Verdict::Block);
    assert_eq!(
        v.decide_move("/etc/nginx", "/x", true).verdict,
        Verdict::Block
    );
    assert!(
        v.decide_move("/var/cache/nginx", "/var/cache/x", true)
            .is_allow()
    );
}

#[test]
fn alert_json_is_byte_for_byte() {
    let w = nginx();
    let v = view(&w);
    let op = read("/etc/passwd", "/usr/bin/cat");
    let d = v.decide(&op);
    let ts = Timestamp::parse("2023-10-27T10:30:00Z").unwrap();
    let mut a = Alert::from_decision(&d, &w, &op, ts).unwrap();
    // The design's example has only the core fields.
    a.namespace = None;
    a.process_path = None;
    a.rule_id = None;
    assert_eq!(
        a.to_json(),
        r#"{"timestamp":"2023-10-27T10:30:00Z","eventType":"FileAccess","policyName":"DisallowEtcAccessForNginx","podName":"vulnerable-nginx-pod","containerName":"nginx","filePath":"/etc/passwd","action":"Blocked","severity":"High","message":"File access to /etc/passwd by nginx container is prohibited by policy."}"#
    );
    let back: Alert = serde_json::from_str(&a.to_json()).unwrap();
    assert_eq!(back, a);
}

#[test]
fn alert_extras_and_journal_fields() {
    let w = nginx();
    let v = view(&w);
    let op = read("/etc/passwd", "/usr/bin/cat");
    let d = v.decide(&op);
    let ts = Timestamp::parse("2023-10-27T12:30:00+02:00").unwrap();
    let mut a = Alert::from_decision(&d, &w, &op, ts).unwrap();
    a.pid = Some(4242);
    a.container_id = Some("abc123".into());
    a.node_name = Some("node-1".into());
    a.args = Some(vec!["cat".into(), "/etc/passwd".into()]);
    a.enforcer = Some("seccomp".into());
    let json = a.to_json();
    assert!(
        json.starts_with(r#"{"timestamp":"2023-10-27T10:30:00Z","eventType":"FileAccess""#),
        "{json}"
    );
    assert!(json.ends_with(r#","namespace":"default","containerId":"abc123","nodeName":"node-1","pid":4242,"processPath":"/usr/bin/cat","args":["cat","/etc/passwd"],"enforcer":"seccomp","ruleId":"files[0]"}"#), "{json}");
    let f = a.journal_fields();
    let get = |k: &str| f.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("MESSAGE"), Some(json.as_str()));
    assert_eq!(get("PRIORITY"), Some("3"));
    assert_eq!(get("RAMPART_POLICY"), Some("DisallowEtcAccessForNginx"));
    assert_eq!(get("RAMPART_ACTION"), Some("Blocked"));
    assert_eq!(get("RAMPART_SEVERITY"), Some("High"));
    assert_eq!(get("RAMPART_POD"), Some("vulnerable-nginx-pod"));
    assert_eq!(get("RAMPART_CONTAINER"), Some("nginx"));
    assert_eq!(get("RAMPART_NAMESPACE"), Some("default"));
    assert_eq!(get("RAMPART_EVENT_TYPE"), Some("FileAccess"));
    assert_eq!(get("RAMPART_FILE_PATH"), Some("/etc/passwd"));
    assert_eq!(get("RAMPART_PID"), Some("4242"));
    assert_eq!(get("RAMPART_ARGS"), Some(r#"["cat","/etc/passwd"]"#));
    assert_eq!(get("RAMPART_SYSCALL"), None);
}

#[test]
fn allow_makes_no_alert() {
    let w = nginx();
    let v = view(&w);
    let op = read("/etc/passwd", "/usr/sbin/nginx");
    let d = v.decide_as(&op, Some(&MASTER));
    assert!(Alert::from_decision(&d, &w, &op, Timestamp::now()).is_none());
}
