//! Reading a program's ring buffer: on a thread of its own for as long as the process runs, or
//! once, for what it holds (tests of loss accounting, with no reader).

use std::time::Duration;

use libbpf_rs::{MapHandle, RingBufferBuilder};

/// How long an event may wait in a ring that did not wake its reader.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Parses each record of `events` and hands it to `handle`, on a thread named `name` that never
/// returns while the ring can be polled.
pub(crate) fn spawn_reader<T: 'static>(
    name: &str,
    events: MapHandle,
    parse: fn(&[u8]) -> Option<T>,
    mut handle: impl FnMut(T) + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let mut builder = RingBufferBuilder::new();
            let on_record = move |data: &[u8]| {
                if let Some(record) = parse(data) {
                    handle(record);
                }
                0
            };
            if builder.add(&events, on_record).is_err() {
                return;
            }
            let Ok(ring) = builder.build() else {
                return;
            };
            // Sensors wake the reader only once a part of the ring is full (ring_counts.h): what
            // waits below that is read at the next timeout.
            loop {
                if ring.poll(POLL_EVERY).is_err() {
                    std::thread::sleep(POLL_EVERY);
                }
                let _ = ring.consume();
            }
        })
        .map(drop)
}

/// The records `events` holds now, parsed (those that don't parse are left out).
pub(crate) fn drain<T>(events: &MapHandle, parse: fn(&[u8]) -> Option<T>) -> Vec<T> {
    let delivered = std::cell::RefCell::new(Vec::new());
    {
        let mut builder = RingBufferBuilder::new();
        let added = builder.add(events, |data: &[u8]| {
            if let Some(record) = parse(data) {
                delivered.borrow_mut().push(record);
            }
            0
        });
        if added.is_ok()
            && let Ok(ring) = builder.build()
        {
            let _ = ring.consume();
        }
    }
    delivered.into_inner()
}
