//! connect, and sendto/sendmsg/sendmmsg with destinations: decided on the destinations the task
//! passed (every one of a sendmmsg; the strictest decides). An allowed call CONTINUEs, so the
//! kernel re-reads the sockaddr: a task that rewrites it after the check reaches another address.
//! cgroup/connect4/6 + sendmsg4/6 BPF, which sees the address the kernel actually uses, is the
//! backstop (`backstop::egress_guard`, rampart-audit's programs): it lets the thread reach only the
//! destinations approved here.

use std::net::SocketAddr;

use rampart_policy::{Direction, Operation, Protocol, WorkloadView};

use tracing::warn;

use crate::backstop::egress_guard::{EgressGuard, warn_unguarded};
use crate::outcome::{Answer, Outcome, Subject, outcome};
use crate::syscall::ConnectCall;
use crate::task::Task;
use crate::workload::Workload;

const DENY: i32 = libc::EPERM;

pub fn handle(
    w: &Workload,
    view: &WorkloadView,
    task: &Task,
    call: &ConnectCall,
    guard: Option<&EgressGuard>,
) -> Outcome {
    let ConnectCall { syscall, addrs, .. } = call;
    // Unix and netlink sockets, and sends on a connected socket: no destination to decide.
    if addrs.is_empty() {
        return Outcome {
            answer: Answer::Continue,
            report: None,
        };
    }
    // The socket's own kind, not what its destination suggests: a rule for udp/53 must not
    // pass a TCP connect to port 53, nor a raw socket's datagram.
    let protocol = match task.socket_kind(call.fd) {
        Ok((libc::SOCK_STREAM, libc::IPPROTO_TCP | 0)) => Protocol::Tcp,
        Ok((libc::SOCK_DGRAM, libc::IPPROTO_UDP | 0)) => Protocol::Udp,
        Ok(_) => Protocol::Raw,
        // What the call would have failed with (a closed descriptor, not a socket).
        Err(e) if matches!(e.raw_os_error(), Some(libc::EBADF | libc::ENOTSOCK)) => {
            return Outcome::errno(e.raw_os_error().unwrap_or(DENY));
        }
        Err(e) => {
            warn!(tid = task.tid(), fd = call.fd, error = %e,
                "cannot read the socket's kind; refusing the call");
            return Outcome::errno(DENY);
        }
    };
    let process = task.identity();
    let op = |addr: &SocketAddr| Operation::Connect {
        direction: Direction::Egress,
        address: addr.ip(),
        port: addr.port(),
        protocol,
        process,
    };
    // The strictest destination decides; the first of equals names it.
    let (addr, decision) = addrs
        .iter()
        .rev()
        .map(|a| (a, view.decide(&op(a))))
        .max_by_key(|(_, d)| d.verdict)
        .expect("addrs is not empty");
    let subject = Subject::new(syscall, task.exe());
    outcome(decision, w, &op(addr), subject, DENY, || {
        // Before the CONTINUE: the kernel's hook must find this thread's approvals.
        if let Some(g) = guard
            && let Err(e) = g.allow(w, task.tid(), addrs)
        {
            warn_unguarded(&e, w);
        }
        Answer::Continue
    })
}
