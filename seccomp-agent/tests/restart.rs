//! Agent restart survival on the real node, with the real binaries: rampartd, the fd holder
//! (rampart-holder) and the agent (rampart-seccomp) on sockets of their own, and a busybox
//! pod whose Localhost profile sends open/openat/execve to that agent. The pod runs an open loop;
//! the agent is stopped (SIGTERM) and started again in the middle of it. No allowed open may fail,
//! the loop must go on after the restart, and the next blocked open (from a process exec'd by the
//! loop, under the same filter) must get EPERM within a second of starting the new agent.
//!
//! To see the test fail without restart survival: `RAMPART_TEST_NO_HOLDER=1` starts the agent with
//! `--no-holder` (the loop's opens then fail with ENOSYS after the restart).
//!
//! Needs root and the node (`make node-up`), and rampartd built (`cargo test --workspace` builds
//! it; otherwise the test builds it). Under `make test` (RAMPART_NODE_TESTS=1) a missing node
//! fails the test instead of skipping it.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{DENY_IO_URING, NOTIFY_OPEN_EXEC, node, write_profile};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rampart_integration::cri::{
    ContainerSpec, Cri, PodSpec, SeccompProfile, TestPod, read_log, unique_name,
};
use rampart_seccomp::holder::client::HolderClient;

/// Blocks /etc/shadow for the test's container only; everything else is allowed.
const POLICY: &str = "apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: RestartTestShadow}
spec:
  selector: {containerNames: [restart-looper]}
  mode: enforce
  severity: High
  files:
    - {paths: [/etc/shadow], access: [read], action: block}
";

/// The open loop. Every iteration opens /etc/hostname in the shell itself (an allowed openat on
/// the container's own notify fd; a failure prints FAIL with the shell's error on stderr); every
/// 10th runs rampart-probe (an execve, decided by policy) to open /etc/shadow, which must be
/// refused, and prints `tick ITERATION OK FAILED PROBE-RESULT`. Paced by a 2 ms read timeout on a
/// FIFO (no process, no open).
const LOOP: &str = r#"mkfifo /tmp/pace && exec 3<>/tmp/pace
i=0; ok=0; failed=0
while :; do
  i=$((i+1))
  if true </etc/hostname; then ok=$((ok+1)); else failed=$((failed+1)); echo "FAIL $i"; fi
  if [ $((i % 10)) -eq 0 ]; then
    r=$(rampart-probe open /etc/shadow 2>&1)
    echo "tick $i $ok $failed $r"
  fi
  read -t 0.002 x <&3
done"#;

/// The test's container name (the policy's selector).
const CONTAINER: &str = "restart-looper";

/// The tests share two CPUs and time a restart: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn target_dir() -> PathBuf {
    // target/<profile>/deps/restart-<hash>
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_owned()
}

/// rampartd's binary: built next to this test by `cargo test --workspace`; built here otherwise
/// (`CARGO_BIN_EXE_` names only this crate's binaries).
fn rampartd() -> PathBuf {
    let bin = target_dir().join("rampartd");
    if !bin.exists() {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "-p", "rampartd", "--bin", "rampartd"])
            .current_dir(workspace);
        if target_dir().file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("cargo runs");
        assert!(
            status.success() && bin.exists(),
            "cannot build rampartd; build it first: cargo build -p rampartd"
        );
    }
    bin
}

