//! The write sensor: files closed after being opened for writing in watched containers' root
//! filesystems (fanotify `FAN_CLOSE_WRITE` on each container's root mount), read on a thread of
//! its own and handed to the caller with the file's path, as the container names it, and the
//! writer's pid.
//!
//! A close is where every way of writing ends, whatever wrote: write() through a descriptor
//! opened before a rule existed, stores to a shared mapping (once the descriptor is closed while
//! mapped, later stores are not seen), io_uring. It comes after the fact: the sensor reports, it
//! can't refuse. Volumes are other mounts and are not watched; renames, removals and mode
//! changes are not writes and are not seen here.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use nix::fcntl::AT_FDCWD;
use nix::sys::fanotify::{EventFFlags, Fanotify, InitFlags, MarkFlags, MaskFlags};

#[derive(Debug, thiserror::Error)]
pub enum WriteSensorError {
    #[error(
        "creating the write sensor's fanotify group failed: {0} (needs root, or CAP_SYS_ADMIN, \
         on a kernel with fanotify)"
    )]
    Init(#[source] nix::Error),
    #[error("starting the write sensor's reader thread failed: {0}")]
    Thread(#[source] std::io::Error),
    #[error("watching the root filesystem of pid {pid} failed: {source} (has it exited?)")]
    Mark {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
}

/// A file closed after it was opened for writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The process that closed it (host pid namespace).
    pub pid: i32,
    /// The file, as the container names it.
    pub path: String,
    /// The watched root filesystem it is on (its device number), and its inode.
    pub device: u64,
    pub inode: u64,
}

/// What the sensor hands each write to.
pub type WriteHandler = Box<dyn FnMut(&Write) + Send>;

pub struct WriteSensor {
    group: Arc<Fanotify>,
    /// Device numbers of the watched roots: a close on another filesystem is not reported.
    roots: Arc<Mutex<HashMap<u64, u32>>>,
    /// Times the kernel's queue overflowed (FAN_Q_OVERFLOW): at least one write lost each.
    lost: Arc<AtomicU64>,
}

impl std::fmt::Debug for WriteSensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteSensor").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each update is one map operation: a poisoned lock still holds a consistent map.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WriteSensor {
    /// Creates the group and starts the thread that hands each write to `on_write`.
    pub fn start(on_write: WriteHandler) -> Result<Arc<WriteSensor>, WriteSensorError> {
        let group = Fanotify::init(
            InitFlags::FAN_CLASS_NOTIF | InitFlags::FAN_CLOEXEC,
            EventFFlags::O_RDONLY | EventFFlags::O_CLOEXEC | EventFFlags::O_LARGEFILE,
        )
        .map_err(WriteSensorError::Init)?;
        let group = Arc::new(group);
        let roots: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
        let lost = Arc::new(AtomicU64::new(0));
        let (reader, known, overflows) = (group.clone(), roots.clone(), lost.clone());
        std::thread::Builder::new()
            .name("write-sensor".into())
            .spawn(move || read_writes(&reader, &known, &overflows, on_write))
            .map_err(WriteSensorError::Thread)?;
        Ok(Arc::new(WriteSensor { group, roots, lost }))
    }

    /// Watches the root filesystem of process `pid`'s container (the mount its `/` is). Returns
    /// the root's device number, which the writes on it carry.
    pub fn watch(&self, pid: u32) -> Result<u64, WriteSensorError> {
        let root = format!("/proc/{pid}/root/");
        let err = |source| WriteSensorError::Mark { pid, source };
        let device = std::fs::metadata(&root).map_err(err)?.dev();
        self.group
            .mark(
                MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_MOUNT,
                MaskFlags::FAN_CLOSE_WRITE,
                AT_FDCWD,
                Some(root.as_str()),
            )
            .map_err(|e| err(e.into()))?;
        lock(&self.roots).insert(device, pid);
        Ok(device)
    }

    /// Writes on the root with this device number are no longer reported (the mark goes with the
    /// mount when the container ends).
    pub fn unwatch(&self, device: u64) {
        lock(&self.roots).remove(&device);
    }

    /// Times the kernel's queue overflowed since start: writes were lost, at least one each.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

/// The reader thread: blocks on the group; returns only if it can no longer read it.
fn read_writes(
    group: &Fanotify,
    roots: &Mutex<HashMap<u64, u32>>,
    lost: &AtomicU64,
    mut on_write: WriteHandler,
) {
    loop {
        let events = match group.read_events() {
            Ok(events) => events,
            Err(nix::Error::EINTR) => continue,
            Err(_) => return,
        };
        for event in events {
            if event.mask().contains(MaskFlags::FAN_Q_OVERFLOW) {
                // Writes were lost, and nothing says which.
                lost.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Some(fd) = event.fd() else {
                continue;
            };
            let Ok(meta) = nix::sys::stat::fstat(fd.as_fd()) else {
                continue;
            };
            let device = meta.st_dev;
            if !lock(roots).contains_key(&device) {
                continue;
            }
            let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
            let Ok(path) = std::fs::read_link(&link) else {
                continue;
            };
            on_write(&Write {
                pid: event.pid(),
                path: path.to_string_lossy().into_owned(),
                device,
                inode: meta.st_ino,
            });
        }
    }
}
