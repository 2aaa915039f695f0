//! rampart's NRI handler: at CreateContainer it asks rampartd what the container needs and injects
//! it (identity annotations + seccomp notify/deny rules); at StartContainer it binds the
//! container's cgroup to its workload; at Stop/RemoveContainer it unbinds; at Synchronize it binds
//! what already runs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_protos::agent::{PlanResponse, Workload};
use rampart_protos::nri::{
    ConfigureRequest, Container, ContainerState, ContainerUpdate, Event, PodSandbox,
};
use tokio::task::JoinSet;

use crate::adjust;
use crate::bind::{Binder, KnownContainers};
use crate::cgroup;
use crate::daemon::{Daemon, DaemonError};
use crate::handler::{CreateReply, EventMask, Handler, HandlerError, HandlerResult};
use crate::mode::{self, Injection, SeccompMode};
use crate::required::RequiredMemory;
use crate::seccomp_policy::{self, PolicyError};
use crate::workload;

/// Where rampart-seccomp listens unless configured otherwise.
pub const DEFAULT_SECCOMP_SOCKET: &str = "/run/rampart/seccomp.sock";
/// NRI gives a plugin 2 s per request by default; the plan must leave room for the rest.
pub const DEFAULT_PLAN_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct InjectConfig {
    /// The seccomp agent's socket: the filters' `listenerPath`.
    pub seccomp_socket: String,
    pub mode: SeccompMode,
    /// The node's config: no container may start unprotected when rampartd can't be asked.
    pub require_protection: bool,
    /// Budget for each rampartd call made while the runtime waits.
    pub daemon_timeout: Duration,
    /// Normally /sys/fs/cgroup.
    pub sys_fs_cgroup: PathBuf,
}

impl Default for InjectConfig {
    fn default() -> Self {
        InjectConfig {
            seccomp_socket: DEFAULT_SECCOMP_SOCKET.into(),
            mode: SeccompMode::Auto,
            require_protection: false,
            daemon_timeout: DEFAULT_PLAN_TIMEOUT,
            sys_fs_cgroup: PathBuf::from(cgroup::SYS_FS_CGROUP),
        }
    }
}

/// Why a container could not be given what its plan asks.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error("cannot build the seccomp adjustment: {0}")]
    Policy(#[from] PolicyError),
}

pub const SUBSCRIBED: &[Event] = &[
    Event::CreateContainer,
    Event::StartContainer,
    Event::StopContainer,
    Event::RemoveContainer,
];

pub struct RampartHandler<D> {
    daemon: Arc<D>,
    config: InjectConfig,
    /// Decided at Configure, per connection: a restarted runtime may be a newer one.
    injection: Mutex<Injection>,
    required: RequiredMemory,
    binder: Arc<Binder<D>>,
}

impl<D: Daemon> RampartHandler<D> {
    pub fn new(daemon: Arc<D>, config: InjectConfig) -> Self {
        let binder = Arc::new(Binder::new(
            daemon.clone(),
            &config.sys_fs_cgroup,
            config.daemon_timeout,
        ));
        let injection = match config.mode {
            SeccompMode::Adjustment => Injection::Adjustment,
            // Until Configure says otherwise: the mode that works on every runtime with rampart-runc.
            _ => Injection::Annotation,
        };
        RampartHandler {
            daemon,
            config,
            injection: Mutex::new(injection),
            required: RequiredMemory::default(),
            binder,
        }
    }

    /// The containers this handler has bound, for the Hello that announces them to rampartd.
    pub fn known_containers(&self) -> KnownContainers {
        self.binder.known()
    }

    pub fn injection(&self) -> Injection {
        *self.injection.lock().expect("injection lock")
    }

    async fn plan(&self, w: &Workload) -> Result<PlanResponse, DaemonError> {
        let t = self.config.daemon_timeout;
        tokio::time::timeout(t, self.daemon.plan(w))
            .await
            .unwrap_or(Err(DaemonError::Timeout {
                call: "PlanContainer",
                timeout: t,
            }))
    }

