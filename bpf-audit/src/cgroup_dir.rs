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
