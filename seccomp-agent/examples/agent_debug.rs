use rampart_seccomp::listener::Listener;
use rampart_seccomp::policy_handler::{PolicyHandler, Reporter};
use rampart_seccomp::supervisor::{self, Answer, Handler, Phase};
use rampart_seccomp::sys::notify::Notification;
use rampart_seccomp::workload::Workload;
use std::sync::Arc;
struct P;
impl Reporter for P {
    fn report(&self, e: rampart_protos::agent::Event) {
        eprintln!("EVENT {e:?}");
    }
}
struct Dbg(PolicyHandler);
impl Handler for Dbg {
    fn handle(
        &self,
        w: &Workload,
        fd: std::os::fd::BorrowedFd<'_>,
        ph: &mut Phase,
        n: &Notification,
    ) -> Answer {
        eprintln!("notif pid={} nr={} args={:x?}", n.pid, n.nr, n.args);
        let a = self.0.handle(w, fd, ph, n);
        eprintln!("  -> {a:?}");
        a
    }
}
#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_env_filter("debug").init();
    let seed =
        std::fs::read_to_string("/work/main/config/examples/disallow-etc-access-for-nginx.yaml")
            .unwrap();
    let snap =
        rampart_policy::Snapshot::new(rampart_policy::parse_str("s", &seed).unwrap()).unwrap();
    let h: Arc<dyn Handler> = Arc::new(Dbg(PolicyHandler::new(1, snap, Arc::new(P))));
    let l = Listener::bind(std::path::Path::new("/run/rampart-dbg.sock")).unwrap();
    loop {
        let x = l.accept().await.unwrap().handoff().await.unwrap();
        let w = Arc::new(Workload::from_state(&x.state));
        eprintln!("handoff {:?}", w);
        supervisor::spawn(x.notify_fd, w, h.clone()).unwrap();
    }
}
