//! What rampartd's main loop knows for `rampartctl status`: the policies in force and the files
//! rejected (refreshed after every reload), and the alert pipeline's counters.

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use rampart_policy::Snapshot;
use rampart_protos::agent::{PolicyLoadError, PolicyStatus, Workload};

use crate::api::status::{AlertCounters, StatusSource};
use crate::pipeline::PipelineStats;
use crate::planner::policy_workload;
use crate::policies::PolicyStore;

#[derive(Default)]
struct Held {
    policies: Vec<PolicyStatus>,
    errors: Vec<PolicyLoadError>,
    snapshot: Arc<Snapshot>,
}

pub struct DaemonStatus {
    held: RwLock<Held>,
    pipeline: Arc<PipelineStats>,
}

impl DaemonStatus {
    pub fn new(pipeline: Arc<PipelineStats>) -> Self {
        Self {
            held: RwLock::default(),
            pipeline,
        }
    }

    /// Takes the store's state after a (re)load.
    pub fn refresh(&self, store: &PolicyStore) {
        *self.held.write().unwrap_or_else(|e| e.into_inner()) = Held {
            policies: store.statuses(),
            errors: store.load_errors(),
            snapshot: store.compiled(),
        };
    }
}

impl StatusSource for DaemonStatus {
    fn policies(&self) -> Vec<PolicyStatus> {
        self.held
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .policies
            .clone()
    }

    fn load_errors(&self) -> Vec<PolicyLoadError> {
        self.held
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .errors
            .clone()
    }

    fn policies_in_scope(&self, workload: &Workload) -> Vec<String> {
        let snapshot = self
            .held
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .snapshot
            .clone();
        snapshot
            .for_workload(&policy_workload(workload))
            .policy_names()
            .map(str::to_owned)
            .collect()
    }

    fn alert_counters(&self) -> AlertCounters {
        let p = &self.pipeline;
        AlertCounters {
            written: p.written.load(Ordering::Relaxed),
            deduplicated: p.deduplicated.load(Ordering::Relaxed),
            rate_limited: p.rate_limited.load(Ordering::Relaxed),
            journald_queued: p.journal_queued.load(Ordering::Relaxed),
            journald_dropped: p.journal_dropped.load(Ordering::Relaxed),
        }
    }
}
