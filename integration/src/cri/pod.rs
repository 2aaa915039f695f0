//! Starting pods the way a kubelet does: sandbox, then containers, then waiting until they run
//! (or saying why they did not).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use serde::Serialize;

use super::client::{Cri, long_request, request};
use super::error::CriError;
use super::logs;
use super::spec::{self, ContainerSpec, PodSpec, SeccompProfile};
use super::status::{ContainerState, ContainerStatus};

const POLL: Duration = Duration::from_millis(100);
const LOG_TAIL_LINES: usize = 10;

/// A pod sandbox this client created or found.
#[derive(Debug, Clone)]
pub struct Pod {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub log_directory: PathBuf,
    pub host_network: bool,
    /// Default seccomp profile for containers created through this handle.
    pub seccomp: Option<SeccompProfile>,
    /// The sandbox config (CreateContainer sends it along, as a kubelet does).
    pub config: cri::PodSandboxConfig,
}

impl Pod {
    /// `namespace/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A container this client created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub pod_id: String,
    pub image: String,
}

/// A pod whose containers were started, and its IP.
#[derive(Debug, Clone)]
pub struct RunningPod {
    pub pod: Pod,
    pub containers: Vec<Container>,
    /// `None` for host-network pods.
    pub ip: Option<IpAddr>,
}

impl RunningPod {
    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The id of the container named `name`, or an error listing the ones there are.
    pub fn container_id(&self, name: &str) -> Result<&str, CriError> {
        self.container(name)
            .map(|c| c.id.as_str())
            .ok_or_else(|| CriError::ContainerNotFound {
                pod: self.pod.full_name(),
                name: name.into(),
                available: self.containers.iter().map(|c| c.name.clone()).collect(),
            })
    }
}

/// How `Cri::run_with` behaves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How long containers may take to be seen running.
    pub timeout: Duration,
    /// After all run, look again this much later: a process that dies on a bad config
    /// (nginx does) is usually seen running first.
    pub settle: Duration,
    /// Wait for Running at all (false: return right after StartContainer, for one-shot
    /// containers that tests wait on with `wait_exited`).
    pub wait_running: bool,
    /// Leave a pod whose container failed in place for `logs`/`inspect` (otherwise removed;
    /// the error carries the last log lines).
    pub keep_on_failure: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            timeout: Duration::from_secs(30),
            settle: Duration::from_millis(300),
            wait_running: true,
            keep_on_failure: false,
        }
    }
}

impl Cri {
    /// RunPodSandbox: the sandbox with its network namespace and, unless host-network, a CNI IP.
    #[tracing::instrument(skip_all, fields(pod = %spec.name, namespace = %spec.effective_namespace()))]
    pub async fn run_pod(&self, spec: &PodSpec) -> Result<Pod, CriError> {
        let resolved = spec::resolve_pod(spec, self.node_dir())?;
        // A kubelet makes the log directory; containerd only makes the per-container files.
        std::fs::create_dir_all(&resolved.log_directory).map_err(|source| CriError::Io {
            action: "creating pod log directory",
            path: resolved.log_directory.clone(),
            source,
        })?;
        let req = cri::RunPodSandboxRequest {
            config: Some(resolved.config.clone()),
            runtime_handler: String::new(),
        };
        let full_name = format!("{}/{}", resolved.namespace, spec.name);
        // CNI setup and the pause image start can take a while on a cold node.
        let id = self
            .runtime
            .clone()
            .run_pod_sandbox(long_request(req, Duration::from_secs(60)))
            .await
            .map_err(|s| CriError::rpc("run pod", &full_name, s))?
            .into_inner()
            .pod_sandbox_id;
        tracing::info!(pod_id = %id, uid = %resolved.uid, "pod sandbox running");
        Ok(Pod {
            id,
            name: spec.name.clone(),
            namespace: resolved.namespace,
            uid: resolved.uid,
            log_directory: resolved.log_directory,
            host_network: spec.host_network,
            seccomp: spec.seccomp.clone(),
            config: resolved.config,
        })
    }

