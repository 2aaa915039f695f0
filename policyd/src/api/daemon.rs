//! [`Daemon`]: rampartd's side of the agent API for everything that does not need the policy
//! language. Planning a container is asked of a [`Planner`]; snapshots are published into it by
//! the policy loader; reported events come out of it on a channel for the alert pipeline.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rampart_protos::agent::{
    AgentKind, BindRequest, BindResponse, EXEC_GUARD_ENFORCER, Event, HelloRequest, HelloResponse,
    Mechanism, PlanRequest, PlanResponse, PolicySource, ReportRequest, ReportResponse, SensorCount,
    SnapshotRequest, SnapshotResponse, StatusCounters, StatusRequest, StatusResponse,
    UnbindRequest, UnbindResponse, Workload,
};
use tokio::sync::{mpsc, watch};

use super::kernel::KernelAuditor;
use super::service::DaemonService;
use super::status::{StatusSource, unix_ms};
use super::{ApiError, CallContext, Peer};
use crate::registry::{ContainerEntry, Registry};

/// Decides what a container needs injected; `planner::SnapshotPlanner` implements it from the
/// compiled policy snapshot.
pub trait Planner: Send + Sync + 'static {
    fn plan(&self, workload: &Workload, node: Mechanisms) -> PlanResponse;
}

/// What the node's connected agents said they can do: what a plan may rely on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mechanisms {
    /// The seccomp agent decides execs in its file guard (`EXEC_GUARD_ENFORCER`).
    pub exec_guard: bool,
}

/// What rampartd says about itself in Hello.
#[derive(Debug, Clone)]
pub struct DaemonInfo {
    pub version: String,
    pub node_name: String,
}

impl DaemonInfo {
    pub fn new(node_name: impl Into<String>) -> Self {
        DaemonInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            node_name: node_name.into(),
        }
    }
}

/// An agent that said Hello, for `rampartctl status`.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentInfo {
    pub kind: AgentKind,
    pub version: String,
    /// The pid the agent reported.
    pub pid: u32,
    /// The pid the kernel reported for its connection.
    pub peer_pid: Option<i32>,
    pub enforcers: Vec<String>,
    pub mechanisms: Vec<Mechanism>,
    /// Its kernel sensors' counts, as its last report gave them.
    pub sensors: Vec<SensorCount>,
    pub connected_at: SystemTime,
    /// None while its connection is up.
    pub disconnected_at: Option<SystemTime>,
    pub conn_id: u64,
}

/// The policy set agents compile. Version 0: nothing published yet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub version: u64,
    pub policies: Arc<Vec<PolicySource>>,
}

/// A reported event with the container it came from, if the registry knows it.
#[derive(Debug, Clone)]
pub struct ReportedEvent {
    pub event: Event,
    pub workload: Option<Arc<ContainerEntry>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventStats {
    /// Events received from agents.
    pub received: u64,
    /// Of those, events whose container the registry did not know (still delivered).
    pub unknown_workload: u64,
    /// Events agents said they dropped before they could report them.
    pub agent_dropped: u64,
    /// Events received but not delivered because the alert pipeline had stopped.
    pub undelivered: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    unknown_workload: AtomicU64,
    agent_dropped: AtomicU64,
    undelivered: AtomicU64,
}

pub struct Daemon {
    info: DaemonInfo,
    planner: Arc<dyn Planner>,
    registry: Arc<Registry>,
    agents: Mutex<BTreeMap<u64, AgentInfo>>,
    snapshot: watch::Sender<Snapshot>,
    events: mpsc::Sender<ReportedEvent>,
    counters: Counters,
    status_source: RwLock<Option<Arc<dyn StatusSource>>>,
    kernel: RwLock<Option<Arc<dyn KernelAuditor>>>,
}

impl Daemon {
    /// A daemon and the receiving end of its events. `event_capacity` bounds the events queued
    /// for the alert pipeline; when it is full, ReportEvents waits (agents queue and count
    /// drops on their side) rather than losing events here.
    pub fn new(
        info: DaemonInfo,
        planner: Arc<dyn Planner>,
        registry: Arc<Registry>,
        event_capacity: usize,
    ) -> (Arc<Self>, mpsc::Receiver<ReportedEvent>) {
        let (events, rx) = mpsc::channel(event_capacity.max(1));
        let daemon = Daemon {
            info,
            planner,
            registry,
            agents: Mutex::default(),
            snapshot: watch::Sender::new(Snapshot::default()),
            events,
            counters: Counters::default(),
            status_source: RwLock::new(None),
            kernel: RwLock::new(None),
        };
        (Arc::new(daemon), rx)
    }

