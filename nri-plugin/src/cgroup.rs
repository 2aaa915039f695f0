//! A container's cgroup v2 id from NRI's `cgroups_path`: the inode number of its directory in the
//! v2 hierarchy, which is what `bpf_get_current_cgroup_id()` returns for its processes, so kernel
//! events can be mapped to the pod.
//!
//! Two things vary by node: the path syntax (the cgroupfs driver gives a path, the systemd driver
//! gives `slice:prefix:name`) and where the v2 hierarchy is mounted (pure v2 at /sys/fs/cgroup;
//! hybrid v1 nodes, like this machine kind, at /sys/fs/cgroup/unified, where runc also places
//! every container).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

pub const SYS_FS_CGROUP: &str = "/sys/fs/cgroup";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "no cgroup v2 hierarchy under {0} (neither {0}/cgroup.controllers nor \
         {0}/unified/cgroup.controllers); rampart needs cgroup v2 (pure or hybrid) to map kernel \
         events to pods"
    )]
    NoV2(PathBuf),
    #[error("cgroups path {path:?} is not valid: {why}")]
    BadPath { path: String, why: String },
    #[error(
        "cannot stat the container's cgroup {dir}: {source}; has the container started (its \
         cgroup exists from runc create on)?"
    )]
    Stat { dir: PathBuf, source: io::Error },
}

/// Where the v2 hierarchy is mounted under `sys_fs_cgroup` (normally /sys/fs/cgroup).
pub fn v2_root(sys_fs_cgroup: &Path) -> Result<PathBuf, CgroupError> {
    if sys_fs_cgroup.join("cgroup.controllers").is_file() {
        return Ok(sys_fs_cgroup.to_owned());
    }
    let unified = sys_fs_cgroup.join("unified");
    if unified.join("cgroup.controllers").is_file() {
        return Ok(unified);
    }
    Err(CgroupError::NoV2(sys_fs_cgroup.to_owned()))
}

/// NRI's `cgroups_path` as a path relative to the v2 root.
pub fn relative_path(cgroups_path: &str) -> Result<PathBuf, CgroupError> {
    let bad = |why: &str| CgroupError::BadPath {
        path: cgroups_path.to_owned(),
        why: why.to_owned(),
    };
    if cgroups_path.is_empty() {
        return Err(bad("empty"));
    }
    // cgroupfs paths may contain ':' only in theory; systemd ones are exactly three fields and
    // never start with '/'.
    let rel = if !cgroups_path.starts_with('/') && cgroups_path.matches(':').count() == 2 {
        systemd_path(cgroups_path).map_err(|why| bad(&why))?
    } else {
        PathBuf::from(cgroups_path.trim_start_matches('/'))
    };
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(bad("must not contain '..' or '.'"));
    }
    if rel.as_os_str().is_empty() {
        return Err(bad("names the root cgroup"));
    }
    Ok(rel)
}

/// `slice:prefix:name` → `<expanded slice>/<prefix>-<name>.scope`, as runc's systemd driver
/// names the unit (a name ending in `.slice` is the unit itself).
fn systemd_path(s: &str) -> Result<PathBuf, String> {
    let mut parts = s.splitn(3, ':');
    let (slice, prefix, name) = match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => return Err("expected slice:prefix:name".into()),
    };
    if name.is_empty() {
        return Err("the unit name is empty".into());
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let unit = if name.ends_with(".slice") {
        name.to_owned()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    if unit.contains('/') {
        return Err("the unit name contains '/'".into());
    }
    Ok(expand_slice(slice)?.join(unit))
}

/// systemd's slice nesting: `a-b-c.slice` lives in `a.slice/a-b.slice/a-b-c.slice`.
fn expand_slice(slice: &str) -> Result<PathBuf, String> {
    let base = slice
        .strip_suffix(".slice")
        .ok_or_else(|| format!("slice {slice:?} does not end in .slice"))?;
    if slice.contains('/') {
        return Err(format!("slice {slice:?} contains '/'"));
    }
    if base == "-" {
        return Ok(PathBuf::new());
    }
    let mut out = PathBuf::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return Err(format!("slice {slice:?} has an empty component"));
        }
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        out.push(format!("{prefix}.slice"));
    }
    Ok(out)
}

/// A resolved container cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCgroup {
    pub id: u64,
    pub dir: PathBuf,
}

