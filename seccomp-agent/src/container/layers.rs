//! The layers of a container's root filesystem (overlayfs: the image's read-only lower layers, the
//! container's writes in the upper layer), found from a task's mountinfo and opened on the host's
//! side. Looking a path up there tells where a file of the root comes from
//! (`container::origin`), and reads the image's own files without opening anything through the
//! container's mounts, which the file guard watches.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::fstat;
use tracing::warn;

use crate::guard::mounts::unescape;
use crate::sys::statx;

/// The image's layers and the upper layer of one container root, as host paths (held by name,
/// not by descriptor: a container's end leaves nothing open in the agent).
pub struct Layers {
    pub upper: PathBuf,
    /// Topmost first.
    pub lowers: Vec<PathBuf>,
}

/// The layers of the containers seen so far, by the root mount's never-reused id (Linux 6.8;
/// without it the task's mountinfo is read for each question).
pub struct RootLayers {
    layers: Mutex<HashMap<u64, Option<Arc<Layers>>>>,
}

/// Bounds the cache; a container's entry is a few paths.
const MAX_ROOTS: usize = 4096;

/// The agent's one cache.
pub fn root_layers() -> &'static RootLayers {
    static LAYERS: OnceLock<RootLayers> = OnceLock::new();
    LAYERS.get_or_init(|| RootLayers {
        layers: Mutex::new(HashMap::new()),
    })
}

impl RootLayers {
    /// The layers of task `tid`'s root (`root`, its /proc/<tid>/root); None when it is not an
    /// overlayfs (another snapshotter).
    pub fn of(&self, tid: u32, root: BorrowedFd<'_>) -> Option<Arc<Layers>> {
        let key = statx::unique_mount_id(root).ok();
        if let Some(k) = key
            && let Some(l) = self.lock().get(&k)
        {
            return l.clone();
        }
        let found = read_layers(tid).map(Arc::new);
        if found.is_none() {
            warn!(
                tid,
                "the container's root is not an overlayfs with upper and lower layers: drift, \
                 executable identity and user names can't be told from the filesystem"
            );
        }
        if let Some(k) = key {
            let mut cache = self.lock();
            if cache.len() >= MAX_ROOTS {
                cache.clear();
            }
            cache.insert(k, found.clone());
        }
        found
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Option<Arc<Layers>>>> {
        self.layers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Layers {
    /// The contents of the root's file `rel` (no leading `/`) as the container sees it: the
    /// upper layer's if it has the path, else the topmost lower layer's. At most `max` bytes.
    pub fn read(&self, rel: &str, max: usize) -> Option<Vec<u8>> {
        let rel = CString::new(rel).ok()?;
        for layer in std::iter::once(&self.upper).chain(&self.lowers) {
            match lookup_fd(layer, &rel, OFlag::O_RDONLY) {
                Ok(fd) => {
                    use std::io::Read;
                    let mut out = Vec::new();
                    std::fs::File::from(fd)
                        .take(max as u64)
                        .read_to_end(&mut out)
                        .ok()?;
                    return Some(out);
                }
                Err(nix::errno::Errno::ENOENT) => {}
                Err(_) => return None,
            }
        }
        None
    }
}

pub enum Lookup {
    Found(u64),
    Absent,
    /// Something in the way (a symlink where the path has a directory): not a plain lower file.
    Unsure,
}

fn lookup_fd(layer: &Path, rel: &CString, flags: OFlag) -> nix::Result<OwnedFd> {
    let dir = open_dir(layer)?;
    let how = OpenHow::new()
        .flags(flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        );
    nix::fcntl::openat2(dir.as_fd(), rel.as_c_str(), how)
}

fn open_dir(p: &Path) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        p,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
}

/// `rel` under a layer directory, symlinks refused (the path read from the descriptor has
/// none; a symlink in a layer the container writes is the container's).
pub fn lookup(layer: &Path, rel: &CString) -> Lookup {
    match lookup_fd(layer, rel, OFlag::O_PATH) {
        Ok(fd) => match fstat(fd.as_fd()) {
            Ok(st) => Lookup::Found(st.st_ino),
            Err(_) => Lookup::Unsure,
        },
        Err(nix::errno::Errno::ENOENT) => Lookup::Absent,
        Err(_) => Lookup::Unsure,
    }
}

/// The root mount's layers, from the task's mountinfo: the line whose mount point is `/`.
fn read_layers(tid: u32) -> Option<Layers> {
    let info = std::fs::read_to_string(format!("/proc/{tid}/mountinfo")).ok()?;
    let (upper, lowers) = parse_root(&info)?;
    let layers = Layers {
        upper: PathBuf::from(upper),
        lowers: lowers.into_iter().map(PathBuf::from).collect(),
    };
    // Reachable from the agent (the host's mount namespace), or not usable at all.
    std::iter::once(&layers.upper)
        .chain(&layers.lowers)
        .all(|d| open_dir(d).is_ok())
        .then_some(layers)
}

/// (upperdir, lowerdirs topmost first) of the overlay mounted at `/` in `mountinfo`.
fn parse_root(mountinfo: &str) -> Option<(String, Vec<String>)> {
    // The last `/` mount is the one the task sees (a later mount over the root hides earlier).
    let line = mountinfo
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some("/"))?;
    let (_, after) = line.split_once(" - ")?;
    let mut fields = after.split(' ');
    if fields.next()? != "overlay" {
        return None;
    }
    let options = fields.nth(1)?;
    let (mut upper, mut lowers) = (None, Vec::new());
    for opt in options.split(',') {
        if let Some(u) = opt.strip_prefix("upperdir=") {
            upper = Some(unescape(u));
        } else if let Some(l) = opt.strip_prefix("lowerdir=") {
            // "a:b", and "::" separates data-only layers (none of a container's files).
            let l = l.split("::").next().unwrap_or(l);
            lowers.extend(l.split(':').map(unescape));
        } else if let Some(l) = opt.strip_prefix("lowerdir+=") {
            lowers.push(unescape(l));
        }
    }
    (!lowers.is_empty()).then_some((upper?, lowers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_overlays_layers_are_read_from_mountinfo() {
        let info = "\
100 63 0:52 / / rw,relatime - overlay overlay rw,lowerdir=/s/3/fs:/s/2/fs,upperdir=/s/9/fs,workdir=/s/9/work,uuid=on
101 100 0:53 / /proc rw,nosuid - proc proc rw
102 100 0:54 / /tmp/with\\040space rw - tmpfs tmpfs rw
";
        let (upper, lowers) = parse_root(info).unwrap();
        assert_eq!(upper, "/s/9/fs");
        assert_eq!(lowers, ["/s/3/fs", "/s/2/fs"]);
        let not_overlay = "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n";
        assert!(parse_root(not_overlay).is_none());
        let new_api = "1 0 0:9 / / rw - overlay overlay rw,lowerdir+=/l/1,lowerdir+=/l/0,upperdir=/u,workdir=/w\n";
        assert_eq!(parse_root(new_api).unwrap().1, ["/l/1", "/l/0"]);
    }
}
