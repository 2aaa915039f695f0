//! journald with a waiting room: when journald is down (not started yet, restarting), entries wait
//! in a bounded queue and go out in order once it is back. What doesn't fit is counted, never
//! dropped silently; the counter is reported by `rampartctl status` and in the next entry written.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::journald::{Journal, JournalError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Written,
    /// journald is unreachable; the entry waits.
    Queued,
    /// journald is unreachable and the queue is full: the entry is lost, and counted.
    Dropped,
}

#[derive(Debug)]
pub struct BufferedJournal {
    path: PathBuf,
    journal: Option<Journal>,
    queue: VecDeque<Vec<u8>>,
    capacity: usize,
    dropped: u64,
}

impl BufferedJournal {
    pub fn new(path: &Path, capacity: usize) -> Self {
        Self {
            path: path.to_owned(),
            journal: None,
            queue: VecDeque::new(),
            capacity,
            dropped: 0,
        }
    }

    /// Writes an encoded entry (see `journald::encode_entry`), after anything still queued.
    pub fn write(&mut self, entry: Vec<u8>) -> Delivery {
        self.flush();
        if self.queue.is_empty() && self.try_send(&entry) {
            return Delivery::Written;
        }
        // Newest entries are the ones dropped: the first records of an incident are the ones an
        // operator needs, and the count of what came after is kept.
        if self.queue.len() >= self.capacity {
            self.dropped += 1;
            return Delivery::Dropped;
        }
        self.queue.push_back(entry);
        Delivery::Queued
    }

    /// Sends what waits, in order, until journald refuses again. Returns how many went out.
    pub fn flush(&mut self) -> usize {
        let mut sent = 0;
        while let Some(entry) = self.queue.pop_front() {
            if self.try_send(&entry) {
                sent += 1;
            } else {
                self.queue.push_front(entry);
                break;
            }
        }
        sent
    }

    fn try_send(&mut self, entry: &[u8]) -> bool {
        if self.journal.is_none() {
            self.journal = Journal::connect(&self.path).ok();
        }
        let Some(journal) = &self.journal else {
            return false;
        };
        match journal.send_encoded(entry) {
            Ok(()) => true,
            Err(JournalError::Send { .. }) => {
                // journald restarted (new socket) or went away: reconnect next time.
                self.journal = None;
                false
            }
            Err(_) => false,
        }
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::journald::encode_entry;
    use std::os::unix::net::UnixDatagram;

    fn entry(i: u32) -> Vec<u8> {
        encode_entry([("MESSAGE", format!("entry {i}").as_bytes())]).unwrap()
    }

    #[test]
    fn waits_while_journald_is_down_then_delivers_in_order_and_counts_overflow() {
        let dir = std::env::temp_dir().join(format!("rampart-buffered-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("journal.sock");
        let _ = std::fs::remove_file(&sock);

        let mut sink = BufferedJournal::new(&sock, 3);
        assert_eq!(sink.write(entry(1)), Delivery::Queued);
        assert_eq!(sink.write(entry(2)), Delivery::Queued);
        assert_eq!(sink.write(entry(3)), Delivery::Queued);
        assert_eq!(sink.write(entry(4)), Delivery::Dropped);
        assert_eq!((sink.queued(), sink.dropped()), (3, 1));

        // "journald" comes up: a datagram socket at the path.
        let journald = UnixDatagram::bind(&sock).unwrap();
        assert_eq!(sink.write(entry(5)), Delivery::Written);
        assert_eq!(sink.queued(), 0);
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        for _ in 0..4 {
            let n = journald.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert_eq!(
            got,
            [
                "MESSAGE=entry 1\n",
                "MESSAGE=entry 2\n",
                "MESSAGE=entry 3\n",
                "MESSAGE=entry 5\n"
            ]
        );
        assert_eq!(sink.dropped(), 1, "the overflow stays counted");

        // journald goes away again: the sink notices and queues.
        drop(journald);
        std::fs::remove_file(&sock).unwrap();
        assert_eq!(sink.write(entry(6)), Delivery::Queued);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
