//! A structured entry written by the journald sink comes back from the real journald with every
//! field as a journal field of its own. Needs root and a running journald (`make node-up` starts
//! one); under `make test` (RAMPART_NODE_TESTS=1) a missing journald fails the test instead of
//! skipping it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Polls journalctl for the entry carrying `test_id`; journald indexes asynchronously.
fn read_back(test_id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("journalctl")
            .args(["--no-pager", "-o", "json", "--all"])
            .arg(format!("RAMPART_TEST_ID={test_id}"))
            .output()
            .expect("journalctl runs");
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(line) = text.lines().find(|l| !l.trim().is_empty()) {
            return serde_json::from_str(line).expect("journalctl -o json prints JSON");
        }
        assert!(
            Instant::now() < deadline,
            "entry {test_id} never appeared in the journal; journalctl stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn structured_entry_round_trips_with_its_fields() {
    if !journald_available() {
        return;
    }
    let id = format!(
        "rt-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let json = r#"{"eventType":"FileAccess","policyName":"DisallowEtcAccessForNginx","filePath":"/etc/passwd","action":"Blocked"}"#;
    let journal = Journal::connect_default().expect("connects to journald");
    journal
        .send([
            ("MESSAGE", json.as_bytes()),
            ("SYSLOG_IDENTIFIER", b"rampart-test"),
            ("PRIORITY", b"3"),
            ("RAMPART_TEST_ID", id.as_bytes()),
            ("RAMPART_POLICY", b"DisallowEtcAccessForNginx"),
            ("RAMPART_ACTION", b"Blocked"),
            ("RAMPART_FILE_PATH", b"/etc/passwd"),
            ("RAMPART_NOTE", b"two\nlines"),
        ])
        .expect("journald takes the entry");

    let entry = read_back(&id);
    assert_eq!(entry["MESSAGE"], json);
    assert_eq!(entry["SYSLOG_IDENTIFIER"], "rampart-test");
    assert_eq!(entry["PRIORITY"], "3");
    assert_eq!(entry["RAMPART_POLICY"], "DisallowEtcAccessForNginx");
    assert_eq!(entry["RAMPART_ACTION"], "Blocked");
    assert_eq!(entry["RAMPART_FILE_PATH"], "/etc/passwd");
    assert_eq!(entry["RAMPART_NOTE"], "two\nlines");
    // journald adds the trusted _PID itself: the entry came over the native socket from us.
    assert_eq!(entry["_PID"], std::process::id().to_string());
}

#[test]
fn an_entry_larger_than_a_datagram_goes_through_a_memfd() {
    if !journald_available() {
        return;
    }
    let id = format!("big-{}", std::process::id());
    // Larger than the default datagram limit (~212 KiB of socket buffer), so send() gets EMSGSIZE.
    let big = "x".repeat(300 * 1024);
    let journal = Journal::connect_default().expect("connects to journald");
    journal
        .send([
            ("MESSAGE", &b"large entry"[..]),
            ("RAMPART_TEST_ID", id.as_bytes()),
            ("RAMPART_BIG", big.as_bytes()),
        ])
        .expect("journald takes the large entry");
    let entry = read_back(&id);
    assert_eq!(entry["MESSAGE"], "large entry");
    assert_eq!(entry["RAMPART_BIG"].as_str().map(str::len), Some(big.len()));
}
