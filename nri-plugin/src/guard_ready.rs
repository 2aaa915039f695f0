//! Holding a container's start until the seccomp agent's file guard watches it, where the plan
//! left its execs to the guard alone (`EXEC_GUARD_ANNOTATION`). The agent learns of the
//! container when runc hands it the notify fd, and runc does not wait for the agent; but the
//! runtime sends StartContainer before it starts the process, and waits for the answer. The
//! agent makes a file named after the container in `GUARD_READY_DIR`, next to its socket, once
//! the container's mounts are marked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_protos::agent::guard_ready_file;

/// How long StartContainer waits: well inside NRI's 2 s per request, with room for the bind.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(2);

/// The file the agent makes for `container_id`, given the filters' listenerPath.
pub fn ready_file(seccomp_socket: &str, container_id: &str) -> Option<PathBuf> {
    guard_ready_file(Path::new(seccomp_socket), container_id)
}

/// Whether `file` exists within `timeout`.
pub async fn wait(file: &Path, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if tokio::fs::try_exists(file).await.unwrap_or(false) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_sits_next_to_the_agent_s_socket() {
        assert_eq!(
            ready_file("/run/rampart/seccomp.sock", "abc").unwrap(),
            Path::new("/run/rampart/guard/abc")
        );
        assert!(ready_file("/run/rampart/seccomp.sock", "../x").is_none());
        assert!(ready_file("/run/rampart/seccomp.sock", "").is_none());
    }

    #[tokio::test]
    async fn waits_for_the_file_and_gives_up_at_the_timeout() {
        let dir = std::env::temp_dir().join(format!("rampart-nri-ready-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c1");
        assert!(!wait(&file, Duration::from_millis(20)).await);
        let made = {
            let file = file.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                std::fs::write(file, b"").unwrap();
            })
        };
        assert!(wait(&file, Duration::from_secs(2)).await);
        made.await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
