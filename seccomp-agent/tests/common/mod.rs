//! What the node tests share: finding the node, and the agent's code serving a listener socket in
//! this test process under compiled policies, with a Localhost seccomp profile that sends the
//! chosen syscalls to it.
//!
//! Needs root and the node (`make node-up`). Under `make test` (RAMPART_NODE_TESTS=1) a missing
//! node fails the test instead of skipping it.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_policy::{Snapshot, parse_str};
use rampart_protos::agent;
use rampart_seccomp::dispatcher::PolicyHandler;
use rampart_seccomp::guard::runtime::{DEFAULT_RUNTIMES, Runtimes};
use rampart_seccomp::reporter::Reporter;
use rampart_seccomp::supervision::listener::Listener;
use rampart_seccomp::supervision::supervisor::{self, Handler};
use rampart_seccomp::workload::Workload;

/// The seed policy: DisallowEtcAccessForNginx.
pub const SEED: &str = include_str!("../../../config/examples/disallow-etc-access-for-nginx.yaml");

/// What the seed scenario's profile sends to the agent.
pub const NOTIFY_OPEN_EXEC: &[&str] = &["open", "openat", "openat2", "creat", "execve", "execveat"];

/// What rampart-nri notifies for file rules (`SeccompPlan`): opens, execs, and the calls that
/// change names, modes and contents without an open.
pub const NOTIFY_FILES: &[&str] = &[
    "open",
    "openat",
    "openat2",
    "creat",
    "execve",
    "execveat",
    "link",
    "linkat",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "rmdir",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "truncate",
];

/// The hardening rule rampart-nri injects: io_uring is refused by the kernel, no agent involved
/// (its opens would never reach a seccomp filter).
pub const DENY_IO_URING: &str = r#"{"names":["io_uring_setup","io_uring_enter","io_uring_register"],"action":"SCMP_ACT_ERRNO","errnoRet":1}"#;

/// Every event the agent reported.
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<agent::Event>>);

impl Reporter for Collect {
    fn report(&self, event: agent::Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Collect {
    pub fn all(&self) -> Vec<agent::Event> {
        self.0.lock().unwrap().clone()
    }
}

pub use rampart_integration::cri::test_node as node;

/// The agent's listener, PolicyHandler and supervisors, serving a socket in a directory of its
/// own. Stops accepting (and removes the directory) when dropped; supervisors end with their
/// containers.
pub struct Agent {
    pub dir: PathBuf,
    pub sock: PathBuf,
    pub events: Arc<Collect>,
    pub policy: Arc<PolicyHandler>,
    accept: tokio::task::JoinHandle<()>,
}

impl Agent {
    /// Compiles `policies` (file name, YAML) into one snapshot and starts serving. Call from a
    /// multi-threaded tokio runtime.
    pub fn start(policies: &[(&str, &str)]) -> Agent {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = PathBuf::from(format!(
            "/run/rampart-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("seccomp.sock");
        let parsed = policies
            .iter()
            .flat_map(|(name, yaml)| parse_str(name, yaml).unwrap())
            .collect::<Vec<_>>();
        let snapshot = Snapshot::new(parsed).unwrap();
        let events = Arc::new(Collect::default());
        let policy = Arc::new(PolicyHandler::new(1, snapshot, events.clone()));
        // The file guard, as the agent binary runs it (RAMPART_TEST_NO_FILE_GUARD=1 leaves it
        // off, to see what it stops). No holder: these tests restart no agent.
        if std::env::var_os("RAMPART_TEST_NO_FILE_GUARD").is_none() {
            policy
                .start_file_guard(None, Runtimes::find(DEFAULT_RUNTIMES), None)
                .expect("the file guard starts");
        }
        // The egress backstop likewise (RAMPART_TEST_NO_CONNECT_GUARD=1 leaves it off).
        if std::env::var_os("RAMPART_TEST_NO_CONNECT_GUARD").is_none() {
            policy
                .start_egress_guard()
                .expect("the egress backstop starts");
        }
        let handler: Arc<dyn Handler> = policy.clone();
        let listener = Listener::bind(&sock).unwrap();
        let accept = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok(incoming) => {
                        let handler = handler.clone();
                        tokio::spawn(async move {
                            let h = incoming.handoff().await.unwrap();
                            let w = Arc::new(Workload::from_state(&h.state));
                            supervisor::spawn(h.notify_fd, w, handler).unwrap();
                        });
                    }
                    Err(e) => eprintln!("listener: {e}"),
                }
            }
        });
        Agent {
            dir,
            sock,
            events,
            policy,
            accept,
        }
    }

    /// Publishes `policies` as snapshot `version`, as a policy edit on the node does.
    pub fn publish(&self, version: u64, policies: &[(&str, &str)]) {
        let parsed = policies
            .iter()
            .flat_map(|(name, yaml)| parse_str(name, yaml).unwrap())
            .collect::<Vec<_>>();
        self.policy.publish(version, Snapshot::new(parsed).unwrap());
    }

    /// Writes a Localhost profile (default allow, x86_64 only) that notifies `notify` to this
    /// agent, plus `extra_rules` (JSON objects of the profile's `syscalls` list), and returns its
    /// path.
    pub fn profile(&self, notify: &[&str], extra_rules: &[&str]) -> PathBuf {
        write_profile(&self.dir, &self.sock, notify, extra_rules)
    }
}

/// Writes `dir/profile.json`: a Localhost profile (default allow, x86_64 only) with what
/// rampart-nri adds for `notify` (its own merge: read-only open/openat stay in the kernel for the
/// file guard, writes notify) addressed to the agent listening on `sock`, plus `extra_rules`
/// (JSON objects of the profile's `syscalls` list). Returns its path.
pub fn write_profile(
    dir: &std::path::Path,
    sock: &std::path::Path,
    notify: &[&str],
    extra_rules: &[&str],
) -> PathBuf {
    let path = dir.join("profile.json");
    let base = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"]});
    let add = rampart_nri::seccomp_merge::Additions {
        notify: notify.iter().map(|s| s.to_string()).collect(),
        deny: Vec::new(),
        listener_path: sock.display().to_string(),
        listener_metadata: "rampart-test".into(),
        reads_in_kernel: true,
        deny_new_namespaces: false,
        deny_raw_sockets: false,
        exec_by_guard: false,
    };
    let mut profile = rampart_nri::seccomp_merge::merge(Some(&base), &add).unwrap();
    let rules = profile["syscalls"].as_array_mut().unwrap();
    // What merge adds whenever opens are notified (io_uring refused) is the tests' to choose.
    rules.retain(|r| r["action"] != "SCMP_ACT_ERRNO");
    rules.extend(
        extra_rules
            .iter()
            .map(|r| serde_json::from_str::<serde_json::Value>(r).unwrap()),
    );
    std::fs::write(&path, serde_json::to_string(&profile).unwrap()).unwrap();
    path
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// GET / from nginx at `addr`, retried for up to 10 s while it starts.
pub fn http_get(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(s, "GET / HTTP/1.0\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })();
        match attempt {
            Ok(b) => return b,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => panic!("nginx at {addr} never answered: {e}"),
        }
    }
}
