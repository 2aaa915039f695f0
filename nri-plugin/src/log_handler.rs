//! A handler that only logs what the runtime tells the plugin: to see NRI working, and as the
//! shape the policy handler fills in.

use rampart_protos::nri::{ConfigureRequest, Container, ContainerUpdate, Event, PodSandbox};

use crate::handler::{CreateReply, EventMask, Handler, HandlerResult};

/// Logs every event at info level, inside the stub's span (which names the pod and container).
pub struct LogHandler;

/// The events LogHandler subscribes to: the whole lifecycle rampart will act on.
pub const LOGGED_EVENTS: &[Event] = &[
    Event::RunPodSandbox,
    Event::StopPodSandbox,
    Event::RemovePodSandbox,
    Event::CreateContainer,
    Event::StartContainer,
    Event::PostStartContainer,
    Event::UpdateContainer,
    Event::StopContainer,
    Event::RemoveContainer,
];

fn describe(c: &Container) -> String {
    let linux = c.linux.clone().unwrap_or_default();
    let namespaces: Vec<_> = linux.namespaces.iter().map(|n| n.r#type.as_str()).collect();
    format!(
        "id={} pid={} cgroups_path={} namespaces=[{}] args={:?} annotations={}",
        short(&c.id),
        c.pid,
        linux.cgroups_path,
        namespaces.join(","),
        c.args,
        c.annotations.len()
    )
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

impl Handler for LogHandler {
    fn events(&self) -> EventMask {
        EventMask::of(LOGGED_EVENTS)
    }

    async fn configure(&self, req: &ConfigureRequest) -> HandlerResult<()> {
        tracing::info!(runtime = %req.runtime_name, version = %req.runtime_version, "Configure");
        Ok(())
    }

    async fn synchronize(
        &self,
        pods: &[PodSandbox],
        containers: &[Container],
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        let names: Vec<_> = pods
            .iter()
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .collect();
        tracing::info!(pods = pods.len(), containers = containers.len(), pod_names = ?names, "Synchronize");
        Ok(Vec::new())
    }

    async fn shutdown(&self) {
        tracing::info!("Shutdown: the runtime is going down");
    }

    async fn run_pod_sandbox(&self, pod: &PodSandbox) -> HandlerResult<()> {
        tracing::info!(id = short(&pod.id), uid = %pod.uid, "RunPodSandbox");
        Ok(())
    }

    async fn stop_pod_sandbox(&self, pod: &PodSandbox) -> HandlerResult<()> {
        tracing::info!(id = short(&pod.id), "StopPodSandbox");
        Ok(())
    }

    async fn remove_pod_sandbox(&self, pod: &PodSandbox) -> HandlerResult<()> {
        tracing::info!(id = short(&pod.id), "RemovePodSandbox");
        Ok(())
    }

    async fn create_container(
        &self,
        _pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<CreateReply> {
        tracing::info!(details = %describe(c), "CreateContainer");
        Ok(CreateReply::default())
    }

    async fn start_container(&self, _pod: &PodSandbox, c: &Container) -> HandlerResult<()> {
        tracing::info!(details = %describe(c), "StartContainer");
        Ok(())
    }

    async fn post_start_container(&self, _pod: &PodSandbox, c: &Container) -> HandlerResult<()> {
        tracing::info!(details = %describe(c), "PostStartContainer");
        Ok(())
    }

    async fn update_container(
        &self,
        _pod: &PodSandbox,
        c: &Container,
        _resources: Option<&rampart_protos::nri::LinuxResources>,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        tracing::info!(id = short(&c.id), "UpdateContainer");
        Ok(Vec::new())
    }

    async fn stop_container(
        &self,
        _pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        tracing::info!(id = short(&c.id), "StopContainer");
        Ok(Vec::new())
    }

    async fn remove_container(&self, _pod: &PodSandbox, c: &Container) -> HandlerResult<()> {
        tracing::info!(id = short(&c.id), "RemoveContainer");
        Ok(())
    }
}
