//! Stopping the agent without dropping a notification: every supervisor thread answers the
//! notification it is handling, takes no new one and ends. Notifications not yet received stay
//! queued in the kernel, where the next agent (given the fds by the holder) finds them.

use std::io::{self, PipeReader, PipeWriter};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What supervisor threads poll to learn that the agent stops: the read end of a pipe whose
/// write end the [`Stopper`] closes (the read end then polls POLLHUP, for every thread at once).
#[derive(Clone, Debug)]
pub struct StopSignal(Arc<PipeReader>);

impl StopSignal {
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Fires the stop signal and waits for the supervisor threads it tracks.
#[derive(Debug)]
pub struct Stopper {
    writer: Mutex<Option<PipeWriter>>,
    signal: StopSignal,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Stopper {
    pub fn new() -> io::Result<Self> {
        let (reader, writer) = std::io::pipe()?;
        Ok(Self {
            writer: Mutex::new(Some(writer)),
            signal: StopSignal(Arc::new(reader)),
            threads: Mutex::new(Vec::new()),
        })
    }

    pub fn signal(&self) -> StopSignal {
        self.signal.clone()
    }

    /// Remembers a supervisor thread, to wait for it on stop (and forgets those that ended).
    pub fn track(&self, thread: JoinHandle<()>) {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.retain(|t| !t.is_finished());
        threads.push(thread);
    }

    /// How many tracked threads still run.
    pub fn running(&self) -> usize {
        let threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.iter().filter(|t| !t.is_finished()).count()
    }

    /// Fires the signal, then waits up to `grace` for the tracked threads to end. Returns how many
    /// still run (a handler stuck longer than `grace`; its notification is lost with the process).
    pub fn stop(&self, grace: Duration) -> usize {
        drop(self.writer.lock().unwrap_or_else(|e| e.into_inner()).take());
        let deadline = Instant::now() + grace;
        loop {
            let left = self.running();
            if left == 0 || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

    #[test]
    fn stop_wakes_every_waiter_and_waits_for_them() {
        let stopper = Stopper::new().unwrap();
        for _ in 0..3 {
            let signal = stopper.signal();
            stopper.track(std::thread::spawn(move || {
                let mut fds = [PollFd::new(signal.as_fd(), PollFlags::POLLIN)];
                poll(&mut fds, PollTimeout::NONE).unwrap();
            }));
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(stopper.running(), 3);
        assert_eq!(stopper.stop(Duration::from_secs(5)), 0);
    }
}
