//! rampart's injection against the real node (containerd 2.1.9, NRI 0.8: annotation mode).
//!
//! 1. `annotation_reaches_runc_through_rampart_runc`: the handler's `rampart.dev/seccomp`
//!    annotation, given to a container run by `ctr` with `rampart-runc` as its runc binary, becomes
//!    a seccomp filter: runc hands the notify fd to an in-process seccomp agent listener with the
//!    workload's listenerMetadata, notified syscalls reach the agent, and a denied one fails with
//!    EPERM inside the container. (`ctr`, because the node's containerd does not yet use
//!    rampart-runc as BinaryName for CRI pods.)
//! 2. `cri_pods_get_the_annotation_only_when_scoped`: the handler registered on containerd's NRI
//!    socket, two pods through CRI: the scoped one's OCI spec carries the annotation, the unscoped
//!    one's does not, and the scoped container's cgroup was bound with the inode of its real v2
//!    cgroup directory.
//!
//! rampartd is replaced by the in-process stand-in (`common::stand_in`).
//!
//! Needs root and the node (`scripts/node up`). Without them it prints why and passes as skipped;
//! under `make test` (RAMPART_NODE_TESTS set) a missing node fails the test.

mod common;

use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::stand_in::{Behaviour, Rule, StandInDaemon};
use common::{IMAGE, NAMESPACE, cri_client, remove_pods, runtime_spec};
use k8s_cri::v1::PodSandboxConfig;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use rampart_nri::adjust::POLICIES_ANNOTATION;
use rampart_nri::inject::{InjectConfig, RampartHandler};
use rampart_nri::nri::{ConfigureRequest, Container, ContainerUpdate, PodSandbox};
use rampart_nri::runc_wrapper::SECCOMP_ANNOTATION;
use rampart_nri::seccomp_merge::Additions;
use rampart_nri::{CreateReply, EventMask, Handler, HandlerResult, Plugin, PluginConfig};
use rampart_seccomp::outcome::Answer;
use rampart_seccomp::supervision::listener::Listener;
use rampart_seccomp::supervision::supervisor::{self, Handler as NotifyHandler, Phase};
use rampart_seccomp::sys::notify::Notification;
use rampart_seccomp::workload::Workload as NotifyWorkload;
use tonic::transport::Channel;

const NRI_SOCKET: &str = "/var/run/nri/nri.sock";
const SYS_OPENAT: i32 = 257;
const SYS_EXECVE: i32 = 59;

fn node_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("RAMPART_NODE_DIR").unwrap_or_else(|_| "/var/lib/rampart-node".into()),
    )
}

