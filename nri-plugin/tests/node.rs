//! rampart-nri against a real containerd: the binary registers on the NRI socket, a pod is run
//! through CRI (as a kubelet would), and the plugin must have seen Configure, Synchronize,
//! RunPodSandbox, CreateContainer and StartContainer carrying the pod's and container's names.
//!
//! Needs root and a node (`scripts/node up`). Without them it prints why and passes as skipped;
//! it never starts or stops the node itself.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{NAMESPACE, cri_client, remove_pods, run_pod};

const NRI_SOCKET: &str = "/var/run/nri/nri.sock";
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_sees_a_pods_lifecycle_on_real_containerd() {
    if !common::runs_or_skips(
        "plugin_sees_a_pods_lifecycle_on_real_containerd",
        skip_reason(),
    ) {
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
    let mut cri = cri_client(cri_socket())
        .await
        .expect("connect to containerd's CRI socket");
    let mut sandboxes = Vec::new();
    let ran = run_pod(&mut cri, common::node_pod(&pod), CONTAINER, &mut sandboxes).await;
    let pod_ref = format!("{NAMESPACE}/{pod}");
    let seen = ran.and_then(|_| {
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
    if !sandboxes.is_empty() {
        remove_pods(&mut cri, &sandboxes).await;
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