    fn inject(
        &self,
        plan: &PlanResponse,
        w: &Workload,
        c: &Container,
    ) -> Result<CreateReply, InjectError> {
        let adjust = adjust::protected(
            plan,
            w,
            c,
            self.injection(),
            &self.config.seccomp_socket,
            &seccomp_policy::existing(c),
        )?;
        Ok(CreateReply {
            adjust: Some(adjust),
            ..Default::default()
        })
    }

    /// rampartd could not be asked, or its plan could not be applied.
    fn failed(
        &self,
        w: &Workload,
        c: &Container,
        err: InjectError,
        plan_required: bool,
    ) -> HandlerResult<CreateReply> {
        let who = workload::display(w);
        let why_required = if self.config.require_protection {
            Some("rampart-nri runs with --require-protection")
        } else if plan_required {
            Some("its policy requires protection")
        } else if self.required.last_required(w) {
            Some("the last plan rampartd gave for this workload required protection")
        } else {
            None
        };
        if let Some(why) = why_required {
            tracing::error!(workload = %who, error = %err, "refusing to create the container unprotected");
            return Err(HandlerError::new(format!(
                "rampart: container {who} must not run unprotected ({why}), and protection could \
                 not be set up: {err}. Fix or start rampartd and the seccomp agent, then let the \
                 kubelet retry; or lift the requirement to let it start unprotected"
            )));
        }
        // The lead turns this into a High alert through rampartd once its event API is wired.
        tracing::error!(
            workload = %who,
            container_id = %c.id,
            error = %err,
            "container starts UNPROTECTED: rampart could not set up its policy"
        );
        Ok(CreateReply {
            adjust: adjust::unprotected(c),
            ..Default::default()
        })
    }
}

impl<D: Daemon> Handler for RampartHandler<D> {
    fn events(&self) -> EventMask {
        EventMask::of(SUBSCRIBED)
    }

    async fn configure(&self, req: &ConfigureRequest) -> HandlerResult<()> {
        let (inj, why) = mode::resolve(self.config.mode, req);
        *self.injection.lock().expect("injection lock") = inj;
        tracing::info!(seccomp_injection = %inj, reason = %why, "seccomp injection mode");
        if inj == Injection::Adjustment {
            tracing::warn!(
                "adjustment mode has been tested only against a scripted NRI 0.10 runtime, not a \
                 real containerd >= 2.2; containers whose own seccomp profile the runtime does not \
                 tell (RuntimeDefault on containerd 2.2) follow the failure policy"
            );
        }
        Ok(())
    }

    async fn synchronize(
        &self,
        pods: &[PodSandbox],
        containers: &[Container],
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        // Containers that ran before this plugin (or before a runtime restart): bind them all,
        // concurrently, so a slow rampartd costs one timeout, not one per container.
        let mut tasks = JoinSet::new();
        let mut running = 0;
        for c in containers {
            if c.state != ContainerState::ContainerRunning as i32 {
                continue;
            }
            let Some(pod) = pods.iter().find(|p| p.id == c.pod_sandbox_id) else {
                tracing::warn!(container_id = %c.id, "running container without a known pod; not bound");
                continue;
            };
            running += 1;
            let (binder, pod, c) = (self.binder.clone(), pod.clone(), c.clone());
            tasks.spawn(async move { binder.bind(&pod, &c).await });
        }
        while tasks.join_next().await.is_some() {}
        tracing::info!(running, "Synchronize: bound running containers");
        Ok(Vec::new())
    }

