//! kill-process on real processes: children of the test, killed by pid + start time or through
//! a pidfd, and the cases where nothing may be killed (a stale identity, a reaped pid, a zombie).
//! Needs nothing but Linux >= 5.3 (6.9 for the thread test); runs unprivileged, since the
//! children are our own.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rampartd::response::{KillOutcome, KillProcess, Refusal, kill_process, open_pidfd, start_time};

fn sleeper() -> Child {
    Command::new("sleep")
        .arg("300")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawns sleep")
}

/// Ends a child a test left running, so a failed assertion does not leak a `sleep 300`.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Waits until `pid` is a zombie: exited, not yet reaped.
fn wait_zombie(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(pid) != Some('Z') {
        assert!(Instant::now() < deadline, "pid {pid} never exited");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn kills_a_running_process_by_pid_and_start_time() {
    let mut child = sleeper();
    let pid = child.id();
    let started = start_time(pid).expect("reads the child's start time");

    let outcome = kill_process(&KillProcess::new(pid, started)).expect("kill works");

    assert_eq!(outcome, KillOutcome::Killed);
    let status = child.wait().expect("reaps the child");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
}

#[test]
fn a_stale_start_time_is_refused_and_the_process_keeps_running() {
    let child = Reap(sleeper());
    let pid = child.0.id();
    let started = start_time(pid).unwrap();

    // The request describes a process that started one tick earlier: the pid was reused.
    let outcome = kill_process(&KillProcess::new(pid, started - 1)).expect("no error");

    assert_eq!(
        outcome,
        KillOutcome::Refused(Refusal::PidReused {
            pid,
            expected: started - 1,
            found: started,
        })
    );
    assert!(outcome.to_string().contains("nothing was killed"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        matches!(state(pid), Some('S' | 'R')),
        "the innocent process must still run, it is {:?}",
        state(pid)
    );
}

#[test]
fn an_exited_and_reaped_pid_is_already_gone_not_a_panic() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    let started = start_time(pid).unwrap();
    assert!(child.wait().unwrap().success());

    let outcome = kill_process(&KillProcess::new(pid, started)).expect("no error");

    // AlreadyGone, unless another process got the pid meanwhile; never Killed.
    match outcome {
        KillOutcome::AlreadyGone => {}
        KillOutcome::Refused(Refusal::PidReused { .. }) => {}
        other => panic!("a reaped pid must not be killed: {other:?}"),
    }
}

#[test]
fn a_zombie_is_already_gone() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    let started = start_time(pid).unwrap();
    wait_zombie(pid);

    assert_eq!(
        kill_process(&KillProcess::new(pid, started)).unwrap(),
        KillOutcome::AlreadyGone
    );
    assert!(child.wait().unwrap().success(), "it exited on its own");
}

#[test]
fn kills_through_a_pidfd_the_enforcer_holds() {
    let mut child = sleeper();
    let pid = child.id();
    let pidfd = open_pidfd(pid).unwrap().expect("the child exists");

    let outcome = kill_process(&KillProcess::with_pidfd(pid, pidfd)).expect("kill works");

    assert_eq!(outcome, KillOutcome::Killed);
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn a_pidfd_outliving_its_process_reaches_nobody() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    let pidfd = open_pidfd(pid).unwrap().expect("the child exists");
    child.wait().unwrap();
    // Whatever holds the pid now (maybe nobody, maybe a new process) is not the pidfd's.
    let bystander = Reap(sleeper());

    let outcome = kill_process(&KillProcess::with_pidfd(pid, pidfd)).expect("no error");

    assert_eq!(outcome, KillOutcome::AlreadyGone);
    assert!(matches!(state(bystander.0.id()), Some('S' | 'R')));
}

#[test]
fn a_pid_that_never_existed_is_already_gone() {
    // Above pid_max (4194304 at most), so nobody can hold it.
    let outcome = kill_process(&KillProcess::new(i32::MAX as u32, 1)).expect("no error");
    assert_eq!(outcome, KillOutcome::AlreadyGone);
}

#[test]
fn our_own_threads_are_refused() {
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        tx.send(nix::unistd::gettid().as_raw() as u32).unwrap();
        let _ = stop_rx.recv();
    });
    let tid = rx.recv().unwrap();
    let started = start_time(tid).unwrap();

    let outcome = kill_process(&KillProcess::new(tid, started)).unwrap();

    assert_eq!(
        outcome,
        KillOutcome::Refused(Refusal::OwnProcess { pid: tid })
    );
    stop_tx.send(()).unwrap();
    thread.join().unwrap();
}

/// A thread id (what a seccomp notification carries for a multi-threaded workload) kills the
/// whole process. Needs python3 for a child with a second thread, and Linux 6.9 thread pidfds.
#[test]
fn a_thread_id_kills_its_whole_process() {
    const PYTHON: &str = "/usr/bin/python3";
    if !std::path::Path::new(PYTHON).exists() {
        eprintln!("skipped: {PYTHON} is not installed");
        return;
    }
    let mut child = Command::new(PYTHON)
        .args([
            "-c",
            "import threading, time\n\
             threading.Thread(target=time.sleep, args=(300,)).start()\n\
             time.sleep(300)",
        ])
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let tid = loop {
        let other = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|&t| t != pid);
        if let Some(t) = other {
            break t;
        }
        assert!(Instant::now() < deadline, "python never started its thread");
        std::thread::sleep(Duration::from_millis(20));
    };
    let started = start_time(tid).unwrap();

    let outcome = kill_process(&KillProcess::new(tid, started));

    match outcome {
        Ok(outcome) => {
            assert_eq!(outcome, KillOutcome::Killed);
            assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            let text = e.to_string();
            assert!(
                text.contains("PIDFD_THREAD"),
                "only an old kernel excuses this: {text}"
            );
            eprintln!("skipped: {text}");
        }
    }
}
