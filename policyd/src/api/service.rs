//! The seven methods of `rampart.agent.v1.Daemon` as a trait, and their dispatch from ttrpc.
//!
//! The server runs every request on its own task, so a method that waits (the GetSnapshot long
//! poll, ReportEvents under back-pressure) holds up nothing but its own call. Those two return
//! futures; the others are plain functions that must not block.

use std::future::Future;

use prost::Message;
use rampart_protos::agent::{
    BindRequest, BindResponse, HelloRequest, HelloResponse, PlanRequest, PlanResponse,
    ReportRequest, ReportResponse, SnapshotRequest, SnapshotResponse, StatusRequest,
    StatusResponse, UnbindRequest, UnbindResponse,
};

use super::{ApiError, CallContext, Peer};

pub trait DaemonService: Send + Sync + 'static {
    fn hello(&self, ctx: &CallContext, req: HelloRequest) -> Result<HelloResponse, ApiError>;

    fn plan_container(&self, ctx: &CallContext, req: PlanRequest)
    -> Result<PlanResponse, ApiError>;

    fn bind_container(&self, ctx: &CallContext, req: BindRequest)
    -> Result<BindResponse, ApiError>;

    fn unbind_container(
        &self,
        ctx: &CallContext,
        req: UnbindRequest,
    ) -> Result<UnbindResponse, ApiError>;

    /// Answers when the snapshot differs from `req.have_version`, or `unchanged` after
    /// `req.wait_ms` (and before `ctx.deadline`).
    fn get_snapshot(
        &self,
        ctx: &CallContext,
        req: SnapshotRequest,
    ) -> impl Future<Output = Result<SnapshotResponse, ApiError>> + Send;

    fn report_events(
        &self,
        ctx: &CallContext,
        req: ReportRequest,
    ) -> impl Future<Output = Result<ReportResponse, ApiError>> + Send;

    /// For `rampartctl status`; callers need not say Hello first.
    fn status(&self, ctx: &CallContext, req: StatusRequest) -> Result<StatusResponse, ApiError>;

    /// The connection of `peer` closed (the agent exited or will reconnect).
    fn disconnected(&self, _peer: &Peer) {}
}

/// Decodes the request of `ctx.method`, calls the service, encodes its answer.
pub async fn dispatch<S: DaemonService>(
    svc: &S,
    ctx: &CallContext,
    payload: &[u8],
) -> Result<Vec<u8>, ApiError> {
    match ctx.method.as_str() {
        "Hello" => Ok(svc.hello(ctx, decode(payload)?)?.encode_to_vec()),
        "PlanContainer" => Ok(svc.plan_container(ctx, decode(payload)?)?.encode_to_vec()),
        "BindContainer" => Ok(svc.bind_container(ctx, decode(payload)?)?.encode_to_vec()),
        "UnbindContainer" => Ok(svc.unbind_container(ctx, decode(payload)?)?.encode_to_vec()),
        "GetSnapshot" => Ok(svc
            .get_snapshot(ctx, decode(payload)?)
            .await?
            .encode_to_vec()),
        "ReportEvents" => Ok(svc
            .report_events(ctx, decode(payload)?)
            .await?
            .encode_to_vec()),
        "Status" => Ok(svc.status(ctx, decode(payload)?)?.encode_to_vec()),
        other => Err(ApiError::Unimplemented(format!(
            "method {}.{other}",
            rampart_protos::agent::DAEMON_SERVICE
        ))),
    }
}

fn decode<M: Message + Default>(payload: &[u8]) -> Result<M, ApiError> {
    M::decode(payload).map_err(|e| {
        let name = std::any::type_name::<M>()
            .rsplit("::")
            .next()
            .unwrap_or("message");
        ApiError::InvalidArgument(format!("undecodable {name}: {e}"))
    })
}
