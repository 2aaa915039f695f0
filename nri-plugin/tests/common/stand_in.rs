//! A stand-in for rampartd, for the tests: one static rule instead of policies.
//! "Pods labelled app=nginx get notify [openat, execve] and deny [io_uring_setup]." rampart-nri
//! itself talks to the real rampartd (`daemon_client`); the tests use this in-process
//! [`Daemon`] to script its answers and failures.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rampart_nri::daemon::{Daemon, DaemonError};
use rampart_protos::agent::{BindRequest, PlanResponse, Workload};

pub const POLICY_NAME: &str = "stand-in-nginx";

/// How the stand-in behaves, so tests can exercise the failure policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Answer,
    /// Every call fails as if the socket were not there.
    Unreachable,
    /// Every call takes this long (to exercise the plugin's timeout).
    Slow(Duration),
}

/// The one rule: what pods labelled app=<app> (nginx unless a test says otherwise) get.
#[derive(Debug, Clone)]
pub struct Rule {
    pub app: String,
    pub notify: Vec<String>,
    pub deny: Vec<String>,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            app: "nginx".into(),
            notify: vec!["openat".into(), "execve".into()],
            deny: vec!["io_uring_setup".into()],
        }
    }
}

pub struct StandInDaemon {
    pub rule: Rule,
    pub behaviour: Mutex<Behaviour>,
    /// The plan's `required` for scoped workloads.
    pub required: bool,
    pub binds: Mutex<Vec<BindRequest>>,
    pub unbinds: Mutex<Vec<String>>,
    pub plans: Mutex<Vec<Workload>>,
}

impl Default for StandInDaemon {
    fn default() -> Self {
        StandInDaemon {
            rule: Rule::default(),
            behaviour: Mutex::new(Behaviour::Answer),
            required: false,
            binds: Mutex::default(),
            unbinds: Mutex::default(),
            plans: Mutex::default(),
        }
    }
}

impl StandInDaemon {
    pub fn set(&self, b: Behaviour) {
        *self.behaviour.lock().expect("stand-in lock") = b;
    }

    async fn behave(&self) -> Result<(), DaemonError> {
        let b = *self.behaviour.lock().expect("stand-in lock");
        match b {
            Behaviour::Answer => Ok(()),
            Behaviour::Unreachable => Err(DaemonError::Unreachable {
                socket: PathBuf::from("/nonexistent/rampartd.sock"),
                reason: "stand-in told to be unreachable".into(),
            }),
            Behaviour::Slow(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
        }
    }

    /// The static rule.
    pub fn plan_for(&self, w: &Workload) -> PlanResponse {
        if w.pod_labels.get("app") != Some(&self.rule.app) {
            return PlanResponse::default();
        }
        PlanResponse {
            protected: true,
            required: self.required,
            notify_syscalls: self.rule.notify.clone(),
            deny_syscalls: self.rule.deny.clone(),
            policies: vec![POLICY_NAME.into()],
            snapshot_version: 1,
            ..Default::default()
        }
    }
}

impl Daemon for StandInDaemon {
    async fn plan(&self, w: &Workload) -> Result<PlanResponse, DaemonError> {
        self.behave().await?;
        self.plans.lock().expect("stand-in lock").push(w.clone());
        Ok(self.plan_for(w))
    }

    async fn bind(&self, req: BindRequest) -> Result<(), DaemonError> {
        self.behave().await?;
        self.binds.lock().expect("stand-in lock").push(req);
        Ok(())
    }

    async fn unbind(&self, container_id: &str) -> Result<(), DaemonError> {
        self.behave().await?;
        self.unbinds
            .lock()
            .expect("stand-in lock")
            .push(container_id.to_owned());
        Ok(())
    }
}
