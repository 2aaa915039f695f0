//! Only root may use the agent API: a child process that drops to uid 65534 is kept out, by the
//! socket's mode first, and by the SO_PEERCRED check when the mode would let it in.
//!
//! Needs root (CI runs tests as root); prints SKIPPED otherwise.

mod api_common;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use api_common::Harness;
use prost::Message;
use rampart_protos::agent::{AgentKind, DAEMON_SERVICE, HelloRequest};
use rampart_protos::ttrpc::{self, Decoded, Decoder, code};

const NOBODY: u32 = 65534;

#[derive(Debug)]
enum Outcome {
    /// connect(2) failed with this errno.
    ConnectFailed(i32),
    /// What the server sent, and whether it then closed the connection.
    Answered { bytes: Vec<u8>, closed: bool },
}

fn skip_unless_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return false;
    }
    eprintln!(
        "SKIPPED: refusing a non-root peer needs root to fork a child that drops to uid {NOBODY}"
    );
    true
}

fn hello_frame() -> Vec<u8> {
    let hello = HelloRequest {
        kind: AgentKind::Seccomp as i32,
        version: "evil".into(),
        pid: 1,
        enforcers: vec![],
        containers: vec![],
        mechanisms: Vec::new(),
    };
    let req = ttrpc::Request {
        service: DAEMON_SERVICE.into(),
        method: "Hello".into(),
        payload: hello.encode_to_vec(),
        timeout_nano: 0,
        metadata: vec![],
    };
    ttrpc::encode_message(1, ttrpc::TYPE_REQUEST, &req.encode_to_vec()).unwrap()
}

/// Forks a child that becomes uid/gid 65534, connects to `path`, sends a Hello and reads until
/// the server closes (or 5 s pass). Blocking: call from `spawn_blocking`. The test's only
/// `unsafe`: fork and the raw syscalls of the child.
#[allow(unsafe_code)]
fn connect_as_nobody(path: &Path) -> Outcome {
    // Everything the child needs is prepared here: after fork in a threaded process the child
    // may only make async-signal-safe calls (no allocation, no locks).
    let mut addr = libc::sockaddr_un {
        sun_family: libc::AF_UNIX as libc::sa_family_t,
        sun_path: [0; 108],
    };
    let raw = path.as_os_str().as_bytes();
    assert!(raw.len() < addr.sun_path.len(), "socket path too long");
    for (dst, src) in addr.sun_path.iter_mut().zip(raw) {
        *dst = *src as libc::c_char;
    }
    let addr_len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    let frame = hello_frame();
    let timeout = libc::timeval {
        tv_sec: 5,
        tv_usec: 0,
    };
    let mut pipe = [0 as libc::c_int; 2];
    let mut out = vec![0u8; 64 * 1024];

    // SAFETY: pipe/fork/waitpid/read/close are called with valid pointers and fds we own. The
    // child only makes raw syscalls on memory prepared before fork and ends in _exit, so it never
    // touches allocator or runtime state that another thread of this process may have held.
    unsafe {
        assert_eq!(libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC), 0);
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            libc::close(pipe[0]);
            let w = pipe[1];
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(NOBODY) != 0
                || libc::setuid(NOBODY) != 0
            {
                libc::_exit(90);
            }
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            if fd < 0 {
                libc::_exit(91);
            }
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
            if libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), addr_len) != 0 {
                let errno = *libc::__errno_location();
                let msg = [b'E', errno as u8];
                libc::write(w, msg.as_ptr().cast(), 2);
                libc::_exit(0);
            }
            libc::write(fd, frame.as_ptr().cast(), frame.len());
            let mut got = 0usize;
            let mut closed = 0u8;
            loop {
                let n = libc::read(fd, out.as_mut_ptr().add(got).cast(), out.len() - got);
                if n == 0 {
                    closed = 1;
                    break;
                }
                if n < 0 {
                    break;
                }
                got += n as usize;
                if got == out.len() {
                    break;
                }
            }
            let head = [b'R', closed];
            libc::write(w, head.as_ptr().cast(), 2);
            libc::write(w, out.as_ptr().cast(), got);
            libc::_exit(0);
        }
        libc::close(pipe[1]);
        let mut report = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = libc::read(pipe[0], buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            report.extend_from_slice(&buf[..n as usize]);
        }
        libc::close(pipe[0]);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child failed before connecting (status {status:#x})"
        );
        match report.as_slice() {
            [b'E', errno] => Outcome::ConnectFailed(i32::from(*errno)),
            [b'R', closed, bytes @ ..] => Outcome::Answered {
                bytes: bytes.to_vec(),
                closed: *closed == 1,
            },
            other => panic!("child report unreadable: {other:?}"),
        }
    }
}

async fn as_nobody(path: &Path) -> Outcome {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || connect_as_nobody(&path))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_root_peer_is_refused_by_peer_credentials() {
    if skip_unless_root() {
        return;
    }
    let h = Harness::start("peercred").await;
    // Open the file system's door, so that only the SO_PEERCRED check stands in the way.
    let dir = h.path.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&h.path, std::fs::Permissions::from_mode(0o666)).unwrap();
    // And /tmp's parents must be searchable by nobody, which they are on any sane system.

    let Outcome::Answered { bytes, closed } = as_nobody(&h.path).await else {
        panic!("nobody could not even connect; the test setup is wrong")
    };
    assert!(closed, "the server kept a refused connection open");
    let mut d = Decoder::default();
    d.push(&bytes);
    let Some(Decoded::Message(m)) = d.next_message() else {
        panic!("refused peer got no answer ({} bytes)", bytes.len())
    };
    assert_eq!((m.stream_id, m.msg_type), (1, ttrpc::TYPE_RESPONSE));
    let status = ttrpc::Response::decode(m.payload).unwrap().status.unwrap();
    assert_eq!(status.code, code::PERMISSION_DENIED, "{}", status.message);
    assert!(status.message.contains("uid 65534"), "{}", status.message);
    // Its Hello never reached the daemon.
    assert!(h.daemon.agents().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_root_peer_cannot_open_the_0600_socket() {
    if skip_unless_root() {
        return;
    }
    let h = Harness::start("mode").await;
    // Only the socket's own mode: let nobody into the directory.
    let dir = h.path.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    match as_nobody(&h.path).await {
        Outcome::ConnectFailed(errno) => assert_eq!(errno, libc::EACCES),
        other => panic!("nobody connected to a 0600 root socket: {other:?}"),
    }
    assert!(h.daemon.agents().is_empty());
}