/// Resolves `cgroups_path` under the v2 root and reads its id.
pub fn resolve(v2_root: &Path, cgroups_path: &str) -> Result<ContainerCgroup, CgroupError> {
    let dir = v2_root.join(relative_path(cgroups_path)?);
    let meta = std::fs::metadata(&dir).map_err(|source| CgroupError::Stat {
        dir: dir.clone(),
        source,
    })?;
    Ok(ContainerCgroup {
        id: meta.ino(),
        dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroupfs_paths_are_relative_to_the_root() {
        assert_eq!(
            relative_path("/rampart-pods/podu1/abc").unwrap(),
            PathBuf::from("rampart-pods/podu1/abc")
        );
        assert_eq!(
            relative_path("/kubepods/burstable/pod123/c0ffee").unwrap(),
            PathBuf::from("kubepods/burstable/pod123/c0ffee")
        );
    }

    #[test]
    fn systemd_paths_expand_slices_and_name_the_scope() {
        assert_eq!(
            relative_path("kubepods-burstable-pod1234.slice:cri-containerd:c0ffee").unwrap(),
            PathBuf::from(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/\
                 cri-containerd-c0ffee.scope"
            )
        );
        assert_eq!(
            relative_path("system.slice:docker:abc").unwrap(),
            PathBuf::from("system.slice/docker-abc.scope")
        );
        assert_eq!(
            relative_path(":cri-containerd:abc").unwrap(),
            PathBuf::from("system.slice/cri-containerd-abc.scope")
        );
        assert_eq!(
            relative_path("-.slice:p:abc").unwrap(),
            PathBuf::from("p-abc.scope")
        );
        assert_eq!(
            relative_path("kubepods.slice:p:kubepods-x.slice").unwrap(),
            PathBuf::from("kubepods.slice/kubepods-x.slice")
        );
    }

    #[test]
    fn bad_paths_are_errors() {
        for bad in [
            "",
            "/",
            "/a/../b",
            "notaslice:p:abc",
            "a--b.slice:p:abc",
            "a.slice:p:",
            "a/b.slice:p:x",
        ] {
            assert!(
                matches!(relative_path(bad), Err(CgroupError::BadPath { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn finds_the_v2_root_pure_or_hybrid() {
        let dir = std::env::temp_dir().join(format!("rampart-cgroup-test-{}", std::process::id()));
        let (pure, hybrid, none) = (dir.join("pure"), dir.join("hybrid"), dir.join("none"));
        std::fs::create_dir_all(&pure).unwrap();
        std::fs::create_dir_all(hybrid.join("unified")).unwrap();
        std::fs::create_dir_all(&none).unwrap();
        std::fs::write(pure.join("cgroup.controllers"), "cpu memory").unwrap();
        std::fs::write(hybrid.join("unified/cgroup.controllers"), "").unwrap();
        assert_eq!(v2_root(&pure).unwrap(), pure);
        assert_eq!(v2_root(&hybrid).unwrap(), hybrid.join("unified"));
        assert!(matches!(v2_root(&none), Err(CgroupError::NoV2(_))));

        std::fs::create_dir_all(pure.join("pods/p1/c1")).unwrap();
        let cg = resolve(&pure, "/pods/p1/c1").unwrap();
        assert_eq!(
            cg.id,
            std::fs::metadata(pure.join("pods/p1/c1")).unwrap().ino()
        );
        let err = resolve(&pure, "/pods/p1/missing").unwrap_err();
        assert!(
            err.to_string().contains("has the container started"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The real hierarchy: this process's own v2 cgroup (the `0::` line of /proc/self/cgroup)
    /// resolves to the directory's inode.
    #[test]
    fn resolves_this_process_cgroup_on_the_real_hierarchy() {
        let Ok(root) = v2_root(Path::new(SYS_FS_CGROUP)) else {
            eprintln!("skipped: no cgroup v2 hierarchy on this machine");
            return;
        };
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let Some(path) = own.lines().find_map(|l| l.strip_prefix("0::")) else {
            eprintln!("skipped: this process has no v2 cgroup line");
            return;
        };
        if path == "/" {
            eprintln!("skipped: this process sits in the root cgroup");
            return;
        }
        let cg = resolve(&root, path).unwrap();
        assert_eq!(
            cg.id,
            std::fs::metadata(root.join(&path[1..])).unwrap().ino()
        );
        assert!(cg.id > 1);
    }
}