fn cri_socket() -> PathBuf {
    std::env::var_os("RAMPART_CRI_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| node_dir().join("containerd.sock"))
}

/// True when the test can run on the node; otherwise says why (under RAMPART_NODE_TESTS, fails).
fn node_or_skip(test: &str) -> bool {
    let why = match std::fs::metadata("/proc/self") {
        Ok(m) if m.uid() != 0 => Some(format!("needs root (running as uid {})", m.uid())),
        Err(e) => Some(format!("cannot tell who runs the test: {e}")),
        Ok(_) => [(cri_socket(), "CRI"), (PathBuf::from(NRI_SOCKET), "NRI")]
            .into_iter()
            .find(|(s, _)| !s.exists())
            .map(|(s, what)| {
                format!(
                    "the node is not up: no {what} socket at {} (run scripts/node up)",
                    s.display()
                )
            }),
    };
    common::runs_or_skips(test, why)
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rampart-inject-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Records what runc handed over and which syscalls were notified; lets every notified call run.
#[derive(Default)]
struct Recorder {
    handoffs: Mutex<Vec<NotifyWorkload>>,
    notified: Mutex<Vec<i32>>,
}

struct RecordingHandler(Arc<Recorder>);

impl NotifyHandler for RecordingHandler {
    fn handle(
        &self,
        _w: &NotifyWorkload,
        _fd: BorrowedFd<'_>,
        _phase: &mut Phase,
        n: &Notification,
    ) -> Answer {
        self.0.notified.lock().unwrap().push(n.nr);
        Answer::Continue
    }
}

#[test]
fn annotation_reaches_runc_through_rampart_runc() {
    if !node_or_skip("annotation_reaches_runc_through_rampart_runc") {
        return;
    }
    let dir = tempdir("ctr");
    let listener_path = dir.join("seccomp.sock");
    let rt = tokio::runtime::Runtime::new().unwrap();

    // The plugin's own output for a scoped container, as rampart-nri would return it to containerd.
    // mkdir/mkdirat are denied because busybox can make them (it cannot call io_uring_setup).
    let daemon = Arc::new(StandInDaemon {
        rule: Rule {
            notify: vec!["openat".into(), "execve".into()],
            deny: vec!["mkdir".into(), "mkdirat".into()],
            ..Default::default()
        },
        ..Default::default()
    });
    let handler = RampartHandler::new(
        daemon,
        InjectConfig {
            seccomp_socket: listener_path.display().to_string(),
            ..Default::default()
        },
    );
    let id = format!("rampart-inject-{}", std::process::id());
    let pod = PodSandbox {
        id: "sb".into(),
        name: "web".into(),
        namespace: NAMESPACE.into(),
        labels: [("app".to_string(), "nginx".to_string())].into(),
        ..Default::default()
    };
    let ctr = Container {
        id: id.clone(),
        pod_sandbox_id: "sb".into(),
        name: "nginx".into(),
        ..Default::default()
    };
    let reply = rt.block_on(handler.create_container(&pod, &ctr)).unwrap();
    let annotation = reply.adjust.unwrap().annotations[SECCOMP_ANNOTATION].clone();
    let additions: Additions = serde_json::from_str(&annotation).unwrap();
    assert_eq!(
        additions.listener_metadata,
        format!("rampart/v1 {NAMESPACE}/web/nginx")
    );

    let recorder = Arc::new(Recorder::default());
    let listener = rt
        .block_on(async { Listener::bind(&listener_path) })
        .unwrap();
    let rec = recorder.clone();
    rt.spawn(async move {
        loop {
            match listener.accept().await {
                Ok(incoming) => {
                    let Ok(h) = incoming.handoff().await else {
                        continue;
                    };
                    let w = Arc::new(NotifyWorkload::from_state(&h.state));
                    rec.handoffs.lock().unwrap().push((*w).clone());
                    let handler: Arc<dyn NotifyHandler> = Arc::new(RecordingHandler(rec.clone()));
                    supervisor::spawn(h.notify_fd, w, handler).unwrap();
                }
                Err(e) => eprintln!("listener: {e}"),
            }
        }
    });

    let rampart_runc = env!("CARGO_BIN_EXE_rampart-runc");
    let out = Command::new("timeout")
        .args(["60", "ctr", "--address"])
        .arg(cri_socket())
        .args([
            "-n",
            "k8s.io",
            "run",
            "--rm",
            "--seccomp",
            "--runc-binary",
            rampart_runc,
        ])
        .arg("--annotation")
        .arg(format!("{SECCOMP_ANNOTATION}={annotation}"))
        .args([IMAGE, &id, "sh", "-c"])
        .arg("cat /etc/passwd >/dev/null && echo read-ok; mkdir /tmp/denied; echo mkdir-exit=$?")
        .output()
        .expect("ctr runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("container stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(out.status.success(), "ctr failed: {stdout}\n{stderr}");
    assert!(
        stdout.contains("read-ok"),
        "a notified open failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("mkdir-exit=1"),
        "mkdir was not denied:\n{stdout}\n{stderr}"
    );
    assert!(
        format!("{stdout}{stderr}").contains("Operation not permitted"),
        "the denial was not EPERM:\n{stdout}\n{stderr}"
    );

    let handoffs = recorder.handoffs.lock().unwrap();
    let ours: Vec<_> = handoffs.iter().filter(|w| w.container_id == id).collect();
    assert!(
        !ours.is_empty(),
        "runc never handed over the notify fd: {handoffs:?}"
    );
    assert_eq!(
        ours[0].metadata.as_deref(),
        Some(additions.listener_metadata.as_str()),
        "listenerMetadata did not travel from the annotation to the agent"
    );
    let notified = recorder.notified.lock().unwrap();
    assert!(
        notified.contains(&SYS_EXECVE),
        "execve not notified: {notified:?}"
    );
    assert!(
        notified.contains(&SYS_OPENAT),
        "openat not notified: {notified:?}"
    );
    println!(
        "agent got the fd with listenerMetadata {:?}; {} notifications",
        ours[0].metadata,
        notified.len()
    );
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
}

/// RampartHandler, and a signal once the runtime has synchronized the plugin.
struct Synced<H> {
    inner: H,
    synced: Arc<tokio::sync::Notify>,
}

impl<H: Handler> Handler for Synced<H> {
    fn events(&self) -> EventMask {
        self.inner.events()
    }
    async fn configure(&self, req: &ConfigureRequest) -> HandlerResult<()> {
        self.inner.configure(req).await
    }
    async fn synchronize(
        &self,
        pods: &[PodSandbox],
        containers: &[Container],
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        let r = self.inner.synchronize(pods, containers).await;
        self.synced.notify_one();
        r
    }
    async fn create_container(&self, p: &PodSandbox, c: &Container) -> HandlerResult<CreateReply> {
        self.inner.create_container(p, c).await
    }
    async fn start_container(&self, p: &PodSandbox, c: &Container) -> HandlerResult<()> {
        self.inner.start_container(p, c).await
    }
    async fn stop_container(
        &self,
        p: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        self.inner.stop_container(p, c).await
    }
    async fn remove_container(&self, p: &PodSandbox, c: &Container) -> HandlerResult<()> {
        self.inner.remove_container(p, c).await
    }
}

/// Runs a one-container (`main`) pod labelled app=<app> on the node; returns the container id.
async fn run_pod(
    cri: &mut RuntimeServiceClient<Channel>,
    pod: &str,
    app: &str,
    sandboxes: &mut Vec<String>,
) -> Result<String, String> {
    let config = PodSandboxConfig {
        labels: [("app".to_string(), app.to_string())].into(),
        ..common::node_pod(pod)
    };
    common::run_pod(cri, config, "main", sandboxes).await
}

/// One in-process rampart plugin at a time: two rampart-nri instances on a node fight (each
/// removes the other's `rampart.dev/` annotations as foreign), as they would in production.
static ONE_PLUGIN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Registers RampartHandler (backed by `daemon`) on the node's NRI socket under its own name, and
/// returns once the runtime has synchronized it.
/// containerd runs runc through rampart-runc on this node, so a protected test pod needs a seccomp
/// agent at its filter's listenerPath: one in this test process, answering CONTINUE, at a socket
/// of the test's own (never the node's /run/rampart/seccomp.sock).
fn test_agent() -> InjectConfig {
    let sock =
        std::env::temp_dir().join(format!("rampart-inject-agent-{}.sock", std::process::id()));
    static STARTED: std::sync::Once = std::sync::Once::new();
    let path = sock.clone();
    // Its own thread and runtime: each #[tokio::test] has a runtime that ends with the test.
    STARTED.call_once(move || {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("test agent runtime");
            rt.block_on(async move {
                let listener = Listener::bind(&path).expect("test agent socket");
                ready_tx.send(()).unwrap();
                loop {
                    let Ok(incoming) = listener.accept().await else {
                        continue;
                    };
                    tokio::spawn(async move {
                        if let Ok(h) = incoming.handoff().await {
                            let w = Arc::new(NotifyWorkload::from_state(&h.state));
                            let handler: Arc<dyn NotifyHandler> =
                                Arc::new(RecordingHandler(Arc::new(Recorder::default())));
                            let _ = supervisor::spawn(h.notify_fd, w, handler);
                        }
                    });
                }
            });
        });
        ready_rx.recv().expect("test agent started");
    });
    InjectConfig {
        seccomp_socket: sock.display().to_string(),
        ..InjectConfig::default()
    }
}

async fn start_plugin(
    daemon: Arc<StandInDaemon>,
    name: &str,
    index: &str,
) -> tokio::task::JoinHandle<()> {
    let handler = RampartHandler::new(daemon, test_agent());
    let name = format!("rampart{name}{}", std::process::id());
    let config = PluginConfig::new(NRI_SOCKET, name, index).unwrap();
    let synced = Arc::new(tokio::sync::Notify::new());
    let plugin = Plugin::new(
        config,
        Synced {
            inner: handler,
            synced: synced.clone(),
        },
    );
    let task = tokio::spawn(async move { plugin.run().await });
    // Pods created before the plugin is synchronized would not be seen by it.
    if tokio::time::timeout(Duration::from_secs(15), synced.notified())
        .await
        .is_err()
    {
        task.abort();
        panic!(
            "the in-process plugin did not get through registration and Synchronize on {NRI_SOCKET}"
        );
    }
    task
}

/// The v2 cgroup directory of a running process, from /proc/<pid>/cgroup (hybrid or pure v2).
fn v2_cgroup_dir(pid: u32) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("pid {pid} has no v2 cgroup: {text}"));
    let root = rampart_nri::cgroup::v2_root(Path::new("/sys/fs/cgroup")).unwrap();
    root.join(rel.trim_start_matches('/'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_pods_get_the_annotation_only_when_scoped() {
    if !node_or_skip("cri_pods_get_the_annotation_only_when_scoped") {
        return;
    }
    let pid = std::process::id();
    let daemon = Arc::new(StandInDaemon::default());
    let handler = RampartHandler::new(daemon.clone(), test_agent());
    let config = PluginConfig::new(NRI_SOCKET, format!("rampartinject{pid}"), "92").unwrap();
    let synced = Arc::new(tokio::sync::Notify::new());
    let plugin = Plugin::new(
        config,
        Synced {
            inner: handler,
            synced: synced.clone(),
        },
    );
    let plugin_task = tokio::spawn(async move { plugin.run().await });
    // Pods created before the plugin is synchronized would not be seen by it.
    if tokio::time::timeout(Duration::from_secs(15), synced.notified())
        .await
        .is_err()
    {
        plugin_task.abort();
        panic!(
            "the in-process plugin did not get through registration and Synchronize on {NRI_SOCKET}"
        );
    }

    let mut cri = cri_client(cri_socket())
        .await
        .expect("connect to containerd's CRI socket");
    let mut sandboxes = Vec::new();
    let result: Result<(), String> = async {
        let scoped = run_pod(
            &mut cri,
            &format!("inject-nginx-{pid}"),
            "nginx",
            &mut sandboxes,
        )
        .await?;
        let unscoped = run_pod(
            &mut cri,
            &format!("inject-other-{pid}"),
            "other",
            &mut sandboxes,
        )
        .await?;

        let (spec, init_pid) = runtime_spec(&mut cri, &scoped).await?;
        let ann = &spec["annotations"];
        let seccomp = ann[SECCOMP_ANNOTATION]
            .as_str()
            .ok_or_else(|| format!("scoped container has no {SECCOMP_ANNOTATION}: {ann}"))?;
        let add: Additions = serde_json::from_str(seccomp).map_err(|e| e.to_string())?;
        assert_eq!(add.notify, ["openat", "execve"]);
        assert_eq!(add.deny, ["io_uring_setup"]);
        assert_eq!(add.listener_path, test_agent().seccomp_socket);
        assert_eq!(
            add.listener_metadata,
            format!("rampart/v1 {NAMESPACE}/inject-nginx-{pid}/main")
        );
        assert_eq!(ann[POLICIES_ANNOTATION], "stand-in-nginx");
        println!("scoped container's OCI annotations: {ann}");

        let (spec, _) = runtime_spec(&mut cri, &unscoped).await?;
        let keys: Vec<&String> = spec["annotations"]
            .as_object()
            .map(|m| m.keys().filter(|k| k.starts_with("rampart.dev/")).collect())
            .unwrap_or_default();
        assert!(keys.is_empty(), "unscoped container got {keys:?}");

        // StartContainer bound the scoped container to the inode of its real v2 cgroup.
        let deadline = Instant::now() + Duration::from_secs(5);
        let bound = loop {
            if let Some(b) = daemon
                .binds
                .lock()
                .unwrap()
                .iter()
                .find(|b| {
                    b.workload
                        .as_ref()
                        .is_some_and(|w| w.container_id == scoped)
                })
                .cloned()
            {
                break b;
            }
            if Instant::now() > deadline {
                return Err(format!("no BindContainer for {scoped}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let dir = v2_cgroup_dir(init_pid);
        let ino = std::fs::metadata(&dir).map_err(|e| e.to_string())?.ino();
        assert_eq!(
            bound.cgroup_id,
            ino,
            "bound {bound:?}, real cgroup {}",
            dir.display()
        );
        assert_eq!(bound.pid, init_pid);
        println!(
            "bound cgroup id {} = inode of {}",
            bound.cgroup_id,
            dir.display()
        );
        Ok(())
    }
    .await;
    remove_pods(&mut cri, &sandboxes).await;
    plugin_task.abort();
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Fail closed through the real runtime: a workload whose last plan said `required` cannot be
/// created while rampartd is unreachable, and containerd's CreateContainer error says why. The
/// rule scopes a label unique to this test, so pods of anyone else on the node are not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_workload_fails_closed_when_rampartd_is_down() {
    if !node_or_skip("required_workload_fails_closed_when_rampartd_is_down") {
        return;
    }
    let pid = std::process::id();
    let app = format!("failclosed{pid}");
    let daemon = Arc::new(StandInDaemon {
        rule: Rule {
            app: app.clone(),
            ..Default::default()
        },
        required: true,
        ..Default::default()
    });
    let _one = ONE_PLUGIN.lock().await;
    let plugin_task = start_plugin(daemon.clone(), "failclosed", "93").await;
    let mut cri = cri_client(cri_socket())
        .await
        .expect("connect to containerd's CRI socket");
    let mut sandboxes = Vec::new();
    let first = run_pod(&mut cri, &format!("fc-a-{pid}"), &app, &mut sandboxes).await;
    daemon.set(Behaviour::Unreachable);
    let second = run_pod(&mut cri, &format!("fc-b-{pid}"), &app, &mut sandboxes).await;
    remove_pods(&mut cri, &sandboxes).await;
    plugin_task.abort();
    first.expect("the first pod, planned as required, starts");
    let err = second.expect_err("a required workload started while rampartd was down");
    println!("containerd refused the second pod: {err}");
    assert!(err.contains("must not run unprotected"), "{err}");
    assert!(err.contains("last plan"), "{err}");
    assert!(err.contains("rampartd is not reachable"), "{err}");
}
