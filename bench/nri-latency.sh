#!/usr/bin/env bash
# CreateContainer + StartContainer latency through CRI with and without rampart, in one run, on
# the local node: arm A without rampart's daemons, arm B with rampartd + rampart-nri +
# rampart-seccomp and the seed policy scoping the container (so B pays for PlanContainer, the
# annotation, rampart-runc's merge, runc's handoff to the seccomp agent, and the agent answering
# runc init's syscalls). The arms alternate (A B A B) so drift on a shared machine hits both.
#
# usage: bench/nri-latency.sh [N per round] [rounds]     (root; make build && make node-up first)
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
