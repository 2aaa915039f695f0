#!/usr/bin/env bash
# CreateContainer + StartContainer latency through CRI with and without rampart, in one run, on
# the local node: arm A without rampart's daemons, arm B with rampartd + rampart-nri +
# rampart-seccomp and the seed policy scoping the container (so B pays for PlanContainer, the
# annotation, rampart-runc's merge, runc's handoff to the seccomp agent, and the agent answering
# runc init's syscalls). The arms alternate (A B A B) so drift on a shared machine hits both.
#
# After the table: where the "with" arm's time goes, from rampart-nri's own log (time in its
# CreateContainer handler incl. the PlanContainer round trip, and in BindContainer at
# StartContainer), and rampart-runc's overhead (bench/rampart-runc-overhead.sh).
#
# usage: bench/nri-latency.sh [N per round] [rounds]     (root; make build && make node-up first)
#        RAMPART_BIN=target/release ... for release daemons (see docs/benchmarks.md)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-25}
ROUNDS=${2:-2}
BIN=target/debug/examples/cri_latency
cargo build -q -p rampart-integration --example cri_latency
NODE_DIR=${RAMPART_NODE_DIR:-/var/lib/rampart-node}
POLICIES=$(mktemp -d)
cp config/examples/disallow-etc-access-for-nginx.yaml "$POLICIES/"
trap 'scripts/rampart down >/dev/null; rm -rf "$POLICIES"' EXIT
out=$(mktemp)
since=$(date '+%Y-%m-%d %H:%M:%S')
RUN_DIR=$NODE_DIR/rampart
log_from=$(wc -l < "$RUN_DIR/rampart-nri.log" 2>/dev/null || echo 0)
for r in $(seq "$ROUNDS"); do
  scripts/rampart down >/dev/null
  "$BIN" without "$N" >> "$out"
  RAMPART_POLICY_DIR=$POLICIES scripts/rampart up >/dev/null
  "$BIN" with "$N" >> "$out"
done
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def pct(xs, p):
    xs = sorted(xs); return xs[round((len(xs) - 1) * p)]
arms = {}
for r in rows:
    arms.setdefault(r["arm"], []).extend(r["samples_ms"])
a, b = arms["without"], arms["with"]
print("| arm | n | p50 ms | p99 ms |")
print("|---|---|---|---|")
for name, xs in (("without rampart", a), ("with rampart (seed policy scopes the container)", b)):
    print(f"| {name} | {len(xs)} | {pct(xs, .5):.1f} | {pct(xs, .99):.1f} |")
print(f"\nadded by rampart: p50 {pct(b, .5) - pct(a, .5):+.1f} ms, p99 {pct(b, .99) - pct(a, .99):+.1f} ms")
PY
# rampart-nri's timings for the "with" arm: journald's fields when it logs there, else its log file.
nri_log=$(mktemp)
{ journalctl -q --no-pager -t rampart-nri --since "$since" -o json 2>/dev/null || true
  tail -n +"$((log_from + 1))" "$RUN_DIR/rampart-nri.log" 2>/dev/null || true; } > "$nri_log"
python3 - "$nri_log" <<'PY'
import json, re, sys
vals = {"plan_us": [], "handler_us": [], "bind_us": []}
for line in open(sys.argv[1], errors="replace"):
    line = line.strip()
    if line.startswith("{"):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        # rampart's journald layer names span and event fields RAMPART_LOG_<FIELD>.
        for k in vals:
            v = rec.get("RAMPART_LOG_" + k.upper())
            if v is not None:
                vals[k].append(int(v))
    else:
        for k in vals:
            m = re.search(rf"\b{k}=(\d+)", line)
            if m:
                vals[k].append(int(m.group(1)))
def pct(xs, p):
    xs = sorted(xs); return xs[round((len(xs) - 1) * p)]
print("\n| inside rampart-nri (with arm) | n | p50 ms | p99 ms |")
print("|---|---|---|---|")
names = {"plan_us": "CreateContainer: PlanContainer round trip to rampartd",
         "handler_us": "CreateContainer: whole handler (plan + building the adjustment)",
         "bind_us": "StartContainer: BindContainer round trip to rampartd"}
for k, xs in vals.items():
    if xs:
        print(f"| {names[k]} | {len(xs)} | {pct(xs, .5) / 1000:.2f} | {pct(xs, .99) / 1000:.2f} |")
    else:
        print(f"| {names[k]} | 0 | - | - |")
PY
rm -f "$nri_log"
echo
RAMPART_BIN=${RAMPART_BIN:-target/debug} bench/rampart-runc-overhead.sh 200