    /// CreateContainer in `pod` (the image must be present; rampart never pulls).
    #[tracing::instrument(skip_all, fields(pod = %pod.full_name(), container = %spec.name))]
    pub async fn create_container(
        &self,
        pod: &Pod,
        spec: &ContainerSpec,
    ) -> Result<Container, CriError> {
        spec.validate()?;
        require_profile(spec.seccomp.as_ref().or(pod.seccomp.as_ref()))?;
        self.require_image(&spec.image).await?;
        let config = spec::container_config(
            &pod.name,
            &pod.namespace,
            &pod.uid,
            pod.host_network,
            pod.seccomp.as_ref(),
            spec,
        );
        let req = cri::CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.config.clone()),
        };
        let target = format!("{} in pod {}", spec.name, pod.full_name());
        let id = self
            .runtime
            .clone()
            .create_container(request(req))
            .await
            .map_err(|s| CriError::rpc("create container", &target, s))?
            .into_inner()
            .container_id;
        tracing::info!(container_id = %id, "container created");
        Ok(Container {
            id,
            name: spec.name.clone(),
            pod_id: pod.id.clone(),
            image: spec.image.clone(),
        })
    }

    /// StartContainer.
    #[tracing::instrument(skip(self))]
    pub async fn start_container(&self, container_id: &str) -> Result<(), CriError> {
        let req = cri::StartContainerRequest {
            container_id: container_id.into(),
        };
        self.runtime
            .clone()
            .start_container(request(req))
            .await
            .map_err(|s| CriError::rpc("start container", container_id, s))?;
        Ok(())
    }

    /// Runs the pod and its containers, and waits until all run. On failure the pod is removed
    /// and the error says which container exited, how, and its last log lines.
    pub async fn run(
        &self,
        spec: &PodSpec,
        containers: &[ContainerSpec],
    ) -> Result<RunningPod, CriError> {
        self.run_with(spec, containers, &RunOptions::default())
            .await
    }

    #[tracing::instrument(skip_all, fields(pod = %spec.name, namespace = %spec.effective_namespace()))]
    pub async fn run_with(
        &self,
        spec: &PodSpec,
        containers: &[ContainerSpec],
        opts: &RunOptions,
    ) -> Result<RunningPod, CriError> {
        // Everything that can be checked before a sandbox exists is, so a typo leaves nothing
        // behind.
        spec.validate()?;
        for c in containers {
            c.validate()?;
        }
        for (i, c) in containers.iter().enumerate() {
            if containers[..i].iter().any(|o| o.name == c.name) {
                return Err(CriError::invalid(
                    "container name",
                    format!("{} appears twice in the pod", c.name),
                ));
            }
            require_profile(c.seccomp.as_ref().or(spec.seccomp.as_ref()))?;
            self.require_image(&c.image).await?;
        }
        let pod = self.run_pod(spec).await?;
        match self.start_all(&pod, containers, opts).await {
            Ok(running) => Ok(running),
            Err(e) => {
                if !opts.keep_on_failure
                    && let Err(cleanup) = self.remove_pod(&pod.id).await
                {
                    tracing::warn!(pod_id = %pod.id, error = %cleanup, "could not remove failed pod");
                }
                Err(e)
            }
        }
    }

    async fn start_all(
        &self,
        pod: &Pod,
        specs: &[ContainerSpec],
        opts: &RunOptions,
    ) -> Result<RunningPod, CriError> {
        let mut containers = Vec::with_capacity(specs.len());
        for spec in specs {
            let c = self.create_container(pod, spec).await?;
            self.start_container(&c.id).await?;
            containers.push(c);
        }
        if opts.wait_running {
            for c in &containers {
                self.wait_running(pod, c, opts.timeout).await?;
            }
            if !opts.settle.is_zero() {
                tokio::time::sleep(opts.settle).await;
                for c in &containers {
                    self.wait_running(pod, c, opts.timeout).await?;
                }
            }
        }
        let ip = self.pod_ip(&pod.id).await?;
        Ok(RunningPod {
            pod: pod.clone(),
            containers,
            ip,
        })
    }

    /// Waits until the container runs; an exit first is an error with its code and logs.
    pub async fn wait_running(
        &self,
        pod: &Pod,
        container: &Container,
        timeout: Duration,
    ) -> Result<(), CriError> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.container_status(&container.id).await?;
            match status.state {
                ContainerState::Running => return Ok(()),
                ContainerState::Exited => return Err(exited_error(&pod.full_name(), &status)),
                ContainerState::Created | ContainerState::Unknown => {}
            }
            if Instant::now() >= deadline {
                return Err(CriError::Timeout {
                    what: format!(
                        "container {} in pod {} to run (it is {})",
                        container.name,
                        pod.full_name(),
                        status.state
                    ),
                    after: timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the container exits and returns its final status (exit code, reason).
    pub async fn wait_exited(
        &self,
        container_id: &str,
        timeout: Duration,
    ) -> Result<ContainerStatus, CriError> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.container_status(container_id).await?;
            if status.state == ContainerState::Exited {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(CriError::Timeout {
                    what: format!("container {container_id} to exit (it is {})", status.state),
                    after: timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// containerd would fail on a missing profile too, but later and less clearly.
fn require_profile(profile: Option<&SeccompProfile>) -> Result<(), CriError> {
    match profile {
        Some(SeccompProfile::Localhost(path)) if !path.is_file() => Err(CriError::invalid(
            "seccomp profile",
            format!("{} does not exist on this node", path.display()),
        )),
        _ => Ok(()),
    }
}

fn exited_error(pod: &str, status: &ContainerStatus) -> CriError {
    CriError::ContainerExited {
        pod: pod.into(),
        container: status.name.clone(),
        exit_code: status.exit_code,
        reason: status.reason.clone(),
        message: status.message.clone(),
        log_tail: logs::tail(&status.log_path, LOG_TAIL_LINES),
    }
}

/// The first 13 characters of an id, as crictl shows them.
pub fn short_id(id: &str) -> &str {
    id.get(..13).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids() {
        assert_eq!(short_id("0123456789abcdef"), "0123456789abc");
        assert_eq!(short_id("abc"), "abc");
    }
}
