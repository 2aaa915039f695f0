//! Helpers shared by the tests. Raw CRI helpers for the node tests (`node`, `inject_node`,
//! `preregistered_node`): each
//! runs host-network busybox pods through a containerd's CRI socket, field by field, so a test
//! sees exactly what containerd was asked and gets containerd's own error text back (the
//! fail-closed test in `inject_node` reads the plugin's refusal from it).
//!
//! [`stand_in`] is the in-process rampartd the tests give the handler; [`seccomp`] builds and
//! inspects seccomp profiles.
//!
//! Each test binary uses part of this module.
#![allow(dead_code)]

pub mod seccomp;
pub mod stand_in;

use std::path::PathBuf;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerStatusRequest, CreateContainerRequest, ImageSpec,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, RemovePodSandboxRequest, RunPodSandboxRequest,
    StartContainerRequest, StopPodSandboxRequest,
};
use tonic::transport::{Channel, Endpoint, Uri};

/// The node's busybox image (`scripts/build-images` builds it, `scripts/node up` imports it).
pub const IMAGE: &str = "rampart.local/busybox:latest";
/// The Kubernetes namespace of the pods the tests run on the shared node.
pub const NAMESPACE: &str = "rampart-test";
/// Pod log directories of the tests on the shared node: `<root>/<uid>`.
pub const NODE_LOG_ROOT: &str = "/tmp/rampart-nri-test";
/// Under the node's pod cgroup parent, so `scripts/node down` finds anything left over.
pub const NODE_CGROUP_ROOT: &str = "/rampart-pods";

/// Whether the node test `test` runs, given why it cannot (`None`: it can). Without the node it
/// prints why and passes as skipped; under `make test` (RAMPART_NODE_TESTS set) the node is up by
/// construction, so a reason there is a failure: a skip would hide one.
pub fn runs_or_skips(test: &str, why: Option<String>) -> bool {
    match why {
        None => true,
        Some(why) => {
            assert!(
                std::env::var_os("RAMPART_NODE_TESTS").is_none(),
                "RAMPART_NODE_TESTS is set but {test} cannot run: {why}"
            );
            println!("SKIPPED {test}: {why}");
            false
        }
    }
}

/// A CRI runtime client over the unix socket at `socket`.
pub async fn cri_client(
    socket: PathBuf,
) -> Result<RuntimeServiceClient<Channel>, tonic::transport::Error> {
    let channel = Endpoint::try_from("http://[::]")
        .expect("static URI")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }))
        .await?;
    Ok(RuntimeServiceClient::new(channel))
}

/// A host-network pod (these tests are about NRI, not CNI) named `name` in `namespace`, with uid
/// `<name>-uid`, its logs in `<log_root>/<uid>` and its cgroup at `<cgroup_root>/pod<uid>`.
pub fn host_network_pod(
    name: &str,
    namespace: &str,
    log_root: &str,
    cgroup_root: &str,
) -> PodSandboxConfig {
    let uid = format!("{name}-uid");
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: uid.clone(),
            namespace: namespace.into(),
            attempt: 0,
        }),
        log_directory: format!("{log_root}/{uid}"),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("{cgroup_root}/pod{uid}"),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    pid: NamespaceMode::Container as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A host-network pod on the shared node: [`NAMESPACE`], under [`NODE_LOG_ROOT`] and
/// [`NODE_CGROUP_ROOT`].
pub fn node_pod(name: &str) -> PodSandboxConfig {
    host_network_pod(name, NAMESPACE, NODE_LOG_ROOT, NODE_CGROUP_ROOT)
}

/// Runs the pod `config` with one busybox container named `container` (`sleep 60`); returns the
/// container's id. The sandbox id is pushed to `sandboxes` as soon as there is one, for the
/// caller to remove (`remove_pods`) whatever happened next. Errors carry containerd's own text.
pub async fn run_pod(
    cri: &mut RuntimeServiceClient<Channel>,
    config: PodSandboxConfig,
    container: &str,
    sandboxes: &mut Vec<String>,
) -> Result<String, String> {
    let pod = config
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let id = cri
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .map_err(|e| format!("RunPodSandbox {pod}: {e}"))?
        .into_inner()
        .pod_sandbox_id;
    sandboxes.push(id.clone());
    let ctr_config = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: container.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: IMAGE.into(),
            ..Default::default()
        }),
        command: vec!["sleep".into(), "60".into()],
        log_path: format!("{container}.log"),
        ..Default::default()
    };
    let ctr = cri
        .create_container(CreateContainerRequest {
            pod_sandbox_id: id,
            config: Some(ctr_config),
            sandbox_config: Some(config),
        })
        .await
        .map_err(|e| {
            format!(
                "CreateContainer {container} in {pod} ({IMAGE}; built by scripts/build-images): \
                 {e}"
            )
        })?
        .into_inner()
        .container_id;
    cri.start_container(StartContainerRequest {
        container_id: ctr.clone(),
    })
    .await
    .map_err(|e| format!("StartContainer {container} in {pod}: {e}"))?;
    Ok(ctr)
}

/// The container's OCI spec (CRI verbose status), and its init pid.
pub async fn runtime_spec(
    cri: &mut RuntimeServiceClient<Channel>,
    id: &str,
) -> Result<(serde_json::Value, u32), String> {
    let status = cri
        .container_status(ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        })
        .await
        .map_err(|e| format!("ContainerStatus {id}: {e}"))?
        .into_inner();
    let info = status
        .info
        .get("info")
        .ok_or_else(|| format!("no verbose info for {id}: {:?}", status.info.keys()))?;
    let info: serde_json::Value =
        serde_json::from_str(info).map_err(|e| format!("verbose info is not JSON: {e}"))?;
    let pid = info["pid"].as_u64().unwrap_or(0) as u32;
    Ok((info["runtimeSpec"].clone(), pid))
}

/// Stops and removes the sandboxes `ids`; failures are reported on stderr, not returned.
pub async fn remove_pods(cri: &mut RuntimeServiceClient<Channel>, ids: &[String]) {
    for id in ids {
        if let Err(e) = cri
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await
        {
            eprintln!("cleanup: StopPodSandbox {id}: {e}");
        }
        if let Err(e) = cri
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await
        {
            eprintln!("cleanup: RemovePodSandbox {id}: {e}");
        }
    }
}
