//! ConnectGuard against the real kernel: needs root and a cgroup v2 hierarchy.
//!
//! The test creates a temporary cgroup in the v2 tree (found in /proc/self/mountinfo: on this
//! hybrid host /sys/fs/cgroup/unified), starts a helper *process* (this test binary again, in
//! child mode, selected by an environment variable) and moves it into that cgroup, then tells the
//! helper over stdin what to connect/send to and reads the result from its stdout. The helper
//! reports the id of the thread that does the connects, which is the thread that gets approved.
//!
//! Not root: the test is skipped with a message, unless RAMPART_NODE_TESTS is set (`make test`),
//! which turns the missing privilege into a failure.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use nix::errno::Errno;
use rampart_audit::ConnectGuard;

const CHILD_ENV: &str = "RAMPART_CONNECT_GUARD_CHILD";
const PREFIX: &str = "RAMPART-CHILD ";
const TTL: Duration = Duration::from_secs(30);

/// Child mode: runs only in the helper process. Reads `tcp ADDR` / `udp ADDR` lines and answers
/// `ok` or `err ERRNO` for each, after first printing the id of the thread that does the work.
#[test]
fn child_mode() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{PREFIX}tid {}", nix::unistd::gettid()).unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lines() {
        let line = line.unwrap();
        let (kind, addr) = line.split_once(' ').expect("command: KIND ADDR");
        let addr: SocketAddr = addr.parse().expect("command address");
        let result = match kind {
            "tcp" => TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map(drop),
            "udp" => {
                let any: SocketAddr = if addr.is_ipv4() {
                    "0.0.0.0:0".parse().unwrap()
                } else {
                    "[::]:0".parse().unwrap()
                };
                UdpSocket::bind(any).and_then(|s| s.send_to(b"rampart", addr).map(drop))
            }
            other => panic!("unknown command {other}"),
        };
        match result {
            Ok(()) => writeln!(out, "{PREFIX}ok").unwrap(),
            Err(e) => writeln!(out, "{PREFIX}err {}", e.raw_os_error().unwrap_or(-1)).unwrap(),
        }
        out.flush().unwrap();
    }
    std::process::exit(0);
}

/// Skips (returns false) or, under RAMPART_NODE_TESTS, fails.
fn require(ok: bool, why: &str) -> bool {
    if !ok {
        assert!(
            std::env::var_os("RAMPART_NODE_TESTS").is_none(),
            "RAMPART_NODE_TESTS is set but {why}"
        );
        eprintln!("skipping connect_guard test: {why}");
    }
    ok
}

/// The mount point of the cgroup v2 hierarchy.
fn cgroup2_root() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        if fstype != "cgroup2" {
            return None;
        }
        Some(PathBuf::from(left.split_whitespace().nth(4)?))
    })
}

/// The temporary cgroup and the helper process in it; cleaned up on drop (also on panic).
struct Helper {
    cgroup: PathBuf,
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
    tid: u32,
}

impl Helper {
    fn start(cgroup_root: &Path) -> Helper {
        let cgroup = cgroup_root.join(format!("rampart-test-{}", std::process::id()));
        let _ = std::fs::remove_dir(&cgroup);
        std::fs::create_dir(&cgroup)
            .unwrap_or_else(|e| panic!("creating cgroup {}: {e}", cgroup.display()));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_mode", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning the helper process");
        let stdin = child.stdin.take().unwrap();
        // A reader thread forwards the helper's replies, so that a stuck helper fails the test
        // after a timeout instead of hanging it.
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, replies) = channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                // libtest may print "test child_mode ... " on the same line before the reply.
                if let Some(at) = line.find(PREFIX) {
                    let reply = line[at + PREFIX.len()..].trim_end().to_string();
                    if tx.send(reply).is_err() {
                        break;
                    }
                }
            }
        });
        let mut helper = Helper {
            cgroup,
            child,
            stdin,
            replies,
            tid: 0,
        };
        let tid = helper.read_reply();
        helper.tid = tid
            .strip_prefix("tid ")
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("helper said {tid:?}, expected its tid"));
        // Move the whole helper process (all its threads) into the cgroup. Sockets belong to the
        // cgroup their creator was in, so the helper creates a new socket for every command.
        std::fs::write(
            helper.cgroup.join("cgroup.procs"),
            helper.child.id().to_string(),
        )
        .expect("moving the helper into the test cgroup");
        helper
    }

    fn read_reply(&mut self) -> String {
        self.replies
            .recv_timeout(Duration::from_secs(20))
            .expect("the helper exited or did not answer within 20 s")
    }

    /// Runs one command in the helper: Ok(()) or Err(errno).
    fn run(&mut self, kind: &str, addr: SocketAddr) -> Result<(), i32> {
        writeln!(self.stdin, "{kind} {addr}").unwrap();
        self.stdin.flush().unwrap();
        let reply = self.read_reply();
        match reply.as_str() {
            "ok" => Ok(()),
            r => Err(r
                .strip_prefix("err ")
                .and_then(|e| e.parse().ok())
                .unwrap_or_else(|| panic!("helper said {r:?}"))),
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Err(e) = std::fs::remove_dir(&self.cgroup) {
            eprintln!("removing cgroup {}: {e}", self.cgroup.display());
        }
    }
}

