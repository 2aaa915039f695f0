//! A task's cgroup in the v2 hierarchy: where the egress backstop attaches its programs and what
//! the process sensor filters on (its inode is the id bpf_get_current_cgroup_id() returns).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on a pure v2 host,
/// /sys/fs/cgroup/unified on a hybrid one.
pub fn v2_mount() -> io::Result<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let (_, dir, fstype) = (f.next()?, f.next()?, f.next()?);
            (fstype == "cgroup2").then(|| Path::new(dir).to_owned())
        })
        .next()
        .ok_or_else(|| {
            io::Error::other("no cgroup2 mount: rampart's cgroup programs need cgroup v2")
        })
}

/// The cgroup v2 directory of task `tid` (its "0::" line), under the hierarchy at `root`.
pub fn of_task(root: &Path, tid: u32) -> io::Result<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{tid}/cgroup"))?;
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| io::Error::other(format!("task {tid} has no cgroup v2 membership")))?;
    Ok(root.join(path.trim_start_matches('/')))
}

/// The id of the cgroup at `dir`.
pub fn id(dir: &Path) -> io::Result<u64> {
    Ok(std::fs::metadata(dir)?.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_s_cgroup_is_found() {
        let Ok(root) = v2_mount() else {
            eprintln!("no cgroup v2 here; skipped");
            return;
        };
        let dir = of_task(&root, std::process::id()).unwrap();
        assert!(dir.starts_with(&root), "{}", dir.display());
        assert!(id(&dir).unwrap() > 0);
    }
}
