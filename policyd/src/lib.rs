//! rampartd: the shared policy daemon. It loads and hot-reloads the policy files
//! ([`policies`]), serves agents over a unix socket ([`api`]) with the snapshot they evaluate
//! locally and the plan for each new container ([`planner`]), keeps the workload registry
//! ([`registry`]), turns reported decisions into alerts ([`pipeline`], [`alerting`]) written to
//! journald and JSON lines ([`sink`]), carries out responses ([`response`]), and runs the kernel
//! auditor on the registry's cgroups ([`auditor`]: ingress enforcement, the process sensor).

pub mod alerting;
pub mod api;
pub mod auditor;
pub mod pipeline;
pub mod planner;
pub mod policies;
pub mod registry;
pub mod response;
pub mod sink;
pub mod status_source;
