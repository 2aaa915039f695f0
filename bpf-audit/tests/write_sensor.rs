//! The write sensor on this kernel: a file written on a watched root filesystem is reported on
//! close, with its path and the writer's pid, whether its descriptor was opened before or after
//! the watch began; a file on another filesystem is not. Needs root (skipped otherwise).

mod common;

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::is_root;
use rampart_audit::{Write, WriteSensor};

#[test]
fn writes_on_a_watched_root_are_reported_on_close() {
    if !is_root() {
        return;
    }
    let seen = Arc::new(Mutex::new(Vec::<Write>::new()));
    let sink = seen.clone();
    let sensor = WriteSensor::start(Box::new(move |w: &Write| {
        sink.lock().unwrap().push(w.clone())
    }))
    .expect("a fanotify group");
    let dir = std::path::PathBuf::from(format!("/var/tmp/rampart-writes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Opened before the watch: what a rule added later finds already open.
    let early = dir.join("early");
    let mut before = std::fs::File::create(&early).unwrap();
    // The root filesystem of a process of the host: the host's own root.
    let child = std::process::Command::new("/bin/sleep")
        .arg("10")
        .spawn()
        .unwrap();
    let device = sensor.watch(child.id()).expect("watches");
    before.write_all(b"late write").unwrap();
    let early_inode = std::os::unix::fs::MetadataExt::ino(&before.metadata().unwrap());
    drop(before);
    let late = dir.join("late");
    std::fs::write(&late, b"x").unwrap();
    let elsewhere = format!("/dev/shm/rampart-writes-{}", std::process::id());
    std::fs::write(&elsewhere, b"x").unwrap();

    let deadline = Instant::now() + Duration::from_secs(5);
    let got = loop {
        let got = seen.lock().unwrap().clone();
        let has = |p: &std::path::Path| got.iter().any(|w| w.path == p.to_string_lossy());
        if (has(&early) && has(&late)) || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&elsewhere);
    let of = |p: &std::path::Path| {
        got.iter()
            .find(|w| w.path == p.to_string_lossy())
            .cloned()
            .unwrap_or_else(|| panic!("no write of {}: {got:?}", p.display()))
    };
    let w = of(&early);
    assert_eq!(w.pid, std::process::id() as i32, "{w:?}");
    assert_eq!(w.device, device, "{w:?}");
    assert_eq!(w.inode, early_inode, "{w:?}");
    of(&late);
    assert!(
        got.iter().all(|w| !w.path.starts_with("/dev/shm/")),
        "another filesystem's write was reported: {got:?}"
    );
    assert_eq!(sensor.lost(), 0);
}
