//! The thread that answers every container's group: one epoll over all of them.
//!
//! A decision never waits on anything a container can hold up: it reads /proc and the event's
//! own descriptor, evaluates policy in memory and queues its report. Nothing here opens a file
//! on a container's mounts (that would wait for this very thread).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::PollTimeout;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use tracing::{error, warn};

use crate::guard::group::Group;

/// After answering, how long to look for the next event before sleeping: a task that opens file
/// after file is answered without a wakeup of this thread in between.
const SPIN: Duration = Duration::from_micros(50);

/// Decides one group's events (the guard).
pub trait Answerer: Send + Sync + 'static {
    fn answer_all(&self, group: &Group);
}

pub struct Poller {
    epoll: Epoll,
    groups: Mutex<HashMap<u64, Arc<Group>>>,
    next: Mutex<u64>,
    /// Held while events are read and answered; `stopped` is set under it.
    answering: Mutex<bool>,
}

impl Poller {
    pub fn new() -> io::Result<Poller> {
        Ok(Poller {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(io::Error::from)?,
            groups: Mutex::new(HashMap::new()),
            next: Mutex::new(0),
            answering: Mutex::new(false),
        })
    }

    fn groups(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Group>>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts answering `group`. Returns its token, for [`Poller::remove`].
    pub fn add(&self, group: Arc<Group>) -> io::Result<u64> {
        let token = {
            let mut n = self.next.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            *n
        };
        self.groups().insert(token, group.clone());
        if let Err(e) = self
            .epoll
            .add(group.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
        {
            self.groups().remove(&token);
            return Err(io::Error::from(e));
        }
        Ok(token)
    }

    pub fn remove(&self, token: u64) {
        if let Some(g) = self.groups().remove(&token) {
            let _ = self.epoll.delete(g.as_fd());
        }
    }

    /// Stops reading events, once the batch being answered is answered: what is left waits in
    /// the kernel for the next agent (the holder keeps the groups), none read and unanswered.
    pub fn stop(&self) {
        *self.answering.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    /// Answers events until stopped.
    pub fn run(&self, answerer: &dyn Answerer) {
        let mut events = [EpollEvent::empty(); 32];
        let mut spin_until: Option<Instant> = None;
        loop {
            let timeout = if spin_until.is_some() {
                PollTimeout::ZERO
            } else {
                PollTimeout::NONE
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    // Pending events wait in the kernel (the holder keeps the groups) for the
                    // next agent: nothing is allowed by this thread's end.
                    error!(error = %e, "file guard: epoll_wait failed; this agent stops answering opens and execs of protected containers");
                    return;
                }
            };
            if n == 0 {
                if spin_until.is_some_and(|t| Instant::now() >= t) {
                    spin_until = None;
                }
                continue;
            }
            let stopped = self.answering.lock().unwrap_or_else(|e| e.into_inner());
            if *stopped {
                return;
            }
            for ev in &events[..n] {
                let group = self.groups().get(&ev.data()).cloned();
                match group {
                    Some(g) => answerer.answer_all(&g),
                    None => warn!(
                        token = ev.data(),
                        "file guard: event for a group no longer watched"
                    ),
                }
            }
            drop(stopped);
            spin_until = Some(Instant::now() + SPIN);
        }
    }
}
