//! The plugin's ttrpc client for the runtime's service (mux connection 2): RegisterPlugin and
//! UpdateContainers.

use std::time::Duration;

use prost::Message;
use rampart_protos::nri::{
    self, ContainerEviction, ContainerUpdate, RegisterPluginRequest, UpdateContainersRequest,
};

use crate::mux::VirtualConn;
use crate::ttrpc::{self, TtrpcError};

/// The runtime's service on one virtual connection. Cheap to clone.
#[derive(Clone)]
pub struct RuntimeClient {
    client: ttrpc::Client,
}

impl RuntimeClient {
    pub fn new(conn: VirtualConn) -> Self {
        RuntimeClient {
            client: ttrpc::Client::new(conn),
        }
    }

    /// Registers the plugin; the runtime then calls Configure and Synchronize on connection 1.
    pub async fn register_plugin(
        &self,
        name: &str,
        index: &str,
        timeout: Duration,
    ) -> Result<(), TtrpcError> {
        let req = RegisterPluginRequest {
            plugin_name: name.into(),
            plugin_idx: index.into(),
        };
        let _: nri::Empty = self.call("RegisterPlugin", &req, timeout).await?;
        Ok(())
    }

    /// Asks the runtime to update or evict containers outside any event; returns the updates
    /// it failed to apply.
    pub async fn update_containers(
        &self,
        update: Vec<ContainerUpdate>,
        evict: Vec<ContainerEviction>,
        timeout: Duration,
    ) -> Result<Vec<ContainerUpdate>, TtrpcError> {
        let req = UpdateContainersRequest { update, evict };
        let rsp: nri::UpdateContainersResponse =
            self.call("UpdateContainers", &req, timeout).await?;
        Ok(rsp.failed)
    }

    async fn call<Req: Message, Rsp: Message + Default>(
        &self,
        method: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Rsp, TtrpcError> {
        self.client
            .call(nri::RUNTIME_SERVICE, method, req, timeout)
            .await
    }
}
