//! connect (and sendto with an address): decided on the destination the task passed. An allowed
//! connect CONTINUEs, so the kernel re-reads the sockaddr; cgroup/connect4/6 BPF, which sees the
//! address the kernel actually uses, is the backstop (rampart-audit).

use rampart_policy::{Direction, EventType, Operation, Protocol, WorkloadView};

use crate::policy_handler::{Outcome, Subject, outcome, process_path};
use crate::supervisor::Answer;
use crate::syscall::Call;
use crate::workload::Workload;

const DENY: i32 = libc::EPERM;

pub fn handle<'v>(w: &Workload, view: &'v WorkloadView, pid: u32, call: &Call) -> Outcome<'v> {
    let Call::Connect { addr, .. } = call else {
        return Outcome::errno(libc::EPERM);
    };
    // Unix and netlink sockets: no network rule speaks of them.
    let Some(addr) = addr else {
        return Outcome {
            answer: Answer::Continue,
            report: None,
        };
    };
    let process = process_path(pid);
    let op = Operation::Connect {
        direction: Direction::Egress,
        address: addr.ip(),
        port: addr.port(),
        // The socket's type would need the task's fd; connect is overwhelmingly TCP, and UDP
        // "connects" are decided the same way by address and port.
        protocol: Protocol::Tcp,
        process: &process,
    };
    let decision = view.decide(&op);
    let subject = Subject {
        event_type: EventType::NetworkConnection,
        syscall: "connect",
        process: process.clone(),
        path: String::new(),
        remote: addr.to_string(),
    };
    outcome(decision, w, &op, subject, DENY, || Answer::Continue)
}
