//! `rampartctl events` reads back what the journald sink writes. Needs root and a running
//! journald (`make node-up` starts one); with RAMPART_NODE_TESTS set, a missing journald fails
//! the test instead of skipping it.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rampart_policy::{Alert, AlertAction, EventType, Severity, Timestamp};
use rampartd::sink::journald::{DEFAULT_SOCKET, Journal};

fn journald_available() -> bool {
    let present = Path::new(DEFAULT_SOCKET).exists();
    if !present {
        assert!(
            std::env::var_os("RAMPART_NODE_TESTS").is_none(),
            "RAMPART_NODE_TESTS is set but journald's socket {DEFAULT_SOCKET} is missing: run `make node-up`"
        );
        eprintln!("skipped: journald is not running (run `make node-up`, or `make test`)");
    }
    present
}

fn rampartctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampartctl"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("rampartctl runs")
}

fn alert(pod: &str) -> Alert {
    Alert {
        timestamp: Timestamp::now(),
        event_type: EventType::FileAccess,
        policy_name: "DisallowEtcAccessForNginx".into(),
        pod_name: pod.into(),
        container_name: "nginx".into(),
        file_path: Some("/etc/passwd".into()),
        action: AlertAction::Blocked,
        severity: Severity::High,
        message: "File access to /etc/passwd by nginx container is prohibited by policy.".into(),
        namespace: Some("default".into()),
        container_id: Some("c0ffee".into()),
        node_name: Some("node-a".into()),
        pid: Some(4242),
        process_path: Some("/bin/cat".into()),
        args: Some(vec!["cat".into(), "/etc/passwd".into()]),
        syscall: Some("openat".into()),
        remote_address: None,
        remote_port: None,
        protocol: None,
        enforcer: Some("seccomp-notify".into()),
        rule_id: Some("files[0]".into()),
        ancestors: Vec::new(),
    }
}

#[test]
fn events_finds_an_alert_written_by_the_journald_sink() {
    if !journald_available() {
        return;
    }
    let pod = format!(
        "ctl-events-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let a = alert(&pod);
    let fields = a.journal_fields();
    let journal = Journal::connect_default().expect("connects to journald");
    journal
        .send(fields.iter().map(|(k, v)| (*k, v.as_bytes())))
        .expect("journald takes the entry");

    // journald indexes asynchronously: poll.
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let out = rampartctl(&["events", "--pod", &pod, "-o", "json"]);
        assert!(
            out.status.success(),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(l) = stdout.lines().find(|l| !l.trim().is_empty()) {
            assert_eq!(stdout.lines().count(), 1, "only our pod's entry: {stdout}");
            break l.to_owned();
        }
        assert!(Instant::now() < deadline, "the alert never appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
    let back: Alert = serde_json::from_str(&line).expect("the MESSAGE is the alert JSON");
    assert_eq!(back, a);

    // Filters AND across fields: a different action finds nothing.
    let out = rampartctl(&["events", "--pod", &pod, "--action", "Alerted", "-o", "json"]);
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = rampartctl(&[
        "events",
        "--pod",
        &pod,
        "--policy",
        "DisallowEtcAccessForNginx",
    ]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    assert!(header.starts_with("TIME"), "{table}");
    let row = lines.next().unwrap_or_else(|| panic!("no row: {table}"));
    for cell in [
        "Blocked",
        "High",
        &format!("default/{pod}"),
        "nginx",
        "DisallowEtcAccessForNginx",
        "/etc/passwd",
    ] {
        assert!(row.contains(cell), "{cell} missing: {row}");
    }
    // Columns line up: ACTION starts where its header does.
    assert_eq!(header.find("ACTION"), row.find("Blocked"), "{table}");
}
