//! Any bytes given to the loader must give policies or diagnostics, never a panic or a hang;
//! whatever parses must also compile into a view and decide.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_policy::{Access, Operation, Snapshot, User, Workload, decode, parse_str};

fuzz_target!(|data: &[u8]| {
    let text = match decode("fuzz.yaml", data) {
        Ok(t) => t,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    match parse_str("fuzz.yaml", text) {
        Ok(policies) => {
            let Ok(snapshot) = Snapshot::new(policies) else {
                return;
            };
            let view = snapshot.for_workload(&Workload::default());
            let _ = view.seccomp_plan();
            for path in ["/etc/passwd", "/", "/a/b/../c"] {
                let op = Operation::FileAccess {
                    path,
                    access: Access::Read,
                    process: "/bin/sh",
                };
                let _ = view.decide(&op);
                let root = User {
                    uid: 0,
                    name: Some("root"),
                };
                let _ = view.decide_as(&op, Some(&root));
                let _ = view.read_needs_subject(path, "/bin/sh");
                for in_image in [true, false] {
                    let _ = view.decide(&Operation::Exec { path, in_image });
                }
            }
        }
        Err(e) => {
            // Every diagnostic renders, and names a place unless the file is empty.
            for d in e.diagnostics() {
                let _ = d.to_string();
            }
        }
    }
});
