//! The task behind one notification, built once by the dispatcher and handed to its handler.
//!
//! What is known about it is read lazily and at most once per notification: its status (~8 µs)
//! only by the handlers that resolve a path, its executable only by those that decide or report.
//! Every way of assuming the task's credentials goes through here, and reads the executable
//! first: /proc/<pid>/exe may not be readable with the task's credentials.

use std::cell::OnceCell;
use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::sync::Arc;

use rampart_policy::{User, WorkloadView};

use crate::container::entry::{self, Entry, File};
use crate::container::origin::is_image_exe;
use crate::container::procfs::{TaskError, TaskInfo, exe_path};
use crate::container::resolve::{self, Object, OpenRequest, ResolveError};
use crate::container::users;
use crate::stage_times::{self, Stage};
use crate::sys::creds::Assumed;
use crate::sys::{pidfd, sockopt};
use crate::syscall::Dir;

/// The notifying task (the thread `tid`, as the agent's pid namespace numbers it).
pub struct Task<'v> {
    tid: u32,
    /// The policies deciding for it, when known: what they name says what is worth finding out.
    view: Option<&'v WorkloadView>,
    info: OnceCell<Result<TaskInfo, Arc<TaskError>>>,
    exe: OnceCell<String>,
    identity: OnceCell<String>,
    user: OnceCell<Option<(u32, Option<String>)>>,
}

impl Task<'static> {
    pub fn new(tid: u32) -> Self {
        Task::with(tid, None)
    }
}

impl<'v> Task<'v> {
    fn with(tid: u32, view: Option<&'v WorkloadView>) -> Self {
        Self {
            tid,
            view,
            info: OnceCell::new(),
            exe: OnceCell::new(),
            identity: OnceCell::new(),
            user: OnceCell::new(),
        }
    }

    /// A task whose calls `view` decides: it tells whether `identity()` and `user()` can
    /// matter, so that nothing is looked up for nothing.
    pub fn deciding(tid: u32, view: &'v WorkloadView) -> Self {
        Task::with(tid, Some(view))
    }

    /// Rules limited to users apply: `user()` is needed, and read before credentials change.
    fn needs_user(&self) -> bool {
        self.view.is_some_and(WorkloadView::limits_users)
    }

    pub fn tid(&self) -> u32 {
        self.tid
    }

    /// Its credentials, umask and pids, from /proc/<tid>/status.
    pub fn info(&self) -> Result<&TaskInfo, Arc<TaskError>> {
        self.info
            .get_or_init(|| {
                let info = TaskInfo::read(self.tid).map_err(Arc::new);
                stage_times::mark(Stage::Status);
                info
            })
            .as_ref()
            .map_err(Arc::clone)
    }

    /// Its executable, as the container names it ("" if unknown).
    pub fn exe(&self) -> &str {
        self.exe.get_or_init(|| {
            let exe = exe_path(self.tid);
            stage_times::mark(Stage::Exe);
            exe
        })
    }

    /// Its executable as process rules match it: the path if the file is the image's own, ""
    /// otherwise (`origin::is_image_exe`). Decisions use this; reports name `exe()`.
    pub fn identity(&self) -> &str {
        self.identity.get_or_init(|| {
            let exe = self.exe();
            // No process rule names the path: whether the file is the image's changes nothing.
            let named = self.view.is_none_or(|v| v.names_process(exe));
            if !named || is_image_exe(self.tid, exe) {
                exe.to_owned()
            } else {
                String::new()
            }
        })
    }

    /// Who it accesses files as, for rules limited to users: its filesystem uid, and that uid's
    /// name in the container's /etc/passwd. None if its status can't be read, or if this task
    /// was not made to decide users.
    pub fn user(&self) -> Option<User<'_>> {
        if !self.needs_user() {
            return None;
        }
        self.user
            .get_or_init(|| {
                let uid = self.info().ok()?.creds.fsuid;
                Some((uid, users::name_of(self.tid, uid)))
            })
            .as_ref()
            .map(|(uid, name)| User {
                uid: *uid,
                name: name.as_deref(),
            })
    }

    /// What the task needs before its credentials are assumed: its status, and its executable
    /// (and whether it is the image's) while the agent's own credentials can still read it.
    fn before_assuming(&self) -> Result<&TaskInfo, ResolveError> {
        let info = self.info().map_err(|_| ResolveError::TaskUnreadable)?;
        self.exe();
        self.identity();
        if self.needs_user() {
            // The container's passwd is read on the host's side, which the task's credentials
            // may not reach.
            self.user();
        }
        Ok(info)
    }

    /// (type, protocol) of the task's socket `fd`, read from a duplicate of it.
    pub fn socket_kind(&self, fd: i32) -> std::io::Result<(i32, i32)> {
        let pidfd = match pidfd::open_thread(self.tid) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                let tgid = self
                    .info()
                    .map_err(|e| std::io::Error::other(e.to_string()))?
                    .tgid;
                pidfd::open(tgid)?
            }
            pidfd => pidfd?,
        };
        let socket = pidfd::get_fd(pidfd.as_fd(), fd)?;
        sockopt::kind(socket.as_fd())
    }

    /// `resolve::resolve` for this task: the object, and the task's credentials still assumed.
    pub fn resolve(&self, req: &OpenRequest<'_>) -> Result<(Object, Assumed), ResolveError> {
        let info = self.before_assuming()?;
        resolve::resolve(self.tid, info, req)
    }

    /// `entry::find_file` for this task, with its credentials left assumed.
    pub fn find_file(&self, req: &OpenRequest<'_>) -> Result<(File, Assumed), ResolveError> {
        let info = self.before_assuming()?;
        entry::find_file(self.tid, info, req)
    }

    /// `entry::find` for this task, with its credentials left assumed.
    pub fn find(&self, dir: Dir, path: &OsStr) -> Result<(Entry, Assumed), ResolveError> {
        let info = self.before_assuming()?;
        entry::find(self.tid, info, dir, path)
    }
}