/// A process of ours, killed (SIGKILL) when dropped if it still runs.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, dir: &Path, cmd: &mut Command) -> Proc {
        static N: AtomicUsize = AtomicUsize::new(0);
        let log = dir.join(format!("{name}-{}.log", N.fetch_add(1, Ordering::Relaxed)));
        let out = File::create(&log).unwrap();
        let child = cmd
            .env("RUST_LOG", "info,rampart_seccomp=debug")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { name, child, log }
    }

    /// SIGTERM, then waits for a clean exit.
    fn terminate(mut self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{} exited with {status} after SIGTERM; log:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop within 15 s of SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_for_socket(path: &Path, proc: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!(
                "{} exited ({status}) before serving {}; log:\n{}",
                proc.name,
                path.display(),
                std::fs::read_to_string(&proc.log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} did not serve {} within 30 s",
            proc.name,
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// rampartd, the holder and the agent, in a directory of their own.
struct Stack {
    dir: PathBuf,
    daemon_sock: PathBuf,
    holder_sock: PathBuf,
    agent_sock: PathBuf,
    no_holder: bool,
    // Dropped in this order: the agent first, so it never outlives the holder by accident.
    agent: Option<Proc>,
    holder: Option<Proc>,
    rampartd: Option<Proc>,
}

impl Stack {
    fn start(cri: &Cri, policy: &str) -> Stack {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = PathBuf::from(format!(
            "/run/rampart-restart-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(dir.join("policies.d")).unwrap();
        std::fs::write(dir.join("policies.d/restart.yaml"), policy).unwrap();
        let mut stack = Stack {
            daemon_sock: dir.join("rampartd.sock"),
            holder_sock: dir.join("holder.sock"),
            agent_sock: dir.join("seccomp.sock"),
            no_holder: std::env::var_os("RAMPART_TEST_NO_HOLDER").is_some(),
            dir,
            agent: None,
            holder: None,
            rampartd: None,
        };
        let mut rampartd = Proc::spawn(
            "rampartd",
            &stack.dir,
            Command::new(rampartd())
                .arg("--policy-dir")
                .arg(stack.dir.join("policies.d"))
                .arg("--socket")
                .arg(&stack.daemon_sock)
                .arg("--cri-socket")
                .arg(cri.socket())
                .args([
                    "--no-journal",
                    "--log-stderr",
                    "--node-name",
                    "restart-test",
                ]),
        );
        wait_for_socket(&stack.daemon_sock, &mut rampartd);
        stack.rampartd = Some(rampartd);
        let mut holder = Proc::spawn(
            "holder",
            &stack.dir,
            Command::new(env!("CARGO_BIN_EXE_rampart-holder"))
                .arg("--socket")
                .arg(&stack.holder_sock)
                .arg("--log-stderr"),
        );
        wait_for_socket(&stack.holder_sock, &mut holder);
        stack.holder = Some(holder);
        stack.start_agent();
        stack
    }

    /// Starts the agent and returns once it takes notify fds (its listener socket exists: it has
    /// taken over what the holder held by then), with the time it was started.
    fn start_agent(&mut self) -> Instant {
        assert!(self.agent.is_none());
        let started = Instant::now();
        let _ = std::fs::remove_file(&self.agent_sock);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart-seccomp"));
        cmd.arg("--socket")
            .arg(&self.agent_sock)
            .arg("--daemon")
            .arg(&self.daemon_sock)
            .arg("--holder")
            .arg(&self.holder_sock)
            .arg("--log-stderr");
        if self.no_holder {
            cmd.arg("--no-holder");
        }
        let mut agent = Proc::spawn("agent", &self.dir, &mut cmd);
        wait_for_socket(&self.agent_sock, &mut agent);
        self.agent = Some(agent);
        started
    }

    /// SIGKILL to the agent (dropping the process kills it), and waits for it to be gone.
    fn kill_agent(&mut self) {
        drop(self.agent.take().expect("the agent runs"));
    }

    /// SIGTERM to the agent, and waits for its clean exit.
    fn stop_agent(&mut self) {
        self.agent.take().expect("the agent runs").terminate();
    }

    fn holder(&self) -> HolderClient {
        HolderClient::new(&self.holder_sock)
    }

    fn profile(&self) -> PathBuf {
        write_profile(
            &self.dir,
            &self.agent_sock,
            NOTIFY_OPEN_EXEC,
            &[DENY_IO_URING],
        )
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        let mut entries: Vec<_> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        entries.sort();
        for p in entries {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out += &format!("--- {} (last 40 lines)\n", p.display());
            for l in tail.into_iter().rev() {
                out += l;
                out += "\n";
            }
        }
        out
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        self.agent.take();
        self.holder.take();
        self.rampartd.take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One `tick` line of the loop.
#[derive(Debug, Clone)]
struct Tick {
    i: u64,
    ok: u64,
    failed: u64,
    probe: String,
}

/// What the loop printed so far: its ticks, and every other line (FAIL lines, shell errors).
fn loop_output(log: &Path) -> (Vec<Tick>, Vec<String>) {
    let mut ticks = Vec::new();
    let mut other = Vec::new();
    for line in read_log(log).unwrap_or_default() {
        let mut w = line.text.split_whitespace();
        match w.next() {
            Some("tick") => {
                let mut num = || w.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let (i, ok, failed) = (num(), num(), num());
                ticks.push(Tick {
                    i,
                    ok,
                    failed,
                    probe: w.collect::<Vec<_>>().join(" "),
                });
            }
            _ => other.push(line.text),
        }
    }
    (ticks, other)
}

fn denied(t: &Tick) -> bool {
    t.probe.starts_with("err EPERM") || t.probe.starts_with("err EACCES")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_restart_fails_no_syscall_and_enforcement_resumes_within_a_second() {
    let Some(cri) = node().await else { return };
    let _serial = SERIAL.lock().await;
    let mut stack = Stack::start(&cri, POLICY);
    let pod = TestPod::run(
        &cri,
        &PodSpec::new(unique_name("restart")).namespace("rampart-test"),
        &[
            ContainerSpec::new(CONTAINER, "rampart.local/busybox:latest")
                .command(["/bin/sh", "-c", LOOP])
                .seccomp(SeccompProfile::Localhost(stack.profile())),
        ],
    )
    .await
    .expect("the looping pod starts under the agent");
    let log = cri
        .container_log_path(pod.container_id(CONTAINER).unwrap())
        .await
        .unwrap();

    // The loop runs under the first agent, and the blocked open is refused.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (ticks, _) = loop_output(&log);
        if ticks.len() >= 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the loop made no progress under the first agent: {:?}",
            loop_output(&log)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let held = stack.holder().list().unwrap_or_default();
    let container_id = pod.container_id(CONTAINER).unwrap().to_owned();
    if !stack.no_holder {
        assert!(
            held.iter().any(|t| t.state.state().id() == &container_id),
            "the holder does not hold the container's notify fd: {:?}",
            held.iter()
                .map(|t| t.state.state().id())
                .collect::<Vec<_>>()
        );
    }
    drop(held);

    // Restart: stop, leave a gap, start again.
    stack.stop_agent();
    let (before, _) = loop_output(&log);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (during, _) = loop_output(&log);
    // Syscalls wait in the kernel while no agent runs (at most the tick already under way lands).
    if !stack.no_holder {
        assert!(
            during.len() <= before.len() + 1,
            "the loop went on without an agent: {} ticks before the gap, {} after",
            before.len(),
            during.len()
        );
    }
    let seen = during.len();
    let up = stack.start_agent();

    // Enforcement resumes: a new tick, its probe refused, within a second of starting the agent
    // (its start, its snapshot from rampartd and the takeover included).
    let resumed = loop {
        let (ticks, other) = loop_output(&log);
        assert!(
            other.is_empty(),
            "allowed opens failed across the restart:\n{}",
            other.join("\n")
        );
        if let Some(t) = ticks.iter().skip(seen).find(|t| denied(t)) {
            break (t.clone(), up.elapsed());
        }
        assert!(
            up.elapsed() < Duration::from_secs(10),
            "no blocked open was refused within 10 s of starting the new agent; ticks since: {:?}\n{}",
            &ticks[seen.min(ticks.len())..],
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!(
        "restart: first refused open {:?} after starting the new agent (tick {})",
        resumed.1, resumed.0.i
    );

    // Let it run on, then look at everything it printed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (ticks, other) = loop_output(&log);
    let last = ticks.last().cloned().expect("ticks");
    let leaked: Vec<&Tick> = ticks.iter().filter(|t| !denied(t)).collect();
    assert!(
        other.is_empty() && last.failed == 0,
        "allowed opens failed across the restart (last tick {last:?}):\n{}",
        other.join("\n")
    );
    assert!(
        leaked.is_empty(),
        "blocked opens were not refused with EPERM/EACCES: {leaked:?}"
    );
    assert!(
        last.i >= resumed.0.i + 20 && last.ok >= last.i,
        "the loop made too little progress after the restart: {last:?} (resumed at {:?})",
        resumed.0
    );
    assert!(
        resumed.1 <= Duration::from_secs(1),
        "enforcement resumed {:?} after starting the new agent (more than a second)",
        resumed.1
    );

    eprintln!(
        "restart: {} ticks before the stop, {} after the gap, {} at the end (iteration {}, {} allowed opens, none failed)",
        before.len(),
        seen,
        ticks.len(),
        last.i,
        last.ok
    );
    if std::env::var_os("RAMPART_TEST_SHOW_LOGS").is_some() {
        eprintln!("{}", stack.logs());
    }
    pod.remove().await.unwrap();
    drop(stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_drops_the_fds_of_exited_containers() {
    let Some(cri) = node().await else { return };
    let _serial = SERIAL.lock().await;
    let stack = Stack::start(&cri, POLICY);
    if stack.no_holder {
        return;
    }
    let pod = TestPod::run(
        &cri,
        &PodSpec::new(unique_name("restart-exit")).namespace("rampart-test"),
        &[
            ContainerSpec::new(CONTAINER, "rampart.local/busybox:latest")
                .command(["/bin/sh", "-c", "while :; do sleep 1; done"])
                .seccomp(SeccompProfile::Localhost(stack.profile())),
        ],
    )
    .await
    .expect("the pod starts under the agent");
    let container_id = pod.container_id(CONTAINER).unwrap().to_owned();
    let holds = |stack: &Stack| {
        stack
            .holder()
            .list()
            .unwrap()
            .iter()
            .filter(|t| t.state.state().id() == &container_id)
            .count()
    };
    assert_eq!(
        holds(&stack),
        1,
        "the holder holds the container's notify fd"
    );
    let groups = |stack: &Stack| {
        let (_, groups) = stack.holder().list_all().unwrap();
        groups
            .iter()
            .filter(|g| g.meta.workload.container_id == container_id)
            .count()
    };
    assert_eq!(
        groups(&stack),
        1,
        "the holder holds the container's file guard group"
    );
    let wait_for = |want: usize, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = holds(&stack);
            if n == want {
                return;
            }
            assert!(Instant::now() < deadline, "{what} (it holds {n})");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // An exec'd process gets a filter and a notify fd of its own (the holder has it while the
    // process runs) and the holder drops it once the process has exited.
    let out = pod
        .exec(CONTAINER, &["sh", "-c", "sleep 0.5"])
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{out:?}");
    wait_for(
        1,
        "the holder still holds the notify fd of an exec'd process that exited 5 s ago",
    );

    pod.remove().await.unwrap();
    wait_for(
        0,
        "the holder still holds the notify fd of a container that exited 5 s ago",
    );
    let left = stack.holder().list().unwrap().len();
    assert_eq!(left, 0, "the holder holds fds of no container of ours");
    assert_eq!(
        groups(&stack),
        0,
        "the holder still holds the file guard group of a container that exited"
    );
}

/// Blocks reading /etc/shadow and running /tmp/evil (a copy of the probe the loop makes).
const KILL_POLICY: &str = "apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: KillTestShadow}
spec:
  selector: {containerNames: [kill-looper]}
  mode: enforce
  severity: High
  files:
    - {paths: [/etc/shadow], access: [read], action: block}
  processes:
    - {paths: [/tmp/evil], action: block}
";

/// Two loops that keep blocked opens (decided by the file guard) and blocked execs (by the
/// seccomp check) in flight, and print LEAK if one ever succeeds.
const KILL_LOOP: &str = r#"cp /usr/local/bin/rampart-probe /tmp/evil || exit 1
(while :; do if /tmp/evil nop 2>/dev/null; then echo LEAK-EXEC; fi; done) &
while :; do if cat /etc/shadow >/dev/null 2>&1; then echo LEAK-OPEN; fi; done"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_with_pending_opens_and_execs_lets_none_through() {
    let Some(cri) = node().await else { return };
    let _serial = SERIAL.lock().await;
    let mut stack = Stack::start(&cri, KILL_POLICY);
    if stack.no_holder {
        return;
    }
    let pod = TestPod::run(
        &cri,
        &PodSpec::new(unique_name("restart-kill")).namespace("rampart-test"),
        &[
            ContainerSpec::new("kill-looper", "rampart.local/busybox:latest")
                .command(["/bin/sh", "-c", KILL_LOOP])
                .seccomp(SeccompProfile::Localhost(stack.profile())),
        ],
    )
    .await
    .expect("the looping pod starts under the agent");
    let log = cri
        .container_log_path(pod.container_id("kill-looper").unwrap())
        .await
        .unwrap();
    let leaks = || {
        read_log(&log)
            .unwrap_or_default()
            .into_iter()
            .filter(|l| l.text.contains("LEAK"))
            .map(|l| l.text)
            .collect::<Vec<_>>()
    };

    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        // SIGKILL: whatever it had read and not answered is left behind.
        stack.kill_agent();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stack.start_agent();
        assert!(leaks().is_empty(), "round {round}: {:?}", leaks());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(leaks().is_empty(), "{:?}", leaks());

    // The container works on under the last agent: blocked things refused, allowed ones not.
    let probe = |args: &'static [&'static str]| {
        let pod = &pod;
        async move { pod.exec("kill-looper", args).await.unwrap() }
    };
    let shadow = probe(&["/usr/local/bin/rampart-probe", "open", "/etc/shadow"]).await;
    assert!(shadow.stdout_text().starts_with("err E"), "{shadow:?}");
    let hostname = probe(&["/usr/local/bin/rampart-probe", "open", "/etc/hostname"]).await;
    assert!(hostname.stdout_text().starts_with("ok "), "{hostname:?}");
    let evil = probe(&["/tmp/evil", "nop"]).await;
    assert_ne!(evil.exit_code, 0, "{evil:?}");
    assert!(leaks().is_empty(), "{:?}", leaks());
    pod.remove().await.unwrap();
    drop(stack);
}
