//! What the kernel tests share: a cgroup of the test's own, and the test process moved into it
//! while it makes the sockets that are to belong there.

// Each test binary uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Moving the test process between cgroups is one at a time.
static MOVES: Mutex<()> = Mutex::new(());

pub fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("needs root; skipped");
    false
}

fn cgroup_root() -> &'static str {
    if Path::new("/sys/fs/cgroup/unified").exists() {
        "/sys/fs/cgroup/unified"
    } else {
        "/sys/fs/cgroup"
    }
}

/// A cgroup below the test's own; removed when dropped.
pub struct TestCgroup {
    own: PathBuf,
    pub path: PathBuf,
}

impl TestCgroup {
    pub fn new(name: &str) -> TestCgroup {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let own = cgroup.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
        let own = PathBuf::from(format!("{}{own}", cgroup_root()));
        let path = own.join(format!("rampart-{name}-{}", std::process::id()));
        std::fs::create_dir(&path).unwrap();
        TestCgroup { own, path }
    }

    /// Runs `make` with the test process in this cgroup: the sockets it makes belong here.
    pub fn inside<T>(&self, make: impl FnOnce() -> T) -> T {
        self.inside_dir(&self.path.clone(), make)
    }

    /// [`inside`](Self::inside), in `dir` (this cgroup or one below it).
    pub fn inside_dir<T>(&self, dir: &Path, make: impl FnOnce() -> T) -> T {
        let _turn = MOVES.lock().unwrap_or_else(|e| e.into_inner());
        let pid = std::process::id().to_string();
        std::fs::write(dir.join("cgroup.procs"), &pid).unwrap();
        let made = make();
        std::fs::write(self.own.join("cgroup.procs"), &pid).unwrap();
        made
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.path);
    }
}
