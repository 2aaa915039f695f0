//! The listener and the supervisor against a real runc container: containerd's `ctr run` with an
//! OCI seccomp profile whose listenerPath is our socket. runc hands over the notify fd, and the
//! agent's answers decide what the container sees. Needs root and the node (`make node-up`); under
//! `make test` (RAMPART_NODE_TESTS=1) a missing node fails the test instead of skipping it.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use rampart_seccomp::container::memory::TaskMemory;
use rampart_seccomp::outcome::Answer;
use rampart_seccomp::supervision::listener::Listener;
use rampart_seccomp::supervision::supervisor::{self, Handler, Phase};
use rampart_seccomp::sys::notify::{self, Notification};
use rampart_seccomp::syscall::{Call, ExecCall, OpenCall, decode};
use rampart_seccomp::workload::Workload;

fn node_socket() -> Option<PathBuf> {
    let dir = std::env::var("RAMPART_NODE_DIR").unwrap_or_else(|_| "/var/lib/rampart-node".into());
    let sock = Path::new(&dir).join("containerd.sock");
    if sock.exists() && nix::unistd::geteuid().is_root() {
        return Some(sock);
    }
    assert!(
        std::env::var_os("RAMPART_NODE_TESTS").is_none(),
        "RAMPART_NODE_TESTS is set but the node is not up ({} missing) or we are not root",
        sock.display()
    );
    eprintln!("skipped: needs root and the node (run `make node-up`, or `make test`)");
    None
}

/// Denies opens of one literal path, lets everything else through, and records what it saw.
/// (A test handler: the real decisions come from the compiled policy.)
struct DenyOne {
    path: &'static str,
    seen: Mutex<Vec<(String, String)>>,
}

impl Handler for DenyOne {
    fn handle(
        &self,
        w: &Workload,
        fd: BorrowedFd<'_>,
        _phase: &mut Phase,
        n: &Notification,
    ) -> Answer {
        let Ok(mem) = TaskMemory::open(n.pid) else {
            return Answer::Errno(libc::EPERM);
        };
        let call = decode(n, &mem);
        if !notify::id_valid(fd, n.id) {
            return Answer::Errno(libc::EPERM);
        }
        let call = match call {
            Ok(c) => c,
            Err(_) => return Answer::Errno(libc::EPERM),
        };
        let path = match &call {
            Call::Open(OpenCall { path, .. }) | Call::Exec(ExecCall { path, .. }) => {
                path.to_string_lossy().into_owned()
            }
            _ => String::new(),
        };
        self.seen
            .lock()
            .unwrap()
            .push((w.container_id.clone(), path.clone()));
        match call {
            Call::Open(_) if path == self.path => Answer::Errno(libc::EPERM),
            _ => Answer::Continue,
        }
    }
}

#[test]
fn runc_hands_over_the_fd_and_the_agents_answers_are_what_the_container_sees() {
    let Some(sock) = node_socket() else { return };
    let dir = tempdir();
    let listener_path = dir.join("seccomp.sock");
    let profile = dir.join("profile.json");
    std::fs::write(
        &profile,
        format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "listenerPath":"{}","listenerMetadata":"test-metadata",
            "syscalls":[{{"names":["openat","execve"],"action":"SCMP_ACT_NOTIFY"}}]}}"#,
            listener_path.display()
        ),
    )
    .unwrap();

    let handler = Arc::new(DenyOne {
        path: "/etc/passwd",
        seen: Mutex::new(Vec::new()),
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(async { Listener::bind(&listener_path) })
        .unwrap();
    let mode = std::fs::metadata(&listener_path).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    let h: Arc<dyn Handler> = handler.clone();
    let workloads = Arc::new(Mutex::new(Vec::new()));
    let seen_workloads = workloads.clone();
    rt.spawn(async move {
        loop {
            match listener.accept().await.map(|i| i.handoff()) {
                Ok(incoming) => {
                    let handoff = incoming.await.unwrap();
                    let w = Arc::new(Workload::from_state(&handoff.state));
                    seen_workloads.lock().unwrap().push((*w).clone());
                    supervisor::spawn(handoff.notify_fd, w, h.clone()).unwrap();
                }
                Err(e) => eprintln!("listener: {e}"),
            }
        }
    });

    let id = format!("notify-test-{}", std::process::id());
    let out = Command::new("timeout")
        .args(["60", "ctr", "--address"])
        .arg(&sock)
        .args([
            "-n",
            "k8s.io",
            "run",
            "--rm",
            "--seccomp",
            "--seccomp-profile",
        ])
        .arg(&profile)
        .args(["rampart.local/busybox:latest", &id, "sh", "-c"])
        .arg("cat /etc/passwd; echo cat-exit=$?; cat /etc/group >/dev/null && echo group-ok")
        .output()
        .expect("ctr runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ctr failed: {stdout}\n{stderr}");
    assert!(
        !stdout.contains("root:x:0:0"),
        "the denied file was read:\n{stdout}"
    );
    assert!(
        stdout.contains("cat-exit=1"),
        "cat did not fail:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("Operation not permitted") || stdout.contains("Operation not permitted"),
        "no EPERM reported:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("group-ok"),
        "an allowed open failed:\n{stdout}\n{stderr}"
    );

    let workloads = workloads.lock().unwrap();
    assert!(
        workloads
            .iter()
            .any(|w| w.container_id == id && w.metadata.as_deref() == Some("test-metadata")),
        "runc's handoff did not name the container: {workloads:?}"
    );
    let seen = handler.seen.lock().unwrap();
    assert!(
        seen.iter().any(|(c, p)| c == &id && p == "/bin/sh"),
        "execve of the entrypoint not seen: {seen:?}"
    );
    assert!(seen.iter().any(|(_, p)| p == "/etc/passwd"));
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("rampart-seccomp-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
