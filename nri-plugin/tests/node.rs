//! rampart-nri against a real containerd: the binary registers on the NRI socket, a pod is run
//! through CRI (as a kubelet would), and the plugin must have seen Configure, Synchronize,
//! RunPodSandbox, CreateContainer and StartContainer carrying the pod's and container's names.
//!
//! Needs root and a node (`scripts/node up`). Without them it prints why and passes as skipped;
//! it never starts or stops the node itself.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, CreateContainerRequest, ImageSpec, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StopPodSandboxRequest,
};
use tonic::transport::{Channel, Endpoint, Uri};

const NRI_SOCKET: &str = "/var/run/nri/nri.sock";
const IMAGE: &str = "rampart.local/busybox:latest";
const NAMESPACE: &str = "rampart-test";
const CONTAINER: &str = "sleeper";

fn cri_socket() -> PathBuf {
    std::env::var_os("RAMPART_CRI_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/rampart-node/containerd.sock"))
}

/// Why this machine cannot run the test, if it cannot.
fn skip_reason() -> Option<String> {
    match std::fs::metadata("/proc/self") {
        Ok(m) if m.uid() == 0 => {}
        Ok(m) => return Some(format!("needs root (running as uid {})", m.uid())),
        Err(e) => return Some(format!("cannot tell who runs the test: {e}")),
    }
    let cri = cri_socket();
    for (sock, what) in [(cri.as_path(), "CRI"), (Path::new(NRI_SOCKET), "NRI")] {
        if !sock.exists() {
            return Some(format!(
                "the node is not up: no {what} socket at {} (run scripts/node up)",
                sock.display()
            ));
        }
    }
    None
}

/// The plugin binary, its log (stderr, with --log-stderr) collected line by line.
struct PluginProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl PluginProcess {
    fn start(name: &str, index: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rampart-nri"))
            .args([
                "--log-only",
                "--log-stderr",
                "--socket",
                NRI_SOCKET,
                "--name",
                name,
                "--index",
                index,
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rampart-nri");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stderr.take().expect("piped stderr");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        PluginProcess { child, lines }
    }

    /// Waits until a log line contains all of `needles`.
    fn wait_for(&self, needles: &[&str], timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return Ok(l.clone());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no rampart-nri log line with {needles:?} within {timeout:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn cri_client(socket: PathBuf) -> RuntimeServiceClient<Channel> {
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
        .await
        .expect("connect to containerd's CRI socket");
    RuntimeServiceClient::new(channel)
}

/// Runs a one-container pod and returns its sandbox id; the caller removes it.
async fn run_pod(
    cri: &mut RuntimeServiceClient<Channel>,
    pod: &str,
    sandbox_id: &mut Option<String>,
) -> Result<(), String> {
    let uid = format!("{pod}-uid");
    let config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: pod.into(),
            uid: uid.clone(),
            namespace: NAMESPACE.into(),
            attempt: 0,
        }),
        log_directory: format!("/tmp/rampart-nri-test/{uid}"),
        linux: Some(LinuxPodSandboxConfig {
            // Under the node's pod cgroup parent, so `scripts/node down` finds anything left over.
            cgroup_parent: format!("/rampart-pods/pod{uid}"),
            security_context: Some(LinuxSandboxSecurityContext {
                // Host network: this test is about NRI, not CNI.
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
    };
    let id = cri
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .map_err(|e| format!("RunPodSandbox: {e}"))?
        .into_inner()
        .pod_sandbox_id;
    *sandbox_id = Some(id.clone());
    let container = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: CONTAINER.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: IMAGE.into(),
            ..Default::default()
        }),
        command: vec!["sleep".into(), "60".into()],
        log_path: format!("{CONTAINER}.log"),
        ..Default::default()
    };
    let ctr = cri
        .create_container(CreateContainerRequest {
            pod_sandbox_id: id.clone(),
            config: Some(container),
            sandbox_config: Some(config),
        })
        .await
        .map_err(|e| format!("CreateContainer ({IMAGE}; built by scripts/build-images): {e}"))?
        .into_inner()
        .container_id;
    cri.start_container(StartContainerRequest { container_id: ctr })
        .await
        .map_err(|e| format!("StartContainer: {e}"))?;
    Ok(())
}

async fn remove_pod(cri: &mut RuntimeServiceClient<Channel>, id: &str) {
    if let Err(e) = cri
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        })
        .await
    {
        eprintln!("cleanup: StopPodSandbox {id}: {e}");
    }
    if let Err(e) = cri
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        })
        .await
    {
        eprintln!("cleanup: RemovePodSandbox {id}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_sees_a_pods_lifecycle_on_real_containerd() {
    if let Some(why) = skip_reason() {
        // Under `make test` the node is up by construction: a skip there would hide a failure.
        assert!(
            std::env::var_os("RAMPART_NODE_TESTS").is_none(),
            "RAMPART_NODE_TESTS is set but the node test cannot run: {why}"
        );
        println!("SKIPPED plugin_sees_a_pods_lifecycle_on_real_containerd: {why}");
        return;
    }
    let pid = std::process::id();
    // Its own name and index, so it never collides with a rampart-nri the node already runs.
    let plugin = PluginProcess::start(&format!("rampartnodetest{pid}"), "91");
    let sync = plugin.wait_for(&["Synchronize"], Duration::from_secs(15));
    if let Err(e) = sync {
        panic!(
            "{e}; the plugin did not get through registration. Its log:\n{}",
            plugin.log()
        );
    }

    let pod = format!("nri-test-{pid}");
    let mut cri = cri_client(cri_socket()).await;
    let mut sandbox = None;
    let ran = run_pod(&mut cri, &pod, &mut sandbox).await;
    let pod_ref = format!("{NAMESPACE}/{pod}");
    let seen = ran.and_then(|()| {
        let t = Duration::from_secs(10);
        let mut seen = Vec::new();
        for needles in [
            &["Configure", "containerd"][..],
            &["Synchronize"],
            &["RunPodSandbox", &pod_ref],
            &["CreateContainer", &pod_ref, CONTAINER],
            &["StartContainer", &pod_ref, CONTAINER],
        ] {
            seen.push(plugin.wait_for(needles, t)?);
        }
        Ok(seen)
    });
    if let Some(id) = &sandbox {
        remove_pod(&mut cri, id).await;
        // Removal events are best effort here: the pod is gone either way.
        let _ = plugin.wait_for(&["RemovePodSandbox", &pod_ref], Duration::from_secs(10));
    }
    match seen {
        Ok(lines) => {
            println!("rampart-nri saw, for pod {pod_ref}:");
            for l in lines {
                println!("  {l}");
            }
        }
        Err(e) => panic!("{e}\nrampart-nri log:\n{}", plugin.log()),
    }
}
