//! One protected container's fanotify group: the marks on its mounts, and the allows it
//! remembers in the kernel (ignore marks on inodes).
//!
//! One group per container, so that a remembered allow is never wider than the container it was
//! decided for: an ignore mark only silences its own group's mount marks, and another container
//! (a different policy, the same volume) has its own group, or none.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use nix::sys::fanotify::{EventFFlags, Fanotify, InitFlags, MarkFlags, MaskFlags};
use nix::sys::stat::{SFlag, fstat};
use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::guard::mounts;
use crate::guard::runtime::Runtimes;
use crate::workload::Workload;

/// Remembered allows per container before they are all dropped and relearned: each pins an
/// inode in the kernel's cache.
pub const MAX_REMEMBERED: usize = 16_384;

/// What identifies a group when the holder gives it back to a new agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMeta {
    /// The container, as the notify fd that first watched it named it.
    pub workload: Workload,
    /// The container's pid namespace: whose tasks the group decides for.
    pub pid_ns: u64,
    /// The device of the container's root filesystem: only its files are remembered.
    pub root_dev: u64,
    /// Whether read-only opens are marked (FAN_OPEN_PERM), or only exec opens, when the group
    /// was created (a policy edit can turn it on later: [`Group::enable_reads`]).
    pub reads: bool,
}

/// Why an allow is, or is not, remembered: the facts about the file that the rules can't see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileFacts {
    pub dev: u64,
    pub nlink: u64,
    pub regular: bool,
}

impl FileFacts {
    pub fn of(file: BorrowedFd<'_>) -> Option<FileFacts> {
        fstat(file).ok().map(|st| FileFacts::from(&st))
    }

    pub fn from(st: &nix::sys::stat::FileStat) -> FileFacts {
        FileFacts {
            dev: st.st_dev,
            nlink: st.st_nlink,
            regular: st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFREG.bits(),
        }
    }

    /// An allow decided on this file's one path may stand for the inode when the file is a
    /// regular file with that one name (another name could be under other rules), on the
    /// container's own root filesystem (a volume's files can be renamed by someone the agent
    /// does not see, such as another container or the host).
    pub fn rememberable(&self, root_dev: u64) -> bool {
        self.regular && self.nlink == 1 && self.dev == root_dev
    }
}

struct Cache {
    /// Bumped by every invalidation: a decision taken before one is not remembered after it.
    generation: u64,
    entries: usize,
}

pub struct Group {
    fan: Fanotify,
    meta: GroupMeta,
    workload: Arc<Workload>,
    cache: Mutex<Cache>,
    /// Root mounts (unique ids) whose namespaces are marked.
    marked: Mutex<HashSet<u64>>,
    /// The holder's id for its copy of the group, when it has one.
    held: Mutex<Option<u64>>,
    /// Whether read-only opens are marked now.
    reads: AtomicBool,
    /// A task of the container to mark its mounts through (its init, the task the group was
    /// created for; 0 for a group taken from the holder until its next exec).
    anchor: AtomicU32,
}

impl Group {
    /// A new group for the container task `tid` runs in (nothing marked yet).
    pub fn create(w: &Workload, tid: u32, reads: bool) -> io::Result<Group> {
        let fan = Fanotify::init(
            InitFlags::FAN_CLASS_CONTENT
                | InitFlags::FAN_CLOEXEC
                | InitFlags::FAN_NONBLOCK
                | InitFlags::FAN_REPORT_TID
                // A full queue would allow the permission events it can't hold.
                | InitFlags::FAN_UNLIMITED_QUEUE
                | InitFlags::FAN_UNLIMITED_MARKS,
            EventFFlags::O_RDONLY | EventFFlags::O_CLOEXEC | EventFFlags::O_LARGEFILE,
        )
        .map_err(io::Error::from)?;
        let root_dev = std::fs::metadata(format!("/proc/{tid}/root"))
            .map(|m| std::os::unix::fs::MetadataExt::dev(&m))?;
        let meta = GroupMeta {
            workload: w.clone(),
            pid_ns: mounts::ns_inode(tid, "pid")?,
            root_dev,
            reads,
        };
        let g = Self::with(fan, meta);
        g.anchor.store(tid, Ordering::Relaxed);
        Ok(g)
    }

    /// A group the holder kept, with what it was created for.
    pub fn adopt(fan: Fanotify, meta: GroupMeta, held: u64) -> Group {
        let g = Self::with(fan, meta);
        *g.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(held);
        g
    }

