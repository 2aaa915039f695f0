//! A real rampartd agent API on a temporary socket, for the api_* tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rampart_protos::agent::{PlanResponse, Workload};
use rampartd::api::{Daemon, DaemonInfo, Mechanisms, Planner, ReportedEvent, Server, ServerConfig};
use rampartd::registry::Registry;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub const T: Duration = Duration::from_secs(5);

/// Protects namespace "prod"; panics for namespace "panic" (to test that a panicking handler
/// becomes an error answer).
pub struct TestPlanner;

impl Planner for TestPlanner {
    fn plan(&self, w: &Workload, _node: Mechanisms) -> PlanResponse {
        assert_ne!(w.namespace, "panic", "test planner asked to panic");
        PlanResponse {
            protected: w.namespace == "prod",
            required: false,
            notify_syscalls: vec!["openat".into(), "execve".into()],
            deny_syscalls: vec!["io_uring_setup".into()],
            policies: vec![format!("policy-for-{}", w.container_name)],
            snapshot_version: 7,
            ..Default::default()
        }
    }
}

/// A fresh directory under /tmp that does not exist yet (the server creates it).
pub fn socket_path(test: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rampart-api-{}-{}-{test}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("rampartd.sock")
}

pub struct Harness {
    pub daemon: Arc<Daemon>,
    pub events: mpsc::Receiver<ReportedEvent>,
    pub path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Harness {
    pub async fn start(test: &str) -> Harness {
        Self::start_with(socket_path(test), 64, |_| {}).await
    }

    pub async fn start_with(
        path: PathBuf,
        event_capacity: usize,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Harness {
        let (daemon, events) = Daemon::new(
            DaemonInfo::new("node-a"),
            Arc::new(TestPlanner),
            Arc::new(Registry::new()),
            event_capacity,
        );
        let mut config = ServerConfig {
            socket: path.clone(),
            ..ServerConfig::default()
        };
        tweak(&mut config);
        let server = Server::bind(config, daemon.clone()).expect("bind the agent API");
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        Harness {
            daemon,
            events,
            path,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and waits until it has closed its connections and removed its socket.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn workload(ns: &str, pod: &str, ctr: &str, id: &str) -> Workload {
    Workload {
        namespace: ns.into(),
        pod_name: pod.into(),
        pod_uid: format!("uid-{pod}"),
        container_name: ctr.into(),
        container_id: id.into(),
        image: "nginx:1.25".into(),
        ..Default::default()
    }
}
