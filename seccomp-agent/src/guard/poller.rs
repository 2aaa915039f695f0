//! The threads that answer every container's group: one per CPU, each pinned to its CPU and
//! waiting on an epoll of its own over every group.
//!
//! Why one per CPU: an open waits for the answer, and on a VM a wakeup that crosses CPUs costs
//! tens of microseconds each way (the open's event waking the answering thread, the answer waking
//! the opener). Every group wakes every thread; the one on the opener's CPU is woken without an
//! interrupt, runs at once (the opener just went to sleep there) and wakes the opener on the same
//! CPU. The others wake later, find the event taken (FAN_NONBLOCK: EAGAIN) and sleep again. Measured
//! with `bench/fanotify-floor.c`: an answered open costs ~5 µs with the answer on the opener's
//! CPU and ~85 µs from the other CPU of this 2-CPU VM.
//!
//! A decision never waits on anything a container can hold up: it reads /proc and the event's
//! own descriptor, evaluates policy in memory and queues its report. Nothing here opens a file
//! on a container's mounts (that would wait for these very threads).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use nix::errno::Errno;
use nix::poll::PollTimeout;
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::unistd::Pid;
use tracing::{debug, error};

use crate::guard::group::Group;

/// Answering threads at most, whatever the CPU count.
const MAX_THREADS: usize = 16;

/// Decides one group's events (the guard).
pub trait Answerer: Send + Sync + 'static {
    fn answer_all(&self, group: &Group);
}

pub struct Poller {
    /// One per answering thread, with the CPU it runs on.
    epolls: Vec<(Epoll, Option<usize>)>,
    groups: Mutex<HashMap<u64, Arc<Group>>>,
    next: AtomicU64,
    stopped: AtomicBool,
    /// Held (shared) by a thread while it reads and answers; `stop` takes it exclusively.
    answering: RwLock<()>,
}

impl Poller {
    /// One epoll per CPU this process may run on (at most [`MAX_THREADS`]).
    pub fn new() -> io::Result<Poller> {
        let cpus: Vec<Option<usize>> = match sched_getaffinity(Pid::from_raw(0)) {
            Ok(set) => (0..CpuSet::count())
                .filter(|c| set.is_set(*c).unwrap_or(false))
                .take(MAX_THREADS)
                .map(Some)
                .collect(),
            Err(_) => vec![None],
        };
        let cpus = if cpus.is_empty() { vec![None] } else { cpus };
        let epolls = cpus
            .into_iter()
            .map(|cpu| {
                Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
                    .map(|e| (e, cpu))
                    .map_err(io::Error::from)
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Poller {
            epolls,
            groups: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            answering: RwLock::new(()),
        })
    }

    /// How many answering threads to start ([`Poller::run`] with 0..this).
    pub fn threads(&self) -> usize {
        self.epolls.len()
    }

    fn groups(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Group>>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts answering `group`. Returns its token, for [`Poller::remove`].
    pub fn add(&self, group: Arc<Group>) -> io::Result<u64> {
        let token = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.groups().insert(token, group.clone());
        for (i, (epoll, _)) in self.epolls.iter().enumerate() {
            if let Err(e) = epoll.add(group.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token)) {
                for (epoll, _) in &self.epolls[..i] {
                    let _ = epoll.delete(group.as_fd());
                }
                self.groups().remove(&token);
                return Err(io::Error::from(e));
            }
        }
        Ok(token)
    }

    pub fn remove(&self, token: u64) {
        if let Some(g) = self.groups().remove(&token) {
            for (epoll, _) in &self.epolls {
                let _ = epoll.delete(g.as_fd());
            }
        }
    }

    /// Stops reading events, once the batches being answered are answered: what is left waits
    /// in the kernel for the next agent (the holder keeps the groups), none read and unanswered.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        drop(self.answering.write().unwrap_or_else(|e| e.into_inner()));
    }

    /// Answering thread `index`: pins itself to its CPU and answers events until stopped.
    pub fn run(&self, index: usize, answerer: &dyn Answerer) {
        let Some((epoll, cpu)) = self.epolls.get(index) else {
            return;
        };
        if let Some(cpu) = cpu {
            let mut set = CpuSet::new();
            if set.set(*cpu).is_ok()
                && let Err(e) = sched_setaffinity(Pid::from_raw(0), &set)
            {
                // Still correct, only slower: answers may come from another CPU.
                debug!(cpu, error = %e, "file guard: cannot pin an answering thread");
            }
        }
        let mut events = [EpollEvent::empty(); 32];
        loop {
            let n = match epoll.wait(&mut events, PollTimeout::NONE) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    // Pending events wait in the kernel for another thread or the next agent:
                    // nothing is allowed by this thread's end.
                    error!(error = %e, "file guard: epoll_wait failed; one answering thread stops");
                    return;
                }
            };
            let _answering = self.answering.read().unwrap_or_else(|e| e.into_inner());
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            for ev in &events[..n] {
                let group = self.groups().get(&ev.data()).cloned();
                match group {
                    Some(g) => answerer.answer_all(&g),
                    // Its container ended meanwhile.
                    None => debug!(
                        token = ev.data(),
                        "file guard: event for a group no longer watched"
                    ),
                }
            }
        }
    }
}