    /// Makes `policies` the snapshot agents get, and wakes their long polls. Returns its version.
    ///
    /// Versions are the wall clock in milliseconds, or the last version + 1 if that is larger,
    /// so that a restarted rampartd never reissues a version number an agent already holds.
    pub fn publish_snapshot(&self, policies: Vec<PolicySource>) -> u64 {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut version = 0;
        self.snapshot.send_modify(|s| {
            version = now_ms.max(s.version + 1);
            *s = Snapshot {
                version,
                policies: Arc::new(policies),
            };
        });
        tracing::info!(version, "policy snapshot published");
        version
    }

    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// Changes to the snapshot, for parts of rampartd that evaluate policy themselves.
    pub fn subscribe_snapshots(&self) -> watch::Receiver<Snapshot> {
        self.snapshot.subscribe()
    }

    /// Where events found by rampartd itself (the ingress guard's) join the agents' reports.
    pub fn events(&self) -> mpsc::Sender<ReportedEvent> {
        self.events.clone()
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Agents that said Hello, oldest first; disconnected ones stay until an agent of the same
    /// kind says Hello again.
    pub fn agents(&self) -> Vec<AgentInfo> {
        let mut all: Vec<_> = self.agent_table().values().cloned().collect();
        all.sort_by_key(|a| (a.connected_at, a.conn_id));
        all
    }

    pub fn event_stats(&self) -> EventStats {
        let c = &self.counters;
        EventStats {
            received: c.received.load(Ordering::Relaxed),
            unknown_workload: c.unknown_workload.load(Ordering::Relaxed),
            agent_dropped: c.agent_dropped.load(Ordering::Relaxed),
            undelivered: c.undelivered.load(Ordering::Relaxed),
        }
    }

    /// Supplies the policies, load errors and alert counters of the Status RPC. Until it is set
    /// (while rampartd starts), Status answers with those empty and `complete` false.
    pub fn set_status_source(&self, source: Arc<dyn StatusSource>) {
        *self
            .status_source
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(source);
    }

    /// The kernel auditor to tell of plans, binds and unbinds (and of the bindings held now).
    pub fn set_kernel_auditor(&self, kernel: Arc<dyn KernelAuditor>) {
        for entry in self.registry.list() {
            if let Err(e) = kernel.bound(&entry) {
                workload_span(&entry.workload)
                    .in_scope(|| tracing::error!(error = %e, "not enforced in the kernel"));
            }
        }
        *self.kernel.write().unwrap_or_else(|p| p.into_inner()) = Some(kernel);
    }

    fn kernel(&self) -> Option<Arc<dyn KernelAuditor>> {
        self.kernel
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The answer to the Status RPC, assembled from what the daemon holds and its status source.
    pub fn status(&self) -> StatusResponse {
        let source = self
            .status_source
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let kernel = self.kernel();
        let workloads = self
            .registry
            .list()
            .iter()
            .map(|e| {
                let w = &e.workload;
                let (flows, sensor_dropped) = kernel
                    .as_ref()
                    .and_then(|k| k.workload(&w.container_id))
                    .unwrap_or((None, 0));
                rampart_protos::agent::WorkloadStatus {
                    namespace: w.namespace.clone(),
                    pod_name: w.pod_name.clone(),
                    container_name: w.container_name.clone(),
                    container_id: w.container_id.clone(),
                    cgroup_id: e.cgroup_id,
                    pid: e.pid,
                    policies: source
                        .as_ref()
                        .map(|s| s.policies_in_scope(w))
                        .unwrap_or_default(),
                    image: w.image.clone(),
                    bound_at_ms: unix_ms(e.bound_at),
                    flows,
                    sensor_dropped,
                }
            })
            .collect();
        let all = self.agents();
        let mut sensors: Vec<SensorCount> = all
            .iter()
            .filter(|a| a.disconnected_at.is_none())
            .flat_map(|a| a.sensors.iter().cloned())
            .collect();
        sensors.extend(kernel.iter().flat_map(|k| k.sensors()));
        let agents = all
            .into_iter()
            .map(|a| rampart_protos::agent::AgentStatus {
                kind: a.kind as i32,
                version: a.version,
                pid: a.pid,
                enforcers: a.enforcers,
                mechanisms: a.mechanisms,
                connected: a.disconnected_at.is_none(),
                connected_at_ms: unix_ms(a.connected_at),
                disconnected_at_ms: a.disconnected_at.map_or(0, unix_ms),
            })
            .collect();
        let events = self.event_stats();
        let alerts = source
            .as_ref()
            .map(|s| s.alert_counters())
            .unwrap_or_default();
        StatusResponse {
            daemon_version: self.info.version.clone(),
            node_name: self.info.node_name.clone(),
            snapshot_version: self.snapshot.borrow().version,
            policies: source.as_ref().map(|s| s.policies()).unwrap_or_default(),
            load_errors: source.as_ref().map(|s| s.load_errors()).unwrap_or_default(),
            workloads,
            agents,
            counters: Some(StatusCounters {
                events_received: events.received,
                events_unknown_workload: events.unknown_workload,
                alerts_written: alerts.written,
                alerts_deduplicated: alerts.deduplicated,
                alerts_rate_limited: alerts.rate_limited,
                journald_queued: alerts.journald_queued,
                journald_dropped: alerts.journald_dropped,
                agent_dropped: events.agent_dropped,
                events_undelivered: events.undelivered,
            }),
            complete: source.is_some(),
            sensors,
            mechanisms: kernel.map(|k| k.mechanisms()).unwrap_or_default(),
        }
    }

    // Every update is a single map operation, so a poisoned lock still holds a consistent map.
    /// What the connected agents can do now. A disconnected agent counts for nothing: a
    /// container planned while it restarts gets the plan that needs no agent capability.
    fn mechanisms(&self) -> Mechanisms {
        let exec_guard = self.agent_table().values().any(|a| {
            a.kind == AgentKind::Seccomp
                && a.disconnected_at.is_none()
                && a.enforcers.iter().any(|e| e == EXEC_GUARD_ENFORCER)
        });
        Mechanisms { exec_guard }
    }

    fn agent_table(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, AgentInfo>> {
        self.agents.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn workload_span(w: &Workload) -> tracing::Span {
    tracing::info_span!(
        "container",
        namespace = %w.namespace,
        pod = %w.pod_name,
        container = %w.container_name,
        container_id = %w.container_id,
    )
}

impl DaemonService for Daemon {
    fn hello(&self, ctx: &CallContext, req: HelloRequest) -> Result<HelloResponse, ApiError> {
        let kind = AgentKind::try_from(req.kind).unwrap_or(AgentKind::Unspecified);
        let info = AgentInfo {
            kind,
            version: req.version,
            pid: req.pid,
            peer_pid: ctx.peer.pid,
            enforcers: req.enforcers,
            mechanisms: req.mechanisms,
            sensors: Vec::new(),
            connected_at: SystemTime::now(),
            disconnected_at: None,
            conn_id: ctx.peer.conn_id,
        };
        tracing::info!(
            kind = kind.as_str_name(),
            version = %info.version,
            pid = info.pid,
            enforcers = ?info.enforcers,
            "agent said hello"
        );
        {
            let mut agents = self.agent_table();
            // A reconnecting agent replaces its old, disconnected record.
            agents.retain(|_, a| a.disconnected_at.is_none() || a.kind != kind);
            agents.insert(ctx.peer.conn_id, info);
        }
        // After a restart of rampartd, what the agents announce is the registry: rampart-nri's
        // bindings (with cgroup ids) and the seccomp agent's supervised containers.
        let mut added = 0;
        let kernel = self.kernel();
        for bind in req.containers {
            let Some(workload) = bind.workload else {
                continue;
            };
            let entry = ContainerEntry {
                workload,
                cgroup_id: bind.cgroup_id,
                cgroup_path: bind.cgroup_path,
                pid: bind.pid,
                bound_at: SystemTime::now(),
            };
            // The seccomp agent's announcements name no cgroup: rampart-nri's, which do, bring
            // the container into the kernel auditor.
            let enforce = kernel
                .as_ref()
                .filter(|_| !entry.cgroup_path.is_empty())
                .map(|k| (k.clone(), entry.clone()));
            if let Some((k, _)) = &enforce
                && !bind.filtered
            {
                k.planned(entry.container_id(), &PlanResponse::default());
            }
            match self.registry.announce(entry) {
                Ok(true) => {
                    added += 1;
                    if let Some((k, entry)) = enforce
                        && let Err(e) = k.bound(&entry)
                    {
                        workload_span(&entry.workload).in_scope(|| tracing::error!(error = %e, "announced container not enforced in the kernel"));
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "agent announced a container without an id; ignored")
                }
            }
        }
        if added > 0 {
            tracing::info!(
                kind = kind.as_str_name(),
                containers = added,
                "registry rebuilt from the agent's announcement"
            );
        }
        if kind == AgentKind::Nri
            && let Some(k) = &kernel
        {
            k.announced();
        }
        Ok(HelloResponse {
            daemon_version: self.info.version.clone(),
            snapshot_version: self.snapshot.borrow().version,
            node_name: self.info.node_name.clone(),
        })
    }

    fn plan_container(
        &self,
        _ctx: &CallContext,
        req: PlanRequest,
    ) -> Result<PlanResponse, ApiError> {
        let workload = req
            .workload
            .ok_or_else(|| ApiError::InvalidArgument("PlanContainer without a workload".into()))?;
        let _span = workload_span(&workload).entered();
        let node = self.mechanisms();
        let plan = self.planner.plan(&workload, node);
        if let Some(k) = self.kernel() {
            k.planned(&workload.container_id, &plan);
        }
        tracing::info!(
            protected = plan.protected,
            required = plan.required,
            policies = ?plan.policies,
            snapshot = plan.snapshot_version,
            "planned container"
        );
        Ok(plan)
    }

    fn bind_container(
        &self,
        _ctx: &CallContext,
        req: BindRequest,
    ) -> Result<BindResponse, ApiError> {
        let workload = req
            .workload
            .ok_or_else(|| ApiError::InvalidArgument("BindContainer without a workload".into()))?;
        let _span = workload_span(&workload).entered();
        let entry = ContainerEntry {
            workload,
            cgroup_id: req.cgroup_id,
            cgroup_path: req.cgroup_path,
            pid: req.pid,
            bound_at: SystemTime::now(),
        };
        let (cgroup_id, pid) = (entry.cgroup_id, entry.pid);
        let enforced = self.kernel().map_or(Ok(()), |k| {
            if !req.filtered {
                k.planned(entry.container_id(), &PlanResponse::default());
            }
            k.bound(&entry)
        });
        let outcome = self
            .registry
            .bind(entry)
            .map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
        if let Some(old) = outcome.evicted {
            tracing::warn!(
                cgroup_id,
                stale_container_id = old.container_id(),
                "cgroup id was bound to a container that went away without an unbind; replaced"
            );
        }
        tracing::info!(
            cgroup_id,
            pid,
            rebound = outcome.replaced.is_some(),
            "container bound"
        );
        enforced.map_err(|e| {
            tracing::error!(error = %e, "bound, but not enforced in the kernel");
            ApiError::Unavailable(format!("the container is bound but not enforced: {e}"))
        })?;
        Ok(BindResponse {})
    }

    fn unbind_container(
        &self,
        _ctx: &CallContext,
        req: UnbindRequest,
    ) -> Result<UnbindResponse, ApiError> {
        if req.container_id.is_empty() {
            return Err(ApiError::InvalidArgument(
                "UnbindContainer without a container id".into(),
            ));
        }
        match self.registry.unbind(&req.container_id) {
            Some(entry) => {
                if let Some(k) = self.kernel() {
                    k.unbound(&entry);
                }
                workload_span(&entry.workload).in_scope(|| tracing::info!("container unbound"))
            }
            None => {
                tracing::debug!(container_id = %req.container_id, "unbind of a container that is not bound")
            }
        }
        Ok(UnbindResponse {})
    }

    async fn get_snapshot(
        &self,
        ctx: &CallContext,
        req: SnapshotRequest,
    ) -> Result<SnapshotResponse, ApiError> {
        let mut rx = self.snapshot.subscribe();
        let now = tokio::time::Instant::now();
        // Answer `unchanged` a little before the call's deadline rather than let it time out.
        let remaining = ctx.deadline.saturating_duration_since(now);
        let slack = (remaining / 10).min(Duration::from_millis(100));
        let until = (now + Duration::from_millis(req.wait_ms.into())).min(ctx.deadline - slack);
        loop {
            {
                let current = rx.borrow_and_update();
                if current.version != 0 && current.version != req.have_version {
                    return Ok(SnapshotResponse {
                        version: current.version,
                        unchanged: false,
                        policies: current.policies.as_ref().clone(),
                    });
                }
            }
            match tokio::time::timeout_at(until, rx.changed()).await {
                Ok(Ok(())) => continue,
                // The sender lives in `self`: it cannot be dropped while we borrow it.
                Ok(Err(_)) | Err(_) => break,
            }
        }
        Ok(SnapshotResponse {
            version: self.snapshot.borrow().version,
            unchanged: true,
            policies: Vec::new(),
        })
    }

    async fn report_events(
        &self,
        ctx: &CallContext,
        req: ReportRequest,
    ) -> Result<ReportResponse, ApiError> {
        let c = &self.counters;
        c.received
            .fetch_add(req.events.len() as u64, Ordering::Relaxed);
        if !req.sensors.is_empty()
            && let Some(agent) = self.agent_table().get_mut(&ctx.peer.conn_id)
        {
            agent.sensors = req.sensors.clone();
        }
        if req.dropped > 0 {
            c.agent_dropped.fetch_add(req.dropped, Ordering::Relaxed);
            tracing::warn!(
                dropped = req.dropped,
                pid = ?ctx.peer.pid,
                "an agent dropped events before it could report them"
            );
        }
        let resolved: Vec<ReportedEvent> = req
            .events
            .into_iter()
            .map(|event| {
                let workload = self.registry.resolve(&event.container_id, event.cgroup_id);
                if workload.is_none() {
                    c.unknown_workload.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        container_id = %event.container_id,
                        cgroup_id = event.cgroup_id,
                        event_type = event.event_type,
                        "event from a container the registry does not know; kept without its pod"
                    );
                }
                ReportedEvent { event, workload }
            })
            .collect();
        // Reserve room for a whole chunk before sending any of it, so that a call given up at
        // its deadline has delivered whole chunks, not a random prefix.
        let chunk = self.events.max_capacity();
        let mut rest = resolved.into_iter().peekable();
        while rest.peek().is_some() {
            let batch: Vec<_> = rest.by_ref().take(chunk).collect();
            let permits = match self.events.reserve_many(batch.len()).await {
                Ok(p) => p,
                Err(_) => {
                    let lost = batch.len() + rest.len();
                    c.undelivered.fetch_add(lost as u64, Ordering::Relaxed);
                    tracing::error!(
                        lost,
                        "the alert pipeline has stopped; reported events were not recorded"
                    );
                    return Err(ApiError::Unavailable(format!(
                        "the alert pipeline has stopped; {lost} events were not recorded"
                    )));
                }
            };
            for (permit, event) in permits.zip(batch) {
                permit.send(event);
            }
        }
        Ok(ReportResponse {})
    }

    fn status(&self, _ctx: &CallContext, _req: StatusRequest) -> Result<StatusResponse, ApiError> {
        Ok(Daemon::status(self))
    }

    fn disconnected(&self, peer: &Peer) {
        if let Some(agent) = self.agent_table().get_mut(&peer.conn_id) {
            agent.disconnected_at = Some(SystemTime::now());
            tracing::info!(
                kind = agent.kind.as_str_name(),
                pid = agent.pid,
                "agent disconnected"
            );
        }
    }
}
