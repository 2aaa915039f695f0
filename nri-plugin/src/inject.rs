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
use crate::guard_ready;
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
    /// How long StartContainer waits for the file guard to watch a container (`guard_ready`).
    pub guard_wait: Duration,
}

impl Default for InjectConfig {
    fn default() -> Self {
        InjectConfig {
            seccomp_socket: DEFAULT_SECCOMP_SOCKET.into(),
            mode: SeccompMode::Auto,
            require_protection: false,
            daemon_timeout: DEFAULT_PLAN_TIMEOUT,
            sys_fs_cgroup: PathBuf::from(cgroup::SYS_FS_CGROUP),
            guard_wait: guard_ready::DEFAULT_WAIT,
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

    /// A container whose execs only the seccomp agent's file guard decides starts once the guard
    /// watches it; if it does not in time, the failure policy decides.
    async fn await_file_guard(&self, pod: &PodSandbox, c: &Container) -> HandlerResult<()> {
        if c.annotations
            .get(adjust::EXEC_GUARD_ANNOTATION)
            .map(String::as_str)
            != Some(adjust::EXEC_GUARD_FANOTIFY)
        {
            return Ok(());
        }
        let file = guard_ready::ready_file(&self.config.seccomp_socket, &c.id);
        let wait = self.config.guard_wait;
        let ready = match &file {
            Some(f) => guard_ready::wait(f, wait).await,
            None => false,
        };
        if ready {
            return Ok(());
        }
        let w = workload::workload(pod, c);
        let who = workload::display(&w);
        if self.config.require_protection || self.required.last_required(&w) {
            tracing::error!(workload = %who, container_id = %c.id, "refusing to start the container: the file guard does not watch it");
            return Err(HandlerError::new(format!(
                "rampart: container {who} must not run unprotected, and the seccomp agent's file \
                 guard, which decides its execs, did not report watching it within {wait:?} (no \
                 {}). See rampart-seccomp's log; the kubelet retries the start",
                file.map(|f| f.display().to_string()).unwrap_or_default()
            )));
        }
        tracing::error!(workload = %who, container_id = %c.id,
            "container starts with its execs UNCHECKED: the seccomp agent's file guard did not report watching it in time");
        Ok(())
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
            tasks.spawn(async move {
                // Failures are logged; a running container is not stopped for them.
                let _ = binder.bind(&pod, &c).await;
            });
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
        // containerd sends StartContainer after runc create and before the process runs: the
        // cgroup exists and the pid is set.
        self.await_file_guard(pod, c).await?;
        // Binding before the process runs means its first events already map, and that
        // rampartd's kernel enforcement (ingress) is in place before the workload listens.
        let Err(why) = self.binder.bind(pod, c).await else {
            return Ok(());
        };
        let w = workload::workload(pod, c);
        if self.config.require_protection || self.required.last_required(&w) {
            let who = workload::display(&w);
            tracing::error!(workload = %who, container_id = %c.id, "refusing to start the container: it could not be bound");
            return Err(HandlerError::new(format!(
                "rampart: container {who} must not run unprotected, and binding it to rampartd \
                 failed: {why}. See rampartd's log; the kubelet retries the start"
            )));
        }
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
