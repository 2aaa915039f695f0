//! Telling rampart-nri that the guard watches a container (`GUARD_READY_DIR`): a container
//! whose execs only the guard decides must not start before its mounts are marked, and the
//! notify fd that tells the agent about it arrives while runc carries on without waiting. So
//! rampart-nri holds StartContainer (the runtime has not started the process yet) until the
//! file named after the container exists here.

use std::io;
use std::path::{Path, PathBuf};

use rampart_protos::agent::{GUARD_READY_DIR, guard_ready_file};

#[derive(Debug, Clone)]
pub struct ReadyDir {
    /// The agent's listener socket, which the directory sits next to.
    socket: PathBuf,
}

impl ReadyDir {
    /// The directory next to the agent's listener socket, as rampart-nri finds it from the
    /// filters' listenerPath.
    pub fn next_to(socket: &Path) -> ReadyDir {
        ReadyDir {
            socket: socket.to_owned(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.socket
            .parent()
            .unwrap_or(Path::new("/"))
            .join(GUARD_READY_DIR)
    }

    /// The guard watches `container_id`.
    pub fn mark(&self, container_id: &str) -> io::Result<()> {
        let file = self.file(container_id)?;
        std::fs::create_dir_all(self.path())?;
        std::fs::write(file, b"")
    }

    /// The container ended.
    pub fn clear(&self, container_id: &str) {
        if let Ok(file) = self.file(container_id) {
            let _ = std::fs::remove_file(file);
        }
    }

    fn file(&self, container_id: &str) -> io::Result<PathBuf> {
        guard_ready_file(&self.socket, container_id).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("container id {container_id:?} is not a plain file name"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_per_container_next_to_the_socket_and_nothing_outside_it() {
        let dir = std::env::temp_dir().join(format!("rampart-ready-{}", std::process::id()));
        let ready = ReadyDir::next_to(&dir.join("seccomp.sock"));
        assert_eq!(ready.path(), dir.join("guard"));
        ready.mark("abc123").unwrap();
        assert!(dir.join("guard/abc123").exists());
        ready.clear("abc123");
        assert!(!dir.join("guard/abc123").exists());
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(ready.mark(bad).is_err(), "{bad:?}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
