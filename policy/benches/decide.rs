//! Decision cost at 1, 100 and 1,000 policies of 10 rules each, and compile cost.
//!
//! Two shapes of snapshot: "all" where every policy selects the workload (the worst case: the
//! view merges every rule), and "scoped" where each policy selects one of 100 container names,
//! so about 1% of the policies apply (the usual case: selection happens once per container).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rampart_policy::{
    Access, Direction, Operation, Protocol, Snapshot, Verdict, Workload, parse_str,
};

/// One policy: 6 file rules (prefix, literal, in-segment wildcard, process-qualified allow),
/// 2 process rules, 2 network rules.
fn policy(i: usize, scoped: bool) -> String {
    let selector = if scoped {
        format!("  selector: {{containerNames: [c{}]}}\n", i % 100)
    } else {
        String::new()
    };
    format!(
        r#"---
apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {{name: p{i}}}
spec:
{selector}  severity: High
  files:
    - {{paths: ["/etc/**"], access: [read], action: block}}
    - {{paths: ["/etc/app{i}/**", /etc/passwd], processes: [/usr/sbin/app{i}], access: [read], action: allow}}
    - {{paths: ["/srv/p{i}/data/**"], access: [write, delete], action: alert}}
    - {{paths: [/var/lib/p{i}/db.sqlite], action: block}}
    - {{paths: ["/opt/p{i}/*/bin/tool"], action: block}}
    - {{paths: ["/home/*/.ssh/id_{i}*"], access: [read], action: block}}
  processes:
    - {{paths: [/bin/sh, /bin/bash, "/tmp/p{i}/*"], action: block}}
    - {{paths: [/usr/bin/curl{i}], action: alert}}
  network:
    - {{cidrs: ["10.{a}.0.0/16"], ports: [443, "8000-8100"], protocols: [tcp], action: allow}}
    - {{cidrs: ["0.0.0.0/0"], ports: [{port}], action: block}}
"#,
        a = i % 256,
        port = 1000 + i % 60000,
    )
}

fn text(n: usize, scoped: bool) -> String {
    (0..n).map(|i| policy(i, scoped)).collect()
}

fn snapshot(n: usize, scoped: bool) -> Snapshot {
    Snapshot::new(parse_str("bench.yaml", &text(n, scoped)).expect("bench policies parse"))
        .expect("unique names")
}

fn workload() -> Workload {
    Workload {
        namespace: "default".into(),
        pod_name: "web-0".into(),
        container_name: "c7".into(),
        image: "nginx:1.25".into(),
        ..Workload::default()
    }
}

fn decisions(c: &mut Criterion) {
    let ops: [(&str, Operation<'static>, Verdict); 5] = [
        (
            "file-block",
            Operation::FileAccess {
                path: "/etc/shadow",
                access: Access::Read,
                process: "/bin/cat",
            },
            Verdict::Block,
        ),
        (
            "file-miss",
            Operation::FileAccess {
                path: "/usr/lib/x86_64-linux-gnu/libc.so.6",
                access: Access::Read,
                process: "/usr/sbin/app7",
            },
            Verdict::Allow,
        ),
        (
            "file-unnormalised",
            Operation::FileAccess {
                path: "/tmp/../etc//passwd",
                access: Access::Read,
                process: "/bin/cat",
            },
            Verdict::Block,
        ),
        (
            "exec-block",
            Operation::Exec {
                path: "/bin/sh",
                in_image: true,
            },
            Verdict::Block,
        ),
        (
            "connect-allow",
            Operation::Connect {
                direction: Direction::Egress,
                address: "10.7.1.2".parse().expect("literal address"),
                port: 443,
                protocol: Protocol::Tcp,
                process: "/usr/sbin/app7",
            },
            Verdict::Allow,
        ),
    ];
    for scoped in [false, true] {
        let shape = if scoped { "scoped" } else { "all" };
        let mut g = c.benchmark_group(format!("decide/{shape}"));
        for n in [1usize, 100, 1000] {
            let s = snapshot(n, scoped);
            let view = s.for_workload(&workload());
            for (name, op, want) in &ops {
                // Only meaningful when at least one policy applies.
                if view.is_empty() {
                    continue;
                }
                assert_eq!(view.decide(op).verdict, *want, "{shape} {n} {name}");
                g.bench_with_input(BenchmarkId::new(*name, n), op, |b, op| {
                    b.iter(|| black_box(view.decide(black_box(op)).verdict))
                });
            }
        }
        g.finish();
    }
}

fn compile(c: &mut Criterion) {
    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    for n in [1usize, 100, 1000] {
        let t = text(n, true);
        g.bench_with_input(BenchmarkId::new("parse+snapshot", n), &t, |b, t| {
            b.iter(|| Snapshot::new(parse_str("bench.yaml", t).expect("parses")).expect("unique"))
        });
        let all = snapshot(n, false);
        g.bench_with_input(BenchmarkId::new("for_workload/all", n), &all, |b, s| {
            b.iter(|| s.for_workload(&workload()))
        });
        let scoped = snapshot(n, true);
        g.bench_with_input(
            BenchmarkId::new("for_workload/scoped", n),
            &scoped,
            |b, s| b.iter(|| s.for_workload(&workload())),
        );
    }
    g.finish();
}

criterion_group!(benches, decisions, compile);
criterion_main!(benches);
