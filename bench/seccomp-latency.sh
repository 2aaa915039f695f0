#!/usr/bin/env bash
# Latency of rampart's seccomp-notify enforcement, measured inside real pods on the local node
# (scripts/node up) with rampart-probe (images/tools/rampart-probe.c, in the busybox image).
# In one run, four busybox pods side by side:
#   none      no seccomp profile at all (Unconfined): the bare kernel
#   hardened  RuntimeDefault, containerd's own default profile: the same pod without rampart, as a
#             hardened cluster runs it (the baseline of the targets)
#   agent     that same profile with what rampart-nri adds (open/openat/openat2/creat,
#             execve/execveat and connect/sendto/sendmsg/sendmmsg → SCMP_ACT_NOTIFY to the agent's
#             own code, examples/bench_agent: listener + PolicyHandler, under
#             bench/seccomp-latency-policy.yaml, the seed policy's rules; io_uring refused)
#   floor     the agent's profile served by bench/continue-supervisor.c, which answers every
#             notification with CONTINUE: the cost of the notification round trip alone
# Each probe measurement times every call with clock_gettime(CLOCK_MONOTONIC) and reports p50/p99;
# measurements interleave across the pods and repeat ROUNDS times, and the table shows the median
# of each round's p50 and p99.
#
#   bench/seccomp-latency.sh [--doc] [--rounds N]      (as root)
#     --doc     also write the table into docs/benchmarks.md, section
#               "## seccomp agent latency (bench/seccomp-latency.sh)" (replaced if present)
#   BASE_AGENT=PATH   adds a fifth pod, "base": the agent's profile served by another build of
#               bench_agent (an earlier commit's), for a before/after comparison in one run
#
# Needs root, the node, gcc, python3 and cargo (builds the agent example in release mode).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
NODE_DIR=${RAMPART_NODE_DIR:-/var/lib/rampart-node}
export RAMPART_CRI_SOCKET=${RAMPART_CRI_SOCKET:-$NODE_DIR/containerd.sock}
NS=rampart-bench
ROUNDS=5
DOC=0
N_OPEN=${N_OPEN:-20000}
N_GETPID=${N_GETPID:-2000000}
N_EXEC=${N_EXEC:-300}
N_CONNECT=${N_CONNECT:-5000}
CMDLINE="${BASE_AGENT:+BASE_AGENT=<${BASE_AGENT_LABEL:-$BASE_AGENT}> }bench/seccomp-latency.sh $*"

while [ $# -gt 0 ]; do
  case $1 in
    --doc) DOC=1 ;;
    --rounds) ROUNDS=${2:?--rounds N}; shift ;;
    *) echo "usage: bench/seccomp-latency.sh [--doc] [--rounds N]" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "bench: $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
[ -S "$RAMPART_CRI_SOCKET" ] || die "the node is not up ($RAMPART_CRI_SOCKET missing): run scripts/node up"

log "building the agent example (release) and rampart-kubelet"
(cd "$SRC" && cargo build -q --release -p rampart-seccomp --example bench_agent \
  && cargo build -q -p rampart-integration --bin rampart-kubelet) >&2
AGENT_BIN=$SRC/target/release/examples/bench_agent
K=$SRC/target/debug/rampart-kubelet

work=$(mktemp -d /run/rampart-bench.XXXXXX)
gcc -O2 -pthread -o "$work/continue-supervisor" "$SRC/bench/continue-supervisor.c"