    fn with(fan: Fanotify, meta: GroupMeta) -> Group {
        Group {
            workload: Arc::new(meta.workload.clone()),
            fan,
            cache: Mutex::new(Cache {
                generation: 0,
                entries: 0,
            }),
            marked: Mutex::new(HashSet::new()),
            held: Mutex::new(None),
            reads: AtomicBool::new(meta.reads),
            anchor: AtomicU32::new(0),
            meta,
        }
    }

    pub fn fan(&self) -> &Fanotify {
        &self.fan
    }

    pub fn meta(&self) -> &GroupMeta {
        &self.meta
    }

    pub fn workload(&self) -> &Arc<Workload> {
        &self.workload
    }

    pub fn held(&self) -> Option<u64> {
        *self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_held(&self, id: u64) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
    }

    /// Whether read-only opens are marked.
    pub fn reads(&self) -> bool {
        self.reads.load(Ordering::SeqCst)
    }

    /// A policy edit made the container's reads decided: marks `FAN_OPEN_PERM` on its mounts now
    /// (through its init, if it is still the container's task), and on every mount namespace's
    /// next exec. Until the marks are on, reads pass as they did before the edit.
    pub fn enable_reads(&self) {
        if self.reads.swap(true, Ordering::SeqCst) {
            return;
        }
        // Every namespace is marked again, with the wider mask.
        self.marked().clear();
        let tid = self.anchor.load(Ordering::Relaxed);
        // A reused pid would name another task's mounts: only the container's own will do.
        if tid != 0
            && mounts::ns_inode(tid, "pid").is_ok_and(|ns| ns == self.meta.pid_ns)
            && let Err(e) = self.mark(tid)
        {
            tracing::warn!(container = %self.meta.workload.container_id, error = %e,
                "file guard: cannot mark the container's mounts for reads; they are marked at its next exec");
        }
    }

    /// The events its mount marks ask for.
    pub fn mask(&self) -> MaskFlags {
        if self.reads() {
            MaskFlags::FAN_OPEN_EXEC_PERM | MaskFlags::FAN_OPEN_PERM
        } else {
            MaskFlags::FAN_OPEN_EXEC_PERM
        }
    }

    /// Marks every mount of task `tid`'s mount namespace, once per namespace.
    pub fn mark(&self, tid: u32) -> io::Result<()> {
        let _ = self
            .anchor
            .compare_exchange(0, tid, Ordering::Relaxed, Ordering::Relaxed);
        let root_mount = mounts::unique_root_mount(tid);
        if let Ok(id) = root_mount
            && self.marked().contains(&id)
        {
            return Ok(());
        }
        let n = mounts::mark_all(&self.fan, tid, self.mask())?;
        debug!(
            tid,
            mounts = n,
            reads = self.reads(),
            "file guard: marked the container's mounts"
        );
        if let Ok(id) = root_mount {
            self.marked().insert(id);
        }
        Ok(())
    }