    async fn create_container(
        &self,
        pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<CreateReply> {
        if workload::is_sandbox(pod, c) {
            tracing::debug!("the pod's sandbox container: left alone");
            return Ok(CreateReply::default());
        }
        let started = std::time::Instant::now();
        let w = workload::workload(pod, c);
        let plan = match self.plan(&w).await {
            Ok(p) => p,
            Err(e) => return self.failed(&w, c, e.into(), false),
        };
        // What the runtime waits for, in the log: the benchmark's breakdown reads it.
        let plan_us = started.elapsed().as_micros() as u64;
        self.required.record(&w, plan.required);
        if !plan.protected {
            let adjust = adjust::unprotected(c);
            if adjust.is_some() {
                tracing::warn!(container_id = %c.id, "removing rampart.dev/ annotations from a container no policy scopes");
            }
            return Ok(CreateReply {
                adjust,
                ..Default::default()
            });
        }
        match self.inject(&plan, &w, c) {
            Ok(reply) => {
                tracing::info!(
                    container_id = %c.id,
                    policies = %plan.policies.join(","),
                    notify = ?plan.notify_syscalls,
                    deny = ?plan.deny_syscalls,
                    injection = %self.injection(),
                    plan_us,
                    handler_us = started.elapsed().as_micros() as u64,
                    "protected"
                );
                Ok(reply)
            }
            Err(e) => self.failed(&w, c, e, plan.required),
        }
    }

    async fn start_container(&self, pod: &PodSandbox, c: &Container) -> HandlerResult<()> {
        // containerd sends StartContainer after runc create: the cgroup exists and the pid is
        // set, and binding before the process runs means its first events already map.
        self.binder.bind(pod, c).await;
        Ok(())
    }

    async fn stop_container(
        &self,
        _pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        self.binder.unbind(c).await;
        Ok(Vec::new())
    }

    async fn remove_container(&self, _pod: &PodSandbox, c: &Container) -> HandlerResult<()> {
        // Again at removal: a container stopped while this plugin was not connected was never
        // unbound at StopContainer.
        self.binder.unbind(c).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::stand_in::{Behaviour, StandInDaemon};
    use crate::runc_wrapper::SECCOMP_ANNOTATION;
    use crate::seccomp_merge::Additions;
    use rampart_protos::nri::LinuxContainer;

    fn pod(app: &str) -> PodSandbox {
        PodSandbox {
            id: format!("sb-{app}"),
            name: format!("{app}-pod"),
            uid: format!("uid-{app}"),
            namespace: "shop".into(),
            labels: [("app".to_string(), app.to_string())].into(),
            ..Default::default()
        }
    }

    fn ctr(pod: &PodSandbox, name: &str) -> Container {
        Container {
            id: format!("{}-{name}", pod.id),
            pod_sandbox_id: pod.id.clone(),
            name: name.into(),
            ..Default::default()
        }
    }

    /// A fake pure-v2 hierarchy with one container's cgroup in it.
    fn fake_cgroups(tag: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("rampart-inject-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(root.join("pods/p1/c1")).unwrap();
        std::fs::write(root.join("cgroup.controllers"), "").unwrap();
        root
    }

    fn handler(
        daemon: StandInDaemon,
        config: InjectConfig,
    ) -> (Arc<StandInDaemon>, RampartHandler<StandInDaemon>) {
        let d = Arc::new(daemon);
        (d.clone(), RampartHandler::new(d, config))
    }

    #[tokio::test]
    async fn scoped_container_gets_the_seccomp_annotation() {
        let (d, h) = handler(StandInDaemon::default(), InjectConfig::default());
        let p = pod("nginx");
        let reply = h.create_container(&p, &ctr(&p, "web")).await.unwrap();
        let adj = reply.adjust.expect("an adjustment");
        let add: Additions = serde_json::from_str(&adj.annotations[SECCOMP_ANNOTATION]).unwrap();
        assert_eq!(add.notify, ["openat", "execve"]);
        assert_eq!(add.deny, ["io_uring_setup"]);
        assert_eq!(add.listener_path, DEFAULT_SECCOMP_SOCKET);
        assert_eq!(add.listener_metadata, "rampart/v1 shop/nginx-pod/web");
        assert_eq!(
            adj.annotations[adjust::POLICIES_ANNOTATION],
            "stand-in-nginx"
        );
        let asked = d.plans.lock().unwrap();
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].pod_labels["app"], "nginx");
    }

    #[tokio::test]
    async fn unscoped_container_is_left_alone() {
        let (_, h) = handler(StandInDaemon::default(), InjectConfig::default());
        let p = pod("redis");
        let reply = h.create_container(&p, &ctr(&p, "db")).await.unwrap();
        assert!(reply.adjust.is_none());
    }

    #[tokio::test]
    async fn smuggled_annotation_is_stripped_from_an_unscoped_container() {
        let (_, h) = handler(StandInDaemon::default(), InjectConfig::default());
        let p = pod("redis");
        let mut c = ctr(&p, "db");
        c.annotations.insert(SECCOMP_ANNOTATION.into(), "{}".into());
        let adj = h.create_container(&p, &c).await.unwrap().adjust.unwrap();
        assert_eq!(
            adj.annotations.keys().collect::<Vec<_>>(),
            [&format!("-{SECCOMP_ANNOTATION}")]
        );
    }

    #[tokio::test]
    async fn the_sandbox_container_is_never_planned_for() {
        let (d, h) = handler(StandInDaemon::default(), InjectConfig::default());
        let p = pod("nginx");
        let mut pause = ctr(&p, "pause");
        pause.id = p.id.clone();
        let reply = h.create_container(&p, &pause).await.unwrap();
        assert!(reply.adjust.is_none());
        assert!(d.plans.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn daemon_down_and_not_required_starts_unprotected_but_still_strips() {
        let d = StandInDaemon::default();
        d.set(Behaviour::Unreachable);
        let (_, h) = handler(d, InjectConfig::default());
        let p = pod("nginx");
        let mut c = ctr(&p, "web");
        assert!(h.create_container(&p, &c).await.unwrap().adjust.is_none());
        c.annotations.insert(SECCOMP_ANNOTATION.into(), "{}".into());
        let adj = h.create_container(&p, &c).await.unwrap().adjust.unwrap();
        assert!(
            adj.annotations
                .contains_key(&format!("-{SECCOMP_ANNOTATION}"))
        );
    }

    #[tokio::test]
    async fn daemon_down_with_require_protection_fails_the_creation() {
        let d = StandInDaemon::default();
        d.set(Behaviour::Unreachable);
        let config = InjectConfig {
            require_protection: true,
            ..Default::default()
        };
        let (_, h) = handler(d, config);
        let p = pod("redis");
        let err = h.create_container(&p, &ctr(&p, "db")).await.unwrap_err();
        assert!(err.0.contains("shop/redis-pod/db"), "{err}");
        assert!(err.0.contains("--require-protection"), "{err}");
        assert!(err.0.contains("rampartd is not reachable"), "{err}");
    }

    #[tokio::test]
    async fn last_plan_required_makes_a_later_outage_fail_closed() {
        let d = StandInDaemon {
            required: true,
            ..Default::default()
        };
        let (d, h) = handler(d, InjectConfig::default());
        let p = pod("nginx");
        assert!(h.create_container(&p, &ctr(&p, "web")).await.is_ok());
        d.set(Behaviour::Unreachable);
        // The pod recreated by its controller: another name and uid, same workload.
        let mut again = pod("nginx");
        again.name = "nginx-pod-2".into();
        again.uid = "uid-2".into();
        let err = h
            .create_container(&again, &ctr(&again, "web"))
            .await
            .unwrap_err();
        assert!(err.0.contains("last plan"), "{err}");
        // A workload never planned as required still starts.
        let other = pod("redis");
        assert!(h.create_container(&other, &ctr(&other, "db")).await.is_ok());
    }

    #[tokio::test]
    async fn a_slow_daemon_is_cut_off_by_the_timeout() {
        let d = StandInDaemon::default();
        d.set(Behaviour::Slow(Duration::from_secs(5)));
        let config = InjectConfig {
            require_protection: true,
            daemon_timeout: Duration::from_millis(50),
            ..Default::default()
        };
        let (_, h) = handler(d, config);
        let p = pod("nginx");
        let started = std::time::Instant::now();
        let err = h.create_container(&p, &ctr(&p, "web")).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(err.0.contains("did not answer PlanContainer"), "{err}");
    }

    #[tokio::test]
    async fn configure_picks_the_mode_and_adjustment_mode_needs_the_profile() {
        let d = StandInDaemon {
            required: true,
            ..Default::default()
        };
        let (_, h) = handler(d, InjectConfig::default());
        assert_eq!(h.injection(), Injection::Annotation);
        let req = |v: &str| ConfigureRequest {
            runtime_name: "containerd".into(),
            runtime_version: v.into(),
            ..Default::default()
        };
        h.configure(&req("v2.2.1")).await.unwrap();
        assert_eq!(h.injection(), Injection::Adjustment);
        // The runtime does not tell us the container's profile (see seccomp_policy): required
        // protection that cannot be merged fails the creation rather than widen the profile.
        let p = pod("nginx");
        let err = h.create_container(&p, &ctr(&p, "web")).await.unwrap_err();
        assert!(err.0.contains("its policy requires protection"), "{err}");
        assert!(err.0.contains("--seccomp-mode annotation"), "{err}");
        h.configure(&req("2.1.9~ds1-1")).await.unwrap();
        assert_eq!(h.injection(), Injection::Annotation);
    }

    #[tokio::test]
    async fn start_binds_stop_and_remove_unbind() {
        let root = fake_cgroups("start");
        let config = InjectConfig {
            sys_fs_cgroup: root.clone(),
            ..Default::default()
        };
        let (d, h) = handler(StandInDaemon::default(), config);
        let p = pod("nginx");
        let mut c = ctr(&p, "web");
        c.pid = 4242;
        c.linux = Some(LinuxContainer {
            cgroups_path: "/pods/p1/c1".into(),
            ..Default::default()
        });
        h.start_container(&p, &c).await.unwrap();
        {
            let binds = d.binds.lock().unwrap();
            assert_eq!(binds.len(), 1);
            use std::os::unix::fs::MetadataExt;
            let ino = std::fs::metadata(root.join("pods/p1/c1")).unwrap().ino();
            assert_eq!(binds[0].cgroup_id, ino);
            assert_eq!(binds[0].pid, 4242);
            assert_eq!(binds[0].workload.as_ref().unwrap().container_id, c.id);
        }
        h.stop_container(&p, &c).await.unwrap();
        h.remove_container(&p, &c).await.unwrap();
        assert_eq!(*d.unbinds.lock().unwrap(), [c.id.clone(), c.id.clone()]);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[tokio::test]
    async fn synchronize_binds_running_containers_only() {
        let root = fake_cgroups("sync");
        let config = InjectConfig {
            sys_fs_cgroup: root.clone(),
            ..Default::default()
        };
        let (d, h) = handler(StandInDaemon::default(), config);
        let p = pod("nginx");
        let linux = Some(LinuxContainer {
            cgroups_path: "/pods/p1/c1".into(),
            ..Default::default()
        });
        let mut running = ctr(&p, "web");
        running.state = ContainerState::ContainerRunning as i32;
        running.linux = linux.clone();
        let mut stopped = ctr(&p, "old");
        stopped.state = ContainerState::ContainerStopped as i32;
        stopped.linux = linux;
        let mut orphan = running.clone();
        orphan.id = "orphan".into();
        orphan.pod_sandbox_id = "gone".into();
        h.synchronize(
            std::slice::from_ref(&p),
            &[running.clone(), stopped, orphan],
        )
        .await
        .unwrap();
        let binds = d.binds.lock().unwrap();
        assert_eq!(binds.len(), 1);
        assert_eq!(binds[0].workload.as_ref().unwrap().container_id, running.id);
        std::fs::remove_dir_all(root).unwrap();
    }
}