SUFFIX=$$
pods=()
AGENT_PID=
FLOOR_PID=
BASE_PID=
cleanup() {
  local p
  for p in "${pods[@]}"; do timeout 60 "$K" rm "$p" -n "$NS" >/dev/null 2>&1 || log "warning: could not remove pod $NS/$p"; done
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null || true
  [ -n "$FLOOR_PID" ] && kill "$FLOOR_PID" 2>/dev/null || true
  [ -n "$BASE_PID" ] && kill "$BASE_PID" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$AGENT_BIN" "$work/agent.sock" "$SRC/bench/seccomp-latency-policy.yaml" >"$work/agent.out" 2>"$work/agent.err" &
AGENT_PID=$!
"$work/continue-supervisor" "$work/floor.sock" >"$work/floor.out" 2>"$work/floor.err" &
FLOOR_PID=$!
SUPERVISORS=(agent floor)
if [ -n "${BASE_AGENT:-}" ]; then
  "$BASE_AGENT" "$work/base.sock" "$SRC/bench/seccomp-latency-policy.yaml" >"$work/base.out" 2>"$work/base.err" &
  BASE_PID=$!
  SUPERVISORS+=(base)
fi
for s in "${SUPERVISORS[@]}"; do
  for _ in $(seq 100); do [ -S "$work/$s.sock" ] && break; sleep 0.1; done
  [ -S "$work/$s.sock" ] || { cat "$work/$s.err" >&2; die "the $s supervisor did not come up"; }
done

CFGS=(none hardened agent floor)
[ -n "${BASE_AGENT:-}" ] && CFGS+=(base)
declare -A POD
run_pod() { # CONFIG SECCOMP-PROFILE-ARG
  POD[$1]=bench-$1-$SUFFIX
  "$K" run "${POD[$1]}" -n "$NS" -c bench --image rampart.local/busybox:latest --seccomp-profile "$2" -- sleep 100000 >/dev/null \
    || die "pod ${POD[$1]} did not start"
  pods+=("${POD[$1]}")
}
spec_seccomp() { # CONFIG: the seccomp filter the container really runs under, as JSON
  "$K" inspect "${POD[$1]}" -n "$NS" -c bench \
    | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["info"]["runtimeSpec"]["linux"].get("seccomp") or {}))'
}
run_pod none unconfined
run_pod hardened runtime-default
[ "$(spec_seccomp none)" = "{}" ] || die "the unconfined pod has a seccomp filter"
spec_seccomp hardened > "$work/hardened.json"
grep -q '"defaultAction": "SCMP_ACT_ERRNO"' "$work/hardened.json" \
  || die "the RuntimeDefault pod does not run under an allow-list profile: $(head -c 300 "$work/hardened.json")"
grep -q listenerPath "$work/hardened.json" && die "the RuntimeDefault pod has a seccomp listener"

# What rampart-nri makes of that profile for this policy (nri-plugin/src/seccomp_merge.rs): the
# decided syscalls leave their allow rules and notify the agent; io_uring is refused (its opens
# never reach a seccomp filter). Everything else stays as RuntimeDefault has it.
notified_profile() { # SOCKET OUT
  python3 - "$work/hardened.json" "$1" "$2" <<'PY'
import json, sys
base, sock, out = sys.argv[1:]
p = json.load(open(base))
notify = ["open", "openat", "openat2", "creat", "execve", "execveat", "connect", "sendto", "sendmsg", "sendmmsg"]
refuse = ["io_uring_setup", "io_uring_enter", "io_uring_register"]
rules = []
for r in p.get("syscalls", []):
    names = [n for n in r["names"] if n not in notify and n not in refuse]
    if names:
        rules.append(dict(r, names=names))
rules.append({"names": notify, "action": "SCMP_ACT_NOTIFY"})
rules.append({"names": refuse, "action": "SCMP_ACT_ERRNO", "errnoRet": 1})
p["syscalls"] = rules
p["listenerPath"] = sock
p["listenerMetadata"] = "rampart-bench"
json.dump(p, open(out, "w"))
PY
}
notified_profile "$work/agent.sock" "$work/agent.json"
notified_profile "$work/floor.sock" "$work/floor.json"
[ -n "${BASE_AGENT:-}" ] && notified_profile "$work/base.sock" "$work/base.json"
for c in "${SUPERVISORS[@]}"; do
  run_pod "$c" "$work/$c.json"
  # What the container really runs under (another NRI plugin could have changed it).
  listener=$(spec_seccomp "$c" | grep -o '"listenerPath": *"[^"]*"' | head -1 || true)
  [[ "$listener" == *"$work/$c.sock"* ]] || die "pod ${POD[$c]} does not use $work/$c.sock ($listener)"
done
"$K" exec "${POD[none]}" -n "$NS" -- /usr/local/bin/rampart-probe nop \
  || die "rampart-probe is not in rampart.local/busybox:latest: run scripts/node up to rebuild the images"