const EPERM: Result<(), i32> = Err(Errno::EPERM as i32);

#[test]
fn connect_and_send_need_an_approval_for_the_thread() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    if !require(
        nix::unistd::geteuid().is_root(),
        "not root (loading BPF programs and creating cgroups needs root)",
    ) {
        return;
    }
    let Some(root) = cgroup2_root() else {
        require(false, "no cgroup v2 hierarchy is mounted");
        return;
    };

    let guard = ConnectGuard::load().expect("loading the connect guard");
    let mut helper = Helper::start(&root);
    guard
        .protect(&helper.cgroup)
        .expect("protecting the cgroup");
    // Idempotent.
    guard
        .protect(&helper.cgroup)
        .expect("protecting the cgroup again");
    let tid = helper.tid;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = listener.local_addr().unwrap();
    let tcp_other = other.local_addr().unwrap();

    // TCP over IPv4.
    let before = guard.denied();
    assert_eq!(helper.run("tcp", tcp), EPERM, "connect without approval");
    assert_eq!(guard.denied(), before + 1, "the denial is counted");
    guard.approve(tid, tcp, TTL).unwrap();
    assert_eq!(helper.run("tcp", tcp), Ok(()), "connect with approval");
    assert_eq!(
        helper.run("tcp", tcp_other),
        EPERM,
        "connect to another port than the approved one"
    );
    guard.approve(tid + 1, tcp_other, TTL).unwrap();
    assert_eq!(
        helper.run("tcp", tcp_other),
        EPERM,
        "an approval for another thread does not count"
    );

    // Expiry.
    guard
        .approve(tid, tcp_other, Duration::from_millis(300))
        .unwrap();
    assert_eq!(helper.run("tcp", tcp_other), Ok(()), "before the ttl");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(helper.run("tcp", tcp_other), EPERM, "after the ttl");

    // Unconnected UDP send over IPv4.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let udp_addr = udp.local_addr().unwrap();
    assert_eq!(
        helper.run("udp", udp_addr),
        EPERM,
        "sendto without approval"
    );
    guard.approve(tid, udp_addr, TTL).unwrap();
    assert_eq!(helper.run("udp", udp_addr), Ok(()), "sendto with approval");
    let mut buf = [0u8; 16];
    let (n, _) = udp
        .recv_from(&mut buf)
        .expect("the approved datagram arrives");
    assert_eq!(&buf[..n], b"rampart");

    // An IPv4-mapped IPv6 destination (AF_INET6 socket, connect6) matches the IPv4 approval.
    let mapped = |a: SocketAddr| -> SocketAddr {
        let SocketAddr::V4(v4) = a else {
            unreachable!()
        };
        SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port())
    };
    match helper.run("tcp", mapped(tcp)) {
        Err(e) if e == Errno::EAFNOSUPPORT as i32 => {
            eprintln!("skipping the IPv4-mapped part: no IPv6 sockets")
        }
        r => {
            assert_eq!(r, Ok(()), "mapped connect with the IPv4 approval");
            assert_eq!(
                helper.run("tcp", mapped(tcp_other)),
                EPERM,
                "mapped connect without approval"
            );
        }
    }

    // IPv6, when the machine has ::1.
    match TcpListener::bind("[::1]:0") {
        Err(e) => eprintln!("skipping the IPv6 part: cannot bind [::1]: {e}"),
        Ok(listener6) => {
            let tcp6 = listener6.local_addr().unwrap();
            assert_eq!(
                helper.run("tcp", tcp6),
                EPERM,
                "IPv6 connect without approval"
            );
            guard.approve(tid, tcp6, TTL).unwrap();
            assert_eq!(
                helper.run("tcp", tcp6),
                Ok(()),
                "IPv6 connect with approval"
            );
            let udp6 = UdpSocket::bind("[::1]:0").unwrap();
            let udp6_addr = udp6.local_addr().unwrap();
            assert_eq!(
                helper.run("udp", udp6_addr),
                EPERM,
                "IPv6 sendto without approval"
            );
            guard.approve(tid, udp6_addr, TTL).unwrap();
            assert_eq!(
                helper.run("udp", udp6_addr),
                Ok(()),
                "IPv6 sendto with approval"
            );
        }
    }

    // A process in another cgroup (this test process) is not affected.
    TcpStream::connect(tcp_other).expect("the test process is not in the protected cgroup");
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"x", udp_addr)
        .expect("the test process sends unhindered");

    assert!(guard.denied() >= before + 7, "denials are counted");
    drop(helper);
    drop(guard);
}
