//! Deduplication: the first record for a key (pod, rule, object) is written; repeats within the
//! window are counted; when the window closes, one summary says how many there were.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First in its window: write it.
    First,
    /// A repeat: counted, not written.
    Repeat,
}

#[derive(Debug)]
struct Window {
    opened: Instant,
    repeats: u64,
}

/// Keys whose windows closed with repeats, and how many.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed<K> {
    pub key: K,
    pub repeats: u64,
    pub over: Duration,
}

#[derive(Debug)]
pub struct Deduper<K> {
    window: Duration,
    open: HashMap<K, Window>,
}

impl<K: Hash + Eq + Clone> Deduper<K> {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            open: HashMap::new(),
        }
    }

    pub fn observe(&mut self, key: &K, now: Instant) -> Seen {
        match self.open.get_mut(key) {
            Some(w) if now.duration_since(w.opened) < self.window => {
                w.repeats += 1;
                Seen::Repeat
            }
            _ => {
                // A stale window for this key is replaced; `expire` reports its repeats if it
                // had any before we drop them, so expire first when summaries matter.
                self.open.insert(
                    key.clone(),
                    Window {
                        opened: now,
                        repeats: 0,
                    },
                );
                Seen::First
            }
        }
    }

    /// Closes the windows that ended by `now`; returns those that saw repeats, so the caller
    /// writes one summary record each. Call it periodically (e.g. every second).
    pub fn expire(&mut self, now: Instant) -> Vec<Closed<K>> {
        let window = self.window;
        let mut closed = Vec::new();
        self.open.retain(|k, w| {
            if now.duration_since(w.opened) < window {
                return true;
            }
            if w.repeats > 0 {
                closed.push(Closed {
                    key: k.clone(),
                    repeats: w.repeats,
                    over: now.duration_since(w.opened),
                });
            }
            false
        });
        closed
    }

    pub fn is_open(&self, key: &K) -> bool {
        self.open.contains_key(key)
    }

    pub fn open_windows(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_the_window_are_counted_then_summarised() {
        let t0 = Instant::now();
        let mut d = Deduper::new(Duration::from_secs(10));
        let key = ("pod-a", "rule-1", "/etc/passwd");
        assert_eq!(d.observe(&key, t0), Seen::First);
        for i in 1..=5 {
            assert_eq!(d.observe(&key, t0 + Duration::from_secs(i)), Seen::Repeat);
        }
        // Another object is its own key.
        assert_eq!(
            d.observe(&("pod-a", "rule-1", "/etc/shadow"), t0),
            Seen::First
        );
        assert!(d.expire(t0 + Duration::from_secs(9)).is_empty());
        let closed = d.expire(t0 + Duration::from_secs(10));
        assert_eq!(closed.len(), 1, "only the key with repeats is summarised");
        assert_eq!(closed[0].key, key);
        assert_eq!(closed[0].repeats, 5);
        assert_eq!(d.open_windows(), 0);
        // After the window, the same key is new again.
        assert_eq!(d.observe(&key, t0 + Duration::from_secs(11)), Seen::First);
    }
}