# name | probe arguments for none and hardened | for agent | for floor
BENCHES=(
  "open|bench-open /etc/hostname $N_OPEN|bench-open /etc/hostname $N_OPEN|bench-open /etc/hostname $N_OPEN"
  "open-deny|bench-open /etc/passwd $N_OPEN|bench-open-deny /etc/passwd $N_OPEN|bench-open /etc/passwd $N_OPEN"
  "exec|bench-exec $N_EXEC|bench-exec $N_EXEC|bench-exec $N_EXEC"
  "connect|bench-connect 127.0.0.1 9 $N_CONNECT|bench-connect 127.0.0.1 9 $N_CONNECT|bench-connect 127.0.0.1 9 $N_CONNECT"
  "getpid|bench-getpid $N_GETPID|bench-getpid $N_GETPID|bench-getpid $N_GETPID"
)

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$work/res"
for r in $(seq "$ROUNDS"); do
  for b in "${BENCHES[@]}"; do
    IFS='|' read -r name a_none a_agent a_floor <<<"$b"
    for c in "${CFGS[@]}"; do
      case $c in none | hardened) args=$a_none ;; agent | base) args=$a_agent ;; floor) args=$a_floor ;; esac
      # shellcheck disable=SC2086
      out=$("$K" exec "${POD[$c]}" -n "$NS" --timeout 300 -- /usr/local/bin/rampart-probe $args 2>"$work/probe.err") \
        || { cat "$work/probe.err" >&2; die "round $r, $name in $c: rampart-probe $args failed: $out"; }
      # "bench-open n N p50 X p99 Y mean Z"
      read -r _ _ _ _ p50 _ p99 _ <<<"$out"
      echo "$p50 $p99" >> "$work/res/$name.$c"
      log "round $r/$ROUNDS $name $c: p50 $p50 p99 $p99 ns"
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
p50() { cut -d' ' -f1 "$work/res/$1.$2" | median; }
p99() { cut -d' ' -f2 "$work/res/$1.$2" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
ratio3() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
# The median over rounds of one pod's p50 over another's, both from the same round: a round in which
# the whole VM runs slower (other tenants; see docs/benchmarks.md) moves both alike.
rratio_raw() { # BENCH A B
  paste -d' ' <(cut -d' ' -f1 "$work/res/$1.$2") <(cut -d' ' -f1 "$work/res/$1.$3") \
    | awk '{printf "%.6f\n", $1 / $2}' | median
}
rratio() { awk -v r="$(rratio_raw "$@")" 'BEGIN {printf "%.2f", r}'; }
rratio3() { awk -v r="$(rratio_raw "$@")" 'BEGIN {printf "%.3f", r}'; }
fmt() { awk -v n="$1" 'BEGIN {if (n >= 100000) printf "%.0f µs", n / 1000; else if (n >= 10000) printf "%.1f µs", n / 1000; else printf "%d ns", n}'; }

kill "$AGENT_PID" && wait "$AGENT_PID" 2>/dev/null || true
AGENT_PID=
kill "$FLOOR_PID" && wait "$FLOOR_PID" 2>/dev/null || true
FLOOR_PID=
if [ -n "$BASE_PID" ]; then
  kill "$BASE_PID" && wait "$BASE_PID" 2>/dev/null || true
  BASE_PID=
fi

row() { # NAME LABEL
  local n=$1 label=$2
  local u50 u99 h50 h99 g50 g99 f50 f99
  u50=$(p50 "$n" none); u99=$(p99 "$n" none)
  h50=$(p50 "$n" hardened); h99=$(p99 "$n" hardened)
  g50=$(p50 "$n" agent); g99=$(p99 "$n" agent)
  f50=$(p50 "$n" floor); f99=$(p99 "$n" floor)
  local r; if [ "$n" = getpid ]; then r=rratio3; else r=rratio; fi
  echo "| $label | $(fmt "$u50") / $(fmt "$u99") | $(fmt "$h50") / $(fmt "$h99") | $(fmt "$g50") / $(fmt "$g99") | **$($r "$n" agent hardened)×** | $($r "$n" agent none)× | $(fmt "$f50") / $(fmt "$f99") | $($r "$n" floor hardened)× | $(fmt $((g50 - f50))) |"
}

open_ratio=$(rratio open agent hardened)
open_ratio_u=$(rratio open agent none)
floor_ratio=$(rratio open floor hardened)
getpid_ratio=$(rratio3 getpid agent hardened)
getpid_ratio_u=$(rratio3 getpid agent none)
met() { awk -v v="$1" -v t="$2" 'BEGIN {print (v <= t) ? "met" : "**not met**"}'; }

table=$(cat <<EOF
| call (rampart-probe) | Unconfined p50 / p99 | RuntimeDefault p50 / p99 | agent p50 / p99 | agent ÷ RuntimeDefault, p50 | agent ÷ Unconfined, p50 | CONTINUE floor p50 / p99 | floor ÷ RuntimeDefault, p50 | agent − floor, p50 |
|---|---|---|---|---|---|---|---|---|
$(row open "openat + close, allowed (/etc/hostname; agent: emulated, fd injected)")
$(row open-deny "openat, denied (/etc/passwd; agent: EACCES; others: open + close)")
$(row exec "posix_spawn + execve + wait (static binary; agent: decided, CONTINUE)")
$(row connect "connect to a closed port (agent: decided, CONTINUE; ECONNREFUSED)")
$(row getpid "getpid (not notified: the filter alone)")

Targets (issue 5), against the same pod without rampart (RuntimeDefault):
notified openat p50 ≤ 4× native open+close: **${open_ratio}×**, $(met "$open_ratio" 4)
(${open_ratio_u}× against Unconfined; the bare CONTINUE floor alone is ${floor_ratio}×);
non-notified syscalls ≤ 1.02×: **${getpid_ratio}×**, $(met "$getpid_ratio" 1.02)
(${getpid_ratio_u}× against Unconfined).
EOF
)

agent_counts=$(grep -v '^handle \|^stage' "$work/agent.out" | tr '\n' ';' | sed 's/;$//; s/;/; /g')
# "handle KIND n N p50 X p99 Y": the PolicyHandler's own time per notification.
handle_p50() { awk -v s="$1" '$1 == "handle" && $2 == s {print $6}' "$work/agent.out"; }
handle_p99() { awk -v s="$1" '$1 == "handle" && $2 == s {print $8}' "$work/agent.out"; }
# "stage KIND STAGE n N p50 X mean Y": one stage inside handle.
stage_p50() { awk -v k="$1" -v s="$2" '$1 == "stage" && $2 == k && $3 == s {print $7}' "$work/agent.out"; }
h_open=$(handle_p50 openat-allowed); h_deny=$(handle_p50 openat-denied)
h_exec=$(handle_p50 execve); h_conn=$(handle_p50 connect)
o_native=$(p50 open hardened); o_floor=$(p50 open floor); o_agent=$(p50 open agent)
d_floor=$(p50 open-deny floor); d_agent=$(p50 open-deny agent)
stage_row() { # STAGE WHAT
  local a d
  a=$(stage_p50 openat-allowed "$1"); d=$(stage_p50 openat-denied "$1")
  echo "| $1 | $2 | $(fmt "${a:-0}") | $(fmt "${d:-0}") |"
}
where=$(cat <<EOF
Where the time goes (p50): native open+close $(fmt "$o_native") (RuntimeDefault); the notification
round trip (floor − native) $(fmt $((o_floor - o_native))); the PolicyHandler's own work, measured inside the
agent around \`Handler::handle\`: allowed openat $(fmt "${h_open:-0}") (p99 $(fmt "$(handle_p99 openat-allowed)")),
denied openat $(fmt "${h_deny:-0}") (p99 $(fmt "$(handle_p99 openat-denied)")). The rest of agent − floor,
allowed $(fmt $((o_agent - o_floor - ${h_open:-0}))), denied $(fmt $((d_agent - d_floor - ${h_deny:-0}))), (a difference of medians, so it can come out below zero) is outside \`handle\`: for the allowed
open the SECCOMP_IOCTL_NOTIF_ADDFD round trip (the kernel wakes the task and waits for it to
install the fd, without SYNC_WAKE_UP's same-CPU switch), closing the agent's copy, and
scheduling. execve: handle $(fmt "${h_exec:-0}"); connect: handle $(fmt "${h_conn:-0}").

Inside \`handle\`, stage by stage (p50 of each stage over the run's notifications, so the column
need not add up to the handle p50 exactly; \`seccomp-agent/src/stage_times.rs\`, on only in
bench_agent; one stage boundary costs $(awk '$1 == "stage-mark-cost" {print $2}' "$work/agent.out") ns):

| stage | what | allowed openat | denied openat |
|---|---|---|---|
$(stage_row args "copy the path out of the task (process_vm_readv), NOTIF_ID_VALID")
$(stage_row view "the container's view of the policy snapshot")
$(stage_row status "the task's credentials, umask, pids: pread of its cached /proc/<tid>/status")
$(stage_row exe "the task's executable (readlink of /proc/<tid>/exe)")
$(stage_row anchor "the task's root (open of /proc/<tid>/root)")
$(stage_row assume "take on the task's groups/fsuid/fsgid/capabilities (only what differs)")
$(stage_row lookup "openat2 O_PATH with RESOLVE_IN_ROOT, readlink of the result")
$(stage_row decide "policy decision (and the alert message when reported)")
$(stage_row open "the emulated open: reopen through /proc/self/fd with the task's flags")
$(stage_row restore "give the thread its own credentials back")
$(stage_row report "the event to the reporter (denied only)")
EOF
)
if [ -n "${BASE_AGENT:-}" ]; then
  base_row() { # NAME LABEL
    local b50 b99 g50 g99
    b50=$(p50 "$1" base); b99=$(p99 "$1" base); g50=$(p50 "$1" agent); g99=$(p99 "$1" agent)
    echo "| $2 | $(fmt "$b50") / $(fmt "$b99") | $(fmt "$g50") / $(fmt "$g99") | $(rratio "$1" agent base)× |"
  }
  where=$(cat <<EOF
$where

Before and after, in this run: the same profile served by another build of bench_agent
(\`BASE_AGENT=${BASE_AGENT_LABEL:-$BASE_AGENT}\`) next to this one:

| call | agent before p50 / p99 | agent now p50 / p99 | now ÷ before, p50 |
|---|---|---|---|
$(base_row open "openat + close, allowed")
$(base_row open-deny "openat, denied")
$(base_row exec "posix_spawn + execve + wait")
$(base_row connect "connect to a closed port")
EOF
)
fi
floor_counts=$(tr '\n' ';' < "$work/floor.out" | sed 's/;$//; s/;/; /g')
env_line="$(date -u +%Y-%m-%d), kernel $(uname -r), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average $load_before before, $load_after after; $ROUNDS rounds, medians of per-round p50/p99; N: open $N_OPEN, exec $N_EXEC, connect $N_CONNECT, getpid $N_GETPID per round. Agent: ${agent_counts:-no output}. Floor: ${floor_counts:-no output}."

echo
echo "$table"
echo
echo "$where"
echo
echo "$env_line"

if [ "$DOC" = 1 ]; then
  doc=$SRC/docs/benchmarks.md
  heading="## seccomp agent latency (bench/seccomp-latency.sh)"
  section=$(cat <<EOF
$heading

Measured with \`${CMDLINE% }\` (as root) on the local node, release build. Four busybox pods side
by side (five with \`BASE_AGENT\`: see "Before and after" below): **Unconfined** (no seccomp profile at all: the bare kernel); **RuntimeDefault**
(containerd's own default profile: the same pod without rampart, as a hardened cluster runs it,
and the baseline the targets are about); **agent**: that same RuntimeDefault filter as rampart-nri
changes it (open/openat/openat2/creat, execve/execveat and connect/sendto/sendmsg/sendmmsg notify the
agent instead of being allowed; io_uring refused), served by the agent's own code (listener +
PolicyHandler, \`seccomp-agent/examples/bench_agent.rs\`) under the seed policy's rules
(\`bench/seccomp-latency-policy.yaml\`); and **floor**: the agent's profile served by
\`bench/continue-supervisor.c\`, which answers every notification with CONTINUE (the notification
round trip and nothing else). Both supervisors set SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP and wait in
poll() then RECV. Every call is timed inside the pod by \`rampart-probe\` with
clock_gettime(CLOCK_MONOTONIC). Each round measures every pod back to back; p50 and p99 columns are
the medians of the rounds' values, and every ratio is the median of the rounds' ratios (a round
in which the whole VM runs slower moves both sides alike). The machine is shared (2 vCPUs, other
builds and tenants; see the load average below): compare columns within one run, not across runs.

getpid is not notified. Against RuntimeDefault it shows what rampart adds to a syscall it does not
decide (the target's meaning: "unchanged vs the same pod without rampart"); against Unconfined it
shows what having any seccomp filter costs (the syscall's slow entry path), which RuntimeDefault pays
as well.

$table

$where

$env_line
EOF
)
  printf '%s\n' "$section" | "$SRC/bench/doc-section" "$doc" last
  log "wrote the table to $doc"
fi
