//! rampart's daemons as an operator runs them (`scripts/rampart up`: rampartd, the seccomp holder
//! and agent, rampart-nri) for the node tests, on a policy directory of the test's own, and the
//! records they write to journald.
//!
//! The daemons listen on fixed sockets, so one test at a time may have them: [`Rampart::up`]
//! waits for the tests of the same binary that hold them (test binaries run one after another).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static STACK: Mutex<()> = Mutex::new(());

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the integration crate is in the workspace")
        .to_owned()
}

/// rampart's daemons for the duration of a test. Dropping it stops them and removes the policy
/// directory.
pub struct Rampart {
    pub policy_dir: PathBuf,
    _turn: MutexGuard<'static, ()>,
}

impl Rampart {
    /// Starts the daemons on a fresh policy directory holding `policies` (file name, YAML).
    pub fn up(policies: &[(&str, &str)]) -> Rampart {
        let turn = STACK.lock().unwrap_or_else(|e| e.into_inner());
        let policy_dir = std::env::temp_dir().join(format!(
            "rampart-policies-{}-{}",
            std::process::id(),
            crate::cri::unique_name("p")
        ));
        std::fs::create_dir_all(&policy_dir).expect("a policy directory in the temp dir");
        for (name, yaml) in policies {
            // rampartd would reject a bad file and go on: the test would run without it.
            if let Err(e) = rampart_policy::parse_str(name, yaml) {
                panic!("the test's policy {name} is invalid: {e}");
            }
            std::fs::write(policy_dir.join(name), yaml).expect("policy written");
        }
        // Daemons left running (by `make demo`, say) would read another policy directory.
        let _ = Command::new(repo().join("scripts/rampart"))
            .arg("down")
            .status();
        let out = Command::new(repo().join("scripts/rampart"))
            .arg("up")
            .env("RAMPART_POLICY_DIR", &policy_dir)
            .output()
            .expect("scripts/rampart runs");
        assert!(
            out.status.success(),
            "scripts/rampart up failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Rampart {
            policy_dir,
            _turn: turn,
        }
    }

    /// Runs `scripts/rampart ARG` against this stack's policy directory.
    pub fn script(&self, arg: &str) -> std::process::Output {
        Command::new(repo().join("scripts/rampart"))
            .arg(arg)
            .env("RAMPART_POLICY_DIR", &self.policy_dir)
            .output()
            .expect("scripts/rampart runs")
    }
}

impl Drop for Rampart {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/rampart"))
            .arg("down")
            .status();
        let _ = std::fs::remove_dir_all(&self.policy_dir);
    }
}

/// Seconds since the epoch: where a test's records begin.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// rampart's records for `pod` with `action` since `since`, as journald returns them.
pub fn records(pod: &str, action: &str, since: u64) -> Vec<serde_json::Value> {
    let out = Command::new("journalctl")
        .args(["--no-pager", "-o", "json", "--since"])
        .arg(format!("@{since}"))
        .arg("SYSLOG_IDENTIFIER=rampart")
        .arg(format!("RAMPART_POD={pod}"))
        .arg(format!("RAMPART_ACTION={action}"))
        .output()
        .expect("journalctl runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The latest record for `pod` with `action` since `since`, waiting up to 10 s for it.
pub fn wait_for_record(pod: &str, action: &str, since: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(r) = records(pod, action, since).pop() {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "no {action} record for {pod} reached journald"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The alert JSON of a journald record (its MESSAGE).
pub fn alert(record: &serde_json::Value) -> serde_json::Value {
    let text = record["MESSAGE"].as_str().expect("a record has a MESSAGE");
    serde_json::from_str(text).expect("MESSAGE is the alert JSON")
}

/// rampartd's view, as `rampartctl status -o json` gives it (Null if it could not be read).
pub fn status() -> serde_json::Value {
    let out = Command::new(repo().join("target/debug/rampartctl"))
        .args(["status", "-o", "json"])
        .output()
        .expect("rampartctl runs (make build)");
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// Polls [`status`] until `found` gives something, for up to `secs` seconds; fails naming
/// `what` and the last status.
pub fn wait_status<T>(secs: u64, what: &str, found: impl Fn(&serde_json::Value) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = status();
        if let Some(v) = found(&s) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The status entry of the bound container `container_id` (with a cgroup id), if any.
pub fn workload(status: &serde_json::Value, container_id: &str) -> Option<serde_json::Value> {
    status["workloads"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|w| w["containerId"] == container_id && w["cgroupId"].as_u64().unwrap_or(0) != 0)
        .cloned()
}

/// The status entry of the sensor `name`, if any.
pub fn sensor(status: &serde_json::Value, name: &str) -> Option<serde_json::Value> {
    status["sensors"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .cloned()
}
