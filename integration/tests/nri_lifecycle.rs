//! rampart-nri across the node's life, with rampart's daemons as `scripts/rampart` runs them:
//! a container that was running before the plugin started is bound through Synchronize (rampartd
//! knows its pod and cgroup), and after containerd is killed and restarted the plugin reconnects
//! by itself and the next pod is protected again.
//!
//! Needs root and the node (`make build`, `make node-up`). Under `make test`
//! (RAMPART_NODE_TESTS=1) a missing node fails instead of skipping. It restarts containerd: it is
//! its own test binary, so no other test runs meanwhile.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rampart_integration::cri::{
    ContainerSpec, Cri, PodSpec, TestPod, node_dir, test_node, unique_name,
};
use rampart_integration::stack::repo;

const SEED: &str = include_str!("../../config/examples/disallow-etc-access-for-nginx.yaml");

fn script(args: &[&str], policy_dir: &Path) {
    let out = Command::new(repo().join(args[0]))
        .args(&args[1..])
        .env("RAMPART_POLICY_DIR", policy_dir)
        .output()
        .expect("script runs");
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// rampartd's view, through the operator's CLI.
fn status() -> serde_json::Value {
    let out = Command::new(repo().join("target/debug/rampartctl"))
        .args([
            "status",
            "-o",
            "json",
            "--socket",
            "/run/rampart/rampartd.sock",
        ])
        .output()
        .expect("rampartctl runs (make build)");
    assert!(
        out.status.success(),
        "rampartctl status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("rampartctl status -o json prints JSON")
}

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/rampart"))
            .arg("down")
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronize_binds_running_containers_and_a_containerd_restart_is_survived() {
    let Some(cri) = test_node().await else { return };
    let policy_dir = std::env::temp_dir().join(format!("rampart-lifecycle-{}", std::process::id()));
    std::fs::create_dir_all(&policy_dir).unwrap();
    std::fs::write(policy_dir.join("seed.yaml"), SEED).unwrap();
    script(&["scripts/rampart", "down"], &policy_dir);
    let _down = Down(policy_dir.clone());

    // A container that runs before rampart does.
    let early_name = unique_name("early");
    let early = TestPod::run(
        &cri,
        &PodSpec::new(&early_name).namespace("rampart-test"),
        &[ContainerSpec::new("nginx", "rampart.local/busybox:latest").command(["sleep", "3600"])],
    )
    .await
    .unwrap();
    let early_id = early.container_id("nginx").unwrap().to_owned();

    script(&["scripts/rampart", "up"], &policy_dir);
    wait_until("Synchronize to bind the early container", 15, || {
        status()["workloads"]
            .as_array()
            .is_some_and(|ws| ws.iter().any(|w| w["containerId"] == early_id.as_str()))
    });
    let s = status();
    let w = s["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["containerId"] == early_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(w["pod"], early_name.as_str());
    assert_eq!(w["namespace"], "rampart-test");
    assert_ne!(w["cgroupId"], 0, "bound without its cgroup id: {w}");
    assert_eq!(w["policies"][0], "DisallowEtcAccessForNginx");

    // containerd dies and comes back; the plugin must find its way back by itself.
    let pid: i32 = std::fs::read_to_string(node_dir().join("containerd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("containerd to exit", 10, || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
    script(&["scripts/node", "up"], &policy_dir);
    let cri = Cri::connect_default().await.unwrap();

    // The next nginx pod is protected again once the plugin has re-registered (backoff ≤ a few s).
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let name = unique_name("after-restart");
        let pod = TestPod::run(
            &cri,
            &PodSpec::new(&name).namespace("rampart-test"),
            &[ContainerSpec::new("nginx", "rampart.local/nginx:latest")],
        )
        .await
        .unwrap();
        let cat = pod.exec("nginx", &["cat", "/etc/passwd"]).await.unwrap();
        pod.remove().await.unwrap();
        if cat.exit_code != 0 && !cat.stdout_text().contains("root:x:0:0") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after containerd's restart new pods stay unprotected: rampart-nri did not reconnect"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    early.remove().await.unwrap();
}
