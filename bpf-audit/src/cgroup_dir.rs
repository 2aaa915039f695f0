//! Opening a cgroup v2 directory to attach programs to it, and its id (the directory's inode,
//! what bpf_get_current_cgroup_id() and bpf_skb_cgroup_id() return).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};

#[derive(Debug, thiserror::Error)]
pub enum CgroupDirError {
    #[error(
        "{path} is not a cgroup v2 directory: pass the container's cgroup in the v2 tree \
         (on a hybrid host that is under /sys/fs/cgroup/unified)"
    )]
    NotCgroup2 { path: PathBuf },
    #[error("cannot open cgroup directory {path}: {source} (check that the cgroup still exists)")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The directory, open, and its cgroup id.
pub fn open(path: &Path) -> Result<(File, u64), CgroupDirError> {
    let not_v2 = || CgroupDirError::NotCgroup2 {
        path: path.to_path_buf(),
    };
    let open_err = |source| CgroupDirError::Open {
        path: path.to_path_buf(),
        source,
    };
    match statfs(path) {
        Ok(fs) if fs.filesystem_type() == CGROUP2_SUPER_MAGIC => {}
        Ok(_) => return Err(not_v2()),
        Err(errno) => return Err(open_err(errno.into())),
    }
    let dir = File::open(path).map_err(open_err)?;
    let meta = dir.metadata().map_err(open_err)?;
    if !meta.is_dir() {
        return Err(not_v2());
    }
    Ok((dir, meta.ino()))
}

/// Where cgroup v2 is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host.
pub fn v2_root() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| statfs(p).is_ok_and(|fs| fs.filesystem_type() == CGROUP2_SUPER_MAGIC))
}

/// The ids of every cgroup below (and of) `root`, as the tree stands now.
pub fn existing_ids(root: &Path) -> std::collections::HashSet<u64> {
    let mut ids = std::collections::HashSet::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        if let Ok(meta) = std::fs::metadata(&dir) {
            ids.insert(meta.ino());
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(e.path());
            }
        }
    }
    ids
}