    fn marked(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.marked.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Taken before deciding; [`Group::remember`] with it does nothing if the group was
    /// invalidated in between.
    pub fn generation(&self) -> u64 {
        self.cache().generation
    }

    /// Remembers an allow of `mask` events on `file`'s inode: the kernel stops asking until the
    /// file is modified. Never FAN_MARK_IGNORED_SURV_MODIFY: the flag is the mark's, not the
    /// event's, so a read allow surviving a write would make the exec allow of the same inode
    /// survive it too, and a binary written over would run unchecked.
    pub fn remember(&self, file: BorrowedFd<'_>, mask: MaskFlags, generation: u64) {
        let mut c = self.cache();
        if c.generation != generation {
            return;
        }
        if c.entries >= MAX_REMEMBERED {
            // Evict everything: decisions are relearned one event each.
            self.flush(&mut c);
            return;
        }
        let flags = MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_IGNORED_MASK;
        match self.fan.mark::<_, str>(flags, mask, file, None) {
            Ok(()) => c.entries += 1,
            Err(e) => debug!(error = %e, "file guard: cannot remember an allow"),
        }
    }

    /// Forgets every remembered allow (the policy changed, or a name moved): the next open of
    /// each file is decided again.
    pub fn invalidate(&self) {
        let mut c = self.cache();
        self.flush(&mut c);
    }

    fn flush(&self, c: &mut Cache) {
        c.generation += 1;
        c.entries = 0;
        // Without FAN_MARK_MOUNT, FLUSH removes the inode marks: the remembered allows only.
        if let Err(e) = self.fan.mark::<_, str>(
            MarkFlags::FAN_MARK_FLUSH,
            MaskFlags::empty(),
            nix::fcntl::AT_FDCWD,
            None,
        ) {
            tracing::error!(container = %self.meta.workload.container_id, error = %e,
                "file guard: cannot drop remembered allows; they stand until the container ends");
        }
    }

    /// Whether task `tid` is one of the container's own (its pid namespace) and not the runtime.
    /// Tasks outside (the host) and the runtime's own setup (runc exec reading the container's
    /// /etc/passwd, `runtime`) are not the workload. A container in the host's pid namespace
    /// (hostPID) shares it with every host process: there the task must also run under a seccomp
    /// filter, as every task of a protected container does (reading its status costs ~15 µs, so
    /// only then).
    pub fn is_workload_task(&self, tid: u32, runtimes: &Runtimes, own_pid_ns: u64) -> bool {
        self.in_container(tid, own_pid_ns) && !runtimes.runs(tid)
    }

    /// Whether task `tid` is one of the container's, the runtime's setup in it included (its
    /// exec of the container's process is the container's first exec).
    pub fn in_container(&self, tid: u32, own_pid_ns: u64) -> bool {
        mounts::ns_inode(tid, "pid").is_ok_and(|ns| ns == self.meta.pid_ns)
            && (self.meta.pid_ns != own_pid_ns || under_filter(tid))
    }

    /// The inode marks with an ignore mask in the kernel's list of this group's marks.
    pub fn remembered_in_kernel(&self) -> io::Result<usize> {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", self.fan.as_raw_fd()))?;
        Ok(info
            .lines()
            .filter(|l| l.starts_with("fanotify ino:"))
            .filter(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("ignored_mask:"))
                    .is_some_and(|m| u64::from_str_radix(m, 16).is_ok_and(|m| m != 0))
            })
            .count())
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fan.as_fd()
    }
}

/// `Seccomp: 2` in the task's status: it runs under a filter (every task of a protected
/// container does, and can't leave it).
fn under_filter(tid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{tid}/status")).is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .is_some_and(|v| v.trim() == "2")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group of this test process's own (its root and pid namespace), if fanotify permission
    /// events are available here (root, CONFIG_FANOTIFY_ACCESS_PERMISSIONS).
    fn own_group() -> Option<Group> {
        match Group::create(&Workload::default(), std::process::id(), true) {
            Ok(g) => Some(g),
            Err(e) => {
                eprintln!("no fanotify permission group here ({e}); skipped");
                None
            }
        }
    }

    #[test]
    fn remembered_allows_are_capped_dropped_on_invalidation_and_never_after_it() {
        let Some(g) = own_group() else { return };
        let dir = std::env::temp_dir().join(format!("guard-cap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files: Vec<std::fs::File> = (0..3)
            .map(|i| {
                let p = dir.join(format!("f{i}"));
                std::fs::write(&p, "x").unwrap();
                std::fs::File::open(&p).unwrap()
            })
            .collect();
        let generation = g.generation();
        g.remember(files[0].as_fd(), MaskFlags::FAN_OPEN_PERM, generation);
        g.remember(files[1].as_fd(), MaskFlags::FAN_OPEN_PERM, generation);
        assert_eq!(g.remembered_in_kernel().unwrap(), 2);

        // A decision taken before an invalidation is not remembered after it.
        g.invalidate();
        assert_eq!(g.remembered_in_kernel().unwrap(), 0);
        g.remember(files[2].as_fd(), MaskFlags::FAN_OPEN_PERM, generation);
        assert_eq!(g.remembered_in_kernel().unwrap(), 0);

        // At the cap, everything is dropped (and relearned one event at a time).
        let generation = g.generation();
        g.cache().entries = MAX_REMEMBERED - 1;
        g.remember(files[0].as_fd(), MaskFlags::FAN_OPEN_PERM, generation);
        assert_eq!(g.remembered_in_kernel().unwrap(), 1);
        g.remember(files[1].as_fd(), MaskFlags::FAN_OPEN_PERM, generation);
        assert_eq!(g.remembered_in_kernel().unwrap(), 0, "the cap evicts");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_single_named_regular_files_of_the_root_filesystem_are_remembered() {
        let f = FileFacts {
            dev: 7,
            nlink: 1,
            regular: true,
        };
        assert!(f.rememberable(7));
        assert!(!f.rememberable(8), "a volume's file");
        assert!(
            !FileFacts { nlink: 2, ..f }.rememberable(7),
            "a hard-linked file"
        );
        assert!(
            !FileFacts {
                regular: false,
                ..f
            }
            .rememberable(7),
            "a device or FIFO"
        );
    }
}
