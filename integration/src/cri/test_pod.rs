//! A pod for a test that cleans up after itself, even when the test panics halfway.

use std::ops::Deref;
use std::path::PathBuf;
use std::time::Duration;

use super::client::Cri;
use super::error::CriError;
use super::exec::ExecOutput;
use super::pod::RunningPod;
use super::spec::{ContainerSpec, PodSpec};

/// A running pod that is removed when dropped.
///
/// Prefer `remove().await` at the end of a test: it reports errors. Drop is the safety net for
/// panics; it cannot await, so it removes the pod from a helper thread with its own runtime and
/// connection (the test's runtime may be single-threaded and is blocked in Drop) and waits for
/// it, printing any error to stderr.
#[derive(Debug)]
pub struct TestPod {
    cri: Cri,
    running: Option<RunningPod>,
}

impl TestPod {
    /// Runs the pod and waits until its containers run (see `Cri::run`).
    pub async fn run(
        cri: &Cri,
        spec: &PodSpec,
        containers: &[ContainerSpec],
    ) -> Result<TestPod, CriError> {
        let running = cri.run(spec, containers).await?;
        Ok(TestPod {
            cri: cri.clone(),
            running: Some(running),
        })
    }

    /// Takes over a pod started some other way.
    pub fn adopt(cri: &Cri, running: RunningPod) -> TestPod {
        TestPod {
            cri: cri.clone(),
            running: Some(running),
        }
    }

    fn running(&self) -> &RunningPod {
        self.running
            .as_ref()
            .expect("a TestPod is only disarmed by methods that consume it")
    }

    /// The id of the container named `name`.
    pub fn container_id(&self, name: &str) -> Result<&str, CriError> {
        self.running().container_id(name)
    }

    /// ExecSync in the named container, bounded to 30 seconds.
    pub async fn exec<S: AsRef<str>>(
        &self,
        container: &str,
        cmd: &[S],
    ) -> Result<ExecOutput, CriError> {
        let id = self.container_id(container)?;
        self.cri.exec_sync(id, cmd, Duration::from_secs(30)).await
    }

    /// The named container's output so far.
    pub async fn logs(&self, container: &str) -> Result<String, CriError> {
        let id = self.container_id(container)?;
        self.cri.container_log_text(id).await
    }

    /// Removes the pod now, reporting failure.
    pub async fn remove(mut self) -> Result<(), CriError> {
        match self.running.take() {
            Some(running) => self.cri.remove_pod(&running.pod.id).await,
            None => Ok(()),
        }
    }

    /// Leaves the pod running (to look at it by hand after a test) and hands it back.
    pub fn keep(mut self) -> RunningPod {
        self.running
            .take()
            .expect("a TestPod is only disarmed by methods that consume it")
    }
}

impl Deref for TestPod {
    type Target = RunningPod;

    fn deref(&self) -> &RunningPod {
        self.running()
    }
}

impl Drop for TestPod {
    fn drop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        let socket: PathBuf = self.cri.socket().to_owned();
        let node_dir: PathBuf = self.cri.node_dir().to_owned();
        let pod_id = running.pod.id.clone();
        let name = running.pod.full_name();
        let cleanup = std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let cri = Cri::connect(&socket).await?.with_node_dir(node_dir);
                cri.remove_pod(&pod_id).await
            })
            .map_err(|e| e.to_string())
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("TestPod: could not remove pod {name}: {e}"),
            Err(_) => eprintln!("TestPod: removing pod {name} panicked"),
        }
    }
}

/// `prefix-xxxxxxxx`: a pod name no parallel test shares.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..8])
}

/// The node's CRI for a test, or None when the test can't run here and isn't required to (it
/// prints why). Under `make test` (RAMPART_NODE_TESTS set) a missing node or missing root is a
/// failure, not a skip: a skipped node test there would hide a broken node.
pub async fn test_node() -> Option<Cri> {
    let required = std::env::var_os("RAMPART_NODE_TESTS").is_some();
    // The effective uid (second field of Uid:), without a dependency for one call.
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|u| u.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false);
    if !root {
        assert!(
            !required,
            "RAMPART_NODE_TESTS is set but the tests do not run as root"
        );
        eprintln!("skipped: needs root and the node (run `make node-up`, or `make test`)");
        return None;
    }
    match Cri::connect_default().await {
        Ok(cri) => Some(cri),
        Err(e) if !required => {
            eprintln!("skipped: {e}");
            None
        }
        Err(e) => panic!("RAMPART_NODE_TESTS is set but the node is not reachable: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_and_distinct() {
        let a = unique_name("probe");
        let b = unique_name("probe");
        assert_ne!(a, b);
        assert!(a.starts_with("probe-") && a.len() == "probe-".len() + 8);
        assert!(PodSpec::new(&a).validate().is_ok());
    }
}
