//! Where an executable comes from: the container's image, or not (drift). Decided on the file the
//! kernel opened, never on its name: a binary dropped at /usr/sbin/nginx, an image binary written
//! over, a memfd called "nginx" are all not the image's nginx.
//!
//! A container's root is an overlayfs: the image's layers below (read-only), the container's own
//! writes in the upper layer. With all layers on one filesystem (how containerd's overlayfs
//! snapshotter lays them out) overlayfs reports each file's real inode number, so a file is the
//! image's when no upper entry shadows its path and the topmost lower layer that has the path has
//! that very inode. A file copied up (written, or its metadata changed) is in the upper layer: it
//! is not the image's any more. A rename of a dropped file away from the checked path meanwhile
//! leaves a lower file with another inode, or none: still not the image's.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::fstat;
use tracing::warn;

use crate::guard::mounts::{task_root, unique_root_mount};

/// What an executable is, as far as drift is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A file of the image's lower layers, unmodified.
    Image,
    /// In the root's upper layer: written after the container started, or an image file
    /// modified (copied up).
    Written,
    /// On another filesystem than the root: a volume, a tmpfs, /dev/shm.
    OtherFilesystem,
    /// A memfd, or a file deleted since it was opened.
    Unlinked,
    /// The root is not an overlayfs (another snapshotter): rampart can't tell, and takes the
    /// file for the image's rather than fail the workload.
    Unknown,
}

impl Origin {
    pub fn in_image(self) -> bool {
        matches!(self, Origin::Image | Origin::Unknown)
    }
}

/// Task `tid`'s executable as policy's process rules see it: its path if the file is the image's
/// own, "" (which no process rule matches, allows included) if it was written after the
/// container started, is a memfd, or lives on a volume: an allowance for /usr/sbin/nginx is for
/// the image's nginx, not for what a process put at that path.
pub fn process_identity(tid: u32) -> String {
    let link = format!("/proc/{tid}/exe");
    let (Ok(exe), Ok(path)) = (
        nix::fcntl::open(
            link.as_str(),
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ),
        std::fs::read_link(&link),
    ) else {
        return String::new();
    };
    let path = path.to_string_lossy().into_owned();
    if origins().of(tid, exe.as_fd(), &path).in_image() {
        path
    } else {
        String::new()
    }
}

/// The image's layers and the upper layer of one container root.
struct Layers {
    upper: OwnedFd,
    /// Topmost first.
    lowers: Vec<OwnedFd>,
}

/// The layers of the containers seen so far, by the root mount's never-reused id (Linux 6.8;
/// without it the task's mountinfo is read for each question).
pub struct Origins {
    layers: Mutex<HashMap<u64, Option<Arc<Layers>>>>,
}

/// Bounds the cache; a container's entry is a few descriptors.
const MAX_ROOTS: usize = 4096;

/// The agent's one cache.
pub fn origins() -> &'static Origins {
    static ORIGINS: OnceLock<Origins> = OnceLock::new();
    ORIGINS.get_or_init(|| Origins {
        layers: Mutex::new(HashMap::new()),
    })
}

impl Origins {
    /// Where `file` (open, O_PATH is enough), which task `tid` named `path` (the container's
    /// path of the file, as its descriptor reads), comes from.
    pub fn of(&self, tid: u32, file: BorrowedFd<'_>, path: &str) -> Origin {
        let (Ok(st), Ok(root)) = (
            fstat(file),
            task_root(tid).and_then(|r| Ok(fstat(r.as_fd())?)),
        ) else {
            // The task is gone or the file unreadable: nothing runs from it anyway.
            return Origin::Unlinked;
        };
        if st.st_nlink == 0 {
            return Origin::Unlinked;
        }
        if st.st_dev != root.st_dev {
            return Origin::OtherFilesystem;
        }
        let Some(layers) = self.layers(tid) else {
            return Origin::Unknown;
        };
        let Some(rel) = path.strip_prefix('/').and_then(|r| CString::new(r).ok()) else {
            return Origin::Written;
        };
        match lookup(layers.upper.as_fd(), &rel) {
            Lookup::Found(_) | Lookup::Unsure => return Origin::Written,
            Lookup::Absent => {}
        }
        for lower in &layers.lowers {
            match lookup(lower.as_fd(), &rel) {
                Lookup::Found(ino) if ino == st.st_ino => return Origin::Image,
                Lookup::Found(_) | Lookup::Unsure => return Origin::Written,
                Lookup::Absent => {}
            }
        }
        Origin::Written
    }

    fn layers(&self, tid: u32) -> Option<Arc<Layers>> {
        let key = unique_root_mount(tid).ok();
        if let Some(k) = key
            && let Some(l) = self.lock().get(&k)
        {
            return l.clone();
        }
        let found = read_layers(tid).map(Arc::new);
        if found.is_none() {
            warn!(
                tid,
                "the container's root is not an overlayfs with upper and lower layers: drift and \
                 executable identity can't be told from the filesystem, every file counts as the \
                 image's"
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

enum Lookup {
    Found(u64),
    Absent,
    /// Something in the way (a symlink where the path has a directory): not a plain lower file.
    Unsure,
}

/// `rel` under a layer directory, symlinks refused (the path read from the descriptor has
/// none; a symlink in a layer the container writes is the container's).
fn lookup(layer: BorrowedFd<'_>, rel: &CString) -> Lookup {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        );
    match nix::fcntl::openat2(layer, rel.as_c_str(), how) {
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
    let (upper, lowers) = root_layers(&info)?;
    let open = |p: &str| -> io::Result<OwnedFd> {
        Ok(nix::fcntl::open(
            p,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?)
    };
    Some(Layers {
        upper: open(&upper).ok()?,
        lowers: lowers
            .iter()
            .map(|l| open(l))
            .collect::<io::Result<_>>()
            .ok()?,
    })
}

/// (upperdir, lowerdirs topmost first) of the overlay mounted at `/` in `mountinfo`.
fn root_layers(mountinfo: &str) -> Option<(String, Vec<String>)> {
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

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
        let (upper, lowers) = root_layers(info).unwrap();
        assert_eq!(upper, "/s/9/fs");
        assert_eq!(lowers, ["/s/3/fs", "/s/2/fs"]);
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
        let not_overlay = "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n";
        assert!(root_layers(not_overlay).is_none());
        let new_api = "1 0 0:9 / / rw - overlay overlay rw,lowerdir+=/l/1,lowerdir+=/l/0,upperdir=/u,workdir=/w\n";
        assert_eq!(root_layers(new_api).unwrap().1, ["/l/1", "/l/0"]);
    }
}
