//! Where reportable decisions go. The event itself is the policy crate's alert as the agent API
//! carries it (`rampart_protos::event::to_event`), built in `outcome`.

use rampart_protos::agent;

/// Where reportable decisions go (rampartd's ReportEvents, batched by the caller). Must not block.
pub trait Reporter: Send + Sync + 'static {
    fn report(&self, event: agent::Event);
}
