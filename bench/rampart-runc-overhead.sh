#!/usr/bin/env bash
# What rampart-runc adds to each `runc create`: its own exec, reading config.json, and (when the
# rampart.dev/seccomp annotation is there) the merge and the rewrite. Measured by putting
# /bin/true where runc would be (RAMPART_RUNC) and timing, per call, `rampart-runc ... create`
# against `/bin/true ... create` directly, on a `runc spec` bundle in the node's state filesystem.
#
# usage: bench/rampart-runc-overhead.sh [N]     (RAMPART_BIN: where rampart-runc is, default
#                                                target/release; root not needed)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300}
BIN=${RAMPART_BIN:-target/release}
WRAPPER=$BIN/rampart-runc
[ -x "$WRAPPER" ] || { echo "no $WRAPPER (cargo build --release -p rampart-nri)" >&2; exit 1; }
# Same filesystem as containerd's bundles on the node (its state dir), so writes cost the same.
PARENT=${RAMPART_NODE_DIR:-/var/lib/rampart-node}
[ -d "$PARENT" ] || PARENT=/var/tmp
DIR=$(mktemp -d -p "$PARENT" rampart-runc-bench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
mkdir -p "$DIR/plain" "$DIR/annotated"
runc spec --bundle "$DIR/plain"
python3 - "$DIR" <<'PY'
import json, sys
d = sys.argv[1]
spec = json.load(open(f"{d}/plain/config.json"))
spec.setdefault("annotations", {})["io.kubernetes.cri.container-name"] = "nginx"
json.dump(spec, open(f"{d}/plain/config.json", "w"))
add = {"notify": ["openat", "execve", "connect"], "deny": ["io_uring_setup"],
       "listenerPath": "/run/rampart/seccomp.sock",
       "listenerMetadata": "rampart/v1 default/web/nginx"}
spec["annotations"]["rampart.dev/seccomp"] = json.dumps(add)
json.dump(spec, open(f"{d}/annotated/config.json", "w"))
PY
python3 - "$DIR" "$WRAPPER" "$N" <<'PY'
import os, shutil, subprocess, sys, time
d, wrapper, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
env = dict(os.environ, RAMPART_RUNC="/bin/true")
def run(cmd, bundle):
    orig = f"{d}/{bundle}/config.orig"
    if not os.path.exists(orig):
        shutil.copy(f"{d}/{bundle}/config.json", orig)
    xs = []
    for _ in range(n):
        shutil.copy(orig, f"{d}/{bundle}/config.json")
        t = time.perf_counter()
        subprocess.run([cmd, "--root", f"{d}/root", "create", "--bundle", f"{d}/{bundle}", "x"],
                       env=env, check=True)
        xs.append((time.perf_counter() - t) * 1000)
    xs.sort()
    return xs[len(xs) // 2], xs[round((len(xs) - 1) * .99)]
base = run("/bin/true", "plain")
rows = [("exec /bin/true directly (baseline)", base),
        ("rampart-runc, no annotation (pass-through)", run(wrapper, "plain")),
        ("rampart-runc, annotation (merge + rewrite)", run(wrapper, "annotated"))]
print("| path | p50 ms | p99 ms | added p50 ms |")
print("|---|---|---|---|")
for name, (p50, p99) in rows:
    print(f"| {name} | {p50:.3f} | {p99:.3f} | {p50 - base[0]:+.3f} |")
PY
