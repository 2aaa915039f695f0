//! The hook point: what the plugin does on each NRI event. rampart's policy logic implements
//! [`Handler`]; the stub does the protocol.

use std::fmt;
use std::future::Future;

use rampart_protos::nri::{
    ConfigureRequest, Container, ContainerAdjustment, ContainerEviction, ContainerUpdate, Event,
    LinuxResources, PodSandbox,
};

/// A set of NRI events, as `ConfigureResponse.events` carries it (bit `event - 1`).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct EventMask(i32);

impl EventMask {
    pub const fn empty() -> Self {
        EventMask(0)
    }

    pub fn of(events: &[Event]) -> Self {
        EventMask(events.iter().fold(0, |m, e| m | e.mask_bit()))
    }

    pub fn bits(self) -> i32 {
        self.0
    }

    pub fn contains(self, e: Event) -> bool {
        e != Event::Unknown && self.0 & e.mask_bit() != 0
    }

    fn events(self) -> impl Iterator<Item = Event> {
        (1..=Event::RemoveContainer as i32)
            .filter_map(|n| Event::try_from(n).ok())
            .filter(move |e| self.contains(*e))
    }
}

impl fmt::Debug for EventMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self} (0x{:x})", self.0)
    }
}

impl fmt::Display for EventMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.events().map(|e| e.as_str_name()).collect();
        f.write_str(&names.join(","))
    }
}

/// A handler's refusal. The runtime gets it as a failed request: for CreateContainer that fails
/// the container's creation, which is what an enforcing policy that cannot be applied wants.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl HandlerError {
    pub fn new(msg: impl Into<String>) -> Self {
        HandlerError(msg.into())
    }
}

pub type HandlerResult<T> = Result<T, HandlerError>;

/// What the plugin returns for a container being created.
#[derive(Debug, Default, Clone)]
pub struct CreateReply {
    /// Changes to the container being created (annotations, mounts, env, hooks, seccomp ...).
    pub adjust: Option<ContainerAdjustment>,
    /// Updates to other, existing containers.
    pub update: Vec<ContainerUpdate>,
    /// Existing containers to stop.
    pub evict: Vec<ContainerEviction>,
}

/// The plugin's reactions to NRI events. Every method has a do-nothing default; [`events`]
/// says which events to subscribe to, and only those arrive (Configure, Synchronize and Shutdown
/// always do).
///
/// Methods run concurrently for different pods and containers, so implementations synchronise
/// their own state. The runtime waits for each answer (2 s by default on containerd), so slow
/// work belongs elsewhere.
///
/// [`events`]: Handler::events
pub trait Handler: Send + Sync + 'static {
    /// The events to subscribe to.
    fn events(&self) -> EventMask;

    /// The runtime tells who it is; an error refuses the registration.
    fn configure(&self, _req: &ConfigureRequest) -> impl Future<Output = HandlerResult<()>> + Send {
        async { Ok(()) }
    }

    /// The pods and containers that already exist, once per connection.
    fn synchronize(
        &self,
        _pods: &[PodSandbox],
        _containers: &[Container],
    ) -> impl Future<Output = HandlerResult<Vec<ContainerUpdate>>> + Send {
        async { Ok(Vec::new()) }
    }

    /// The runtime is shutting down.
    fn shutdown(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    fn run_pod_sandbox(&self, _pod: &PodSandbox) -> impl Future<Output = HandlerResult<()>> + Send {
        async { Ok(()) }
    }

    fn stop_pod_sandbox(
        &self,
        _pod: &PodSandbox,
    ) -> impl Future<Output = HandlerResult<()>> + Send {
        async { Ok(()) }
    }

    fn remove_pod_sandbox(
        &self,
        _pod: &PodSandbox,
    ) -> impl Future<Output = HandlerResult<()>> + Send {
        async { Ok(()) }
    }

    /// Where enforcement is injected into the OCI spec before the container exists.
    fn create_container(
        &self,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> impl Future<Output = HandlerResult<CreateReply>> + Send {
        async { Ok(CreateReply::default()) }
    }

    fn post_create_container(
        &self,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> impl Future<Output = HandlerResult<()>> + Send {
        async { Ok(()) }
    }

    fn start_container(
        &self,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> impl Future<Output = HandlerResult<()>> + Send {
        async { Ok(()) }
    }

    /// The container's process runs: `container.pid` is set.
    fn post_start_container(
        &self,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> impl Future<Output = HandlerResult<()>> + Send {
        async { Ok(()) }
    }

    fn update_container(
        &self,
        _pod: &PodSandbox,
        _container: &Container,
        _resources: Option<&LinuxResources>,
    ) -> impl Future<Output = HandlerResult<Vec<ContainerUpdate>>> + Send {
        async { Ok(Vec::new()) }
    }

    fn post_update_container(
        &self,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> impl Future<Output = HandlerResult<()>> + Send {
        async { Ok(()) }
    }

    fn stop_container(
        &self,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> impl Future<Output = HandlerResult<Vec<ContainerUpdate>>> + Send {
        async { Ok(Vec::new()) }
    }

    fn remove_container(
        &self,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> impl Future<Output = HandlerResult<()>> + Send {
        async { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_bits_and_names() {
        let m = EventMask::of(&[
            Event::RunPodSandbox,
            Event::CreateContainer,
            Event::RemoveContainer,
        ]);
        assert_eq!(m.bits(), 0b100_0000_1001);
        assert!(m.contains(Event::CreateContainer));
        assert!(!m.contains(Event::StartContainer));
        assert!(!m.contains(Event::Unknown));
        assert_eq!(
            m.to_string(),
            "RUN_POD_SANDBOX,CREATE_CONTAINER,REMOVE_CONTAINER"
        );
    }
}
