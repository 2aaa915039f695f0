//! kill-pod on the real node: a two-container pod run through containerd's CRI, killed by
//! rampartd's PodKiller, both containers seen EXITED with 137 (SIGKILL) through CRI.
//!
//! Needs root and the node (`scripts/node up`); without them the tests print `skipped: …`,
//! unless RAMPART_NODE_TESTS is set (`make test`), which turns a missing node into a failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_integration::cri::{
    ContainerFilter, ContainerSpec, ContainerState, Cri, PodSpec, TestPod, default_socket,
    unique_name,
};
use rampartd::response::{KillPodError, PodKiller, PodRef};

const IMAGE: &str = "rampart.local/busybox:latest";
const NAMESPACE: &str = "rampart-test";

/// The node's CRI socket, or `None` (after saying why) when the test cannot run here.
fn node_socket() -> Option<PathBuf> {
    let socket = default_socket();
    let missing = if !nix::unistd::geteuid().is_root() {
        Some("not root (CRI pods need root)".to_string())
    } else if !socket.exists() {
        Some(format!(
            "the node is not up ({} missing; run `scripts/node up`)",
            socket.display()
        ))
    } else {
        None
    };
    match missing {
        None => Some(socket),
        Some(why) => {
            assert!(
                std::env::var_os("RAMPART_NODE_TESTS").is_none(),
                "RAMPART_NODE_TESTS is set but {why}"
            );
            eprintln!("skipped: {why}");
            None
        }
    }
}

fn sleeper(name: &str) -> ContainerSpec {
    ContainerSpec::new(name, IMAGE).command(["sleep", "3600"])
}

async fn run_pod(cri: &Cri, prefix: &str) -> TestPod {
    cri.require_image(IMAGE).await.expect("busybox image");
    TestPod::run(
        cri,
        &PodSpec::new(unique_name(prefix)).namespace(NAMESPACE),
        &[sleeper("a"), sleeper("b")],
    )
    .await
    .expect("pod runs")
}

/// Every container of the pod exited, by SIGKILL.
async fn assert_all_sigkilled(cri: &Cri, pod: &TestPod) {
    for name in ["a", "b"] {
        let id = pod.container_id(name).unwrap();
        // StopContainer returns once the container exited; the wait only absorbs status lag.
        let status = cri
            .wait_exited(id, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("container {name} did not exit: {e}"));
        assert_eq!(status.state, ContainerState::Exited);
        assert_eq!(
            status.exit_code, 137,
            "container {name} should die of SIGKILL (128 + 9); reason {:?}",
            status.reason
        );
    }
}

#[tokio::test]
async fn kill_pod_by_sandbox_id_sigkills_every_container_and_leaves_the_sandbox() {
    let Some(socket) = node_socket() else { return };
    let cri = Cri::connect(&socket).await.expect("connects to CRI");
    let pod = run_pod(&cri, "killme").await;

    let killer = PodKiller::new(&socket);
    let killed = killer
        .kill_pod(&PodRef::sandbox(&pod.pod.id))
        .await
        .expect("kill-pod works");

    assert_eq!(killed.namespace, NAMESPACE);
    assert_eq!(killed.name, pod.pod.name);
    assert_eq!(killed.sandbox_ids, vec![pod.pod.id.clone()]);
    let names: Vec<&str> = killed.stopped.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(killed.already_exited.is_empty());
    assert_all_sigkilled(&cri, &pod).await;

    // The sandbox is the kubelet's to stop or restart in: it is still ready.
    let status = cri.pod_status(&pod.pod.id).await.unwrap();
    assert_eq!(
        status.status.unwrap().state,
        rampart_integration::cri::api::PodSandboxState::SandboxReady as i32
    );

    // A second kill finds nothing left to stop and says so.
    let again = killer
        .kill_pod(&PodRef::sandbox(&pod.pod.id))
        .await
        .unwrap();
    assert!(again.stopped.is_empty());
    assert_eq!(again.already_exited.len(), 2);

    pod.remove().await.expect("removes the pod");
}

#[tokio::test]
async fn kill_pod_by_namespace_and_name() {
    let Some(socket) = node_socket() else { return };
    let cri = Cri::connect(&socket).await.expect("connects to CRI");
    let pod = run_pod(&cri, "killme-named").await;

    let killed = PodKiller::new(&socket)
        .kill_pod(&PodRef::named(NAMESPACE, &pod.pod.name))
        .await
        .expect("kill-pod works");

    assert_eq!(killed.sandbox_ids, vec![pod.pod.id.clone()]);
    assert_eq!(killed.stopped.len(), 2);
    assert_all_sigkilled(&cri, &pod).await;
    let running = cri
        .list_containers(&ContainerFilter {
            running_only: true,
            ..ContainerFilter::in_pod(&pod.pod.id)
        })
        .await
        .unwrap();
    assert!(running.is_empty(), "still running: {running:?}");

    pod.remove().await.expect("removes the pod");
}

#[tokio::test]
async fn an_unknown_pod_is_not_found() {
    let Some(socket) = node_socket() else { return };
    let killer = PodKiller::new(&socket);

    let err = killer
        .kill_pod(&PodRef::named(NAMESPACE, unique_name("never-ran")))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");

    let err = killer
        .kill_pod(&PodRef::sandbox(
            "0000000000000000000000000000000000000000000000000000000000000000",
        ))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

/// Needs neither root nor a node.
#[tokio::test]
async fn a_missing_socket_is_a_clear_error() {
    let socket = Path::new("/nonexistent/rampart/containerd.sock");
    let err = PodKiller::new(socket)
        .kill_pod(&PodRef::named("default", "web"))
        .await
        .unwrap_err();

    assert!(matches!(err, KillPodError::SocketMissing { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("/nonexistent/rampart/containerd.sock"),
        "{text}"
    );
    assert!(text.contains("RAMPART_CRI_SOCKET"), "{text}");
}

/// A socket path that exists but where nobody listens: an error naming the socket, not a hang.
#[tokio::test]
async fn a_dead_socket_is_unreachable() {
    let dir = std::env::temp_dir().join(format!("rampart-dead-cri-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("containerd.sock");
    let _ = std::fs::remove_file(&socket);
    // Bound, then closed: the file stays, connecting is refused.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());

    let err = PodKiller::new(&socket)
        .kill_pod(&PodRef::named("default", "web"))
        .await
        .unwrap_err();

    let _ = std::fs::remove_dir_all(&dir);
    assert!(matches!(err, KillPodError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("containerd.sock"), "{err}");
}
