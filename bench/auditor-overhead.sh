#!/usr/bin/env bash
# What rampart's kernel auditor costs, next to auditd and bpftrace watching the same workload.
# One run on the local node (scripts/node up); `make bench` runs it after
# bench/native-speed.sh. Three loops timed call by call inside busybox pods
# (rampart.local/busybox:latest, `sleep` as the entrypoint) by the image's rampart-probe
# (images/tools/rampart-probe.c) through `rampart-kubelet exec`:
#   open     open + close of /bin/busybox (in the image), again and again
#   exec     posix_spawn + execve + wait of `rampart-probe nop`
#   connect  TCP connect to 127.0.0.1:9, closed (ECONNREFUSED)
# in six arms, every one as a ratio to the native arm of the same round:
#   native     rampart's daemons DOWN, no audit rule, no bpftrace: pod `auditor-unwatched`
#              (container `auditor-unwatched`, which no policy selects)
#   unwatched  rampart up (scripts/rampart, the policies below loaded), the same pod: rampart's
#              node-wide parts (the sensor's tracepoints run for every fork, exec and exit on the
#              node) but nothing of the pod's own
#   watched    rampart up, pod `auditor-watched`, container `auditor-watched`, which
#              bench/auditor-watch-policy.yaml selects (mode audit, one never-matching ingress
#              alert rule): the kernel auditor watches its cgroup (the process sensor's fork, exec
#              and exit, the flow sensor's TCP states and its cgroup sock_addr programs for UDP;
#              and the ingress guard's cgroup_skb program, for the alert rule, on what arrives for
#              its sockets) and no seccomp notification decides anything: its plan notifies
#              nothing, so rampart-nri injects no filter at all (checked: Seccomp 0, no
#              "protected" line in rampart-nri's log). The arm the targets are about: what the
#              kernel auditor costs a pod it watches
#   protected  rampart up, pod `auditor-protected`, container `loops`, which bench/loops-policy.yaml
#              selects (the policy of native-speed.sh's enforce arm: file, egress and process
#              rules, enforce mode; its rules never match what the loops do): rampart's full
#              protection, reported next to the others with no target. The file guard decides its
#              opens and execs, its connects are notified to rampart-seccomp (a seccomp round trip
#              per connect) and checked again by the egress backstop (cgroup connect4); the
#              sensors watch it too. Its ratios are rampart's enforcement, not the auditor's cost
#   auditd     rampart down; Debian's auditd (its auditd.conf, its rules.d buffer settings: -b 8192,
#              --backlog_wait_time 60000, -f 1) with syscall rules for the sensors' events:
#              clone/clone3/fork/vfork/exit_group and execve/execveat (the process sensor's fork,
#              exec and exit), connect (the flow sensor's TCP connections), and open/openat/
#              openat2/creat (what the protected arm's file rules decide; the watched arm has no
#              sensor on opens). System-wide: this auditctl has no cgroup or container field
#              (nothing in the kernel's audit filters names a cgroup)
#   bpftrace   rampart down; bpftrace on the sensors' tracepoints (sched:sched_process_fork/exec/exit,
#              sock:inet_sock_set_state) and syscalls:sys_enter_openat/sys_enter_connect, filtered
#              in the kernel by the pod's cgroup (as rampart's sensors are), one printf line per
#              event into a file
# The native baseline is the daemons-down one, not "rampart up with no policy": the unwatched
# target is about what rampart's node-wide hooks cost a pod it does not protect, and those are
# loaded whenever the agent runs, policy or not; auditd and bpftrace run with rampart down too.
#
# A round runs every arm once, each arm the three loops (in the round's random order): the
# rampart-up arms back to back (watched and protected in random order) and the rampart-down arms
# back to back, native always next to unwatched (rounds alternate up-then-down and down-then-up,
# so rampart goes up or down once per round), auditd and bpftrace in random order. The watched
# and protected pods are created at each `rampart up` (the protected pod's filter dies with the
# agent's holder at `down`; the watched pod is re-created too, so each up phase checks a fresh
# binding) and warmed up; the unwatched pod lives through the run.
#
# Recorded for "zero drops": the watched arm's kernel sensors' written/dropped counts
# (`rampartctl status -o json`, .sensors, before and after its loops) and the pod's own
# sensorDropped, auditd's lost and backlog-wait counters (`auditctl -s`) and records logged,
# bpftrace's lines and its "Lost N events". The targets (unwatched ≤ 1.02× native on every loop;
# watched below auditd and bpftrace on every loop; zero drops for the watched arm's sensors) are
# printed next to the ratios, met or not; none fails the run. The protected arm has no target.
#
#   bench/auditor-overhead.sh [--rounds N] [--doc]                                   (root, node up)
#     --doc    also write the tables into docs/benchmarks.md, section
#              "## Kernel auditor overhead (make bench)" (replaced if present)
#   RAMPART_BIN   where rampart's binaries are (default target/release; `make bench` builds them)
#   N_OPEN N_EXEC N_CONNECT   calls per loop, arm and round (defaults below)
#
# Installs auditd and bpftrace with apt-get if missing, mounts tracefs if it is not (bpftrace needs
# it) and unmounts it at the end. Leaves rampart's daemons down, the node up. Of the kernel's
# audit state it restores what it found (enabled, failure, backlog limit and wait), with one
# exception: once audit has been enabled the kernel gives every new process an audit context
# until reboot (slower syscalls, rules or not), so between and after its auditd arms the bench
# keeps the task rule `-a never,task` loaded, which keeps new processes out of audit as before.
# And one it can't undo: the kernel also sends every audit record to the audit multicast group,
# which the node's journald reads; the auditd arm's flood overflows that socket, and journald
# (systemd 252) then stops reading it for good, so no audit record reaches the journal until
# journald restarts (scripts/node down, up). rampart's own records go through journald's native
# socket and are not affected; the bench reports the listener's drops.
# `A && B || die` is meant here: die when any of the checks fails.
# shellcheck disable=SC2015
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
NODE_DIR=${RAMPART_NODE_DIR:-/var/lib/rampart-node}
export RAMPART_NODE_DIR=$NODE_DIR
export RAMPART_CRI_SOCKET=${RAMPART_CRI_SOCKET:-$NODE_DIR/containerd.sock}
WATCHED_POLICY=$SRC/bench/auditor-watch-policy.yaml
PROTECTED_POLICY=$SRC/bench/loops-policy.yaml
IMAGE=rampart.local/busybox:latest
NS=rampart-bench-auditor
POD_U=auditor-unwatched CNAME_U=auditor-unwatched
POD_W=auditor-watched CNAME_W=auditor-watched
POD_P=auditor-protected CNAME_P=loops
ROUNDS=3
DOC=0
ARGS="$*"
ENV_ARGS=
for v in N_OPEN N_EXEC N_CONNECT; do [ -z "${!v:-}" ] || ENV_ARGS="$ENV_ARGS$v=${!v} "; done
N_OPEN=${N_OPEN:-20000}
N_EXEC=${N_EXEC:-2000}
N_CONNECT=${N_CONNECT:-5000}
OPEN_FILE=/bin/busybox
PROBE=/usr/local/bin/rampart-probe
LOOPS="open exec connect"
AUDIT_KEY=rampart-bench
# The sensor's counts reach rampartd with the agent's reports and alone every 5 s: a count read
# this long after the last event in a pod they watch (watched, protected) includes it.
SENSOR_SETTLE=6

usage() { echo "usage: bench/auditor-overhead.sh [--rounds N] [--doc]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --doc) DOC=1 ;;
    --rounds) ROUNDS=${2:-}; shift ;;
    -h|--help) usage ;;
    *) echo "auditor-bench: unknown argument $1" >&2; usage ;;
  esac
  shift
done
for n in "$ROUNDS" "$N_OPEN" "$N_EXEC" "$N_CONNECT"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "auditor-bench: '$n' is not a positive number" >&2; usage; }
done

log() { echo "auditor-bench: $*" >&2; }
die() { echo "auditor-bench: $*" >&2; exit 1; }

RAMPART_BIN=${RAMPART_BIN:-$SRC/target/release}
[ -d "$RAMPART_BIN" ] || die "RAMPART_BIN=$RAMPART_BIN does not exist; run 'make bench' (it builds target/release)"
RAMPART_BIN=$(cd "$RAMPART_BIN" && pwd)
export RAMPART_BIN
K=$RAMPART_BIN/rampart-kubelet
CTL=$RAMPART_BIN/rampartctl

[ "$(id -u)" -eq 0 ] || die "must run as root (it starts rampart's daemons, auditd and bpftrace)"
[ -S "$RAMPART_CRI_SOCKET" ] && [ -f "$NODE_DIR/containerd.pid" ] && kill -0 "$(cat "$NODE_DIR/containerd.pid")" 2>/dev/null \
  || die "the node is not up ($RAMPART_CRI_SOCKET missing or containerd not running); run 'make node-up'"
for t in jq python3 findmnt shuf; do command -v "$t" >/dev/null || die "$t not found; run 'make setup'"; done
for b in rampartd rampartctl rampart-seccomp rampart-holder rampart-nri rampart-kubelet; do
  [ -x "$RAMPART_BIN/$b" ] || die "$RAMPART_BIN/$b is not built; run 'make bench' (cargo build --release of the workspace binaries)"
done
grep -q "^  selector: {containerNames: \\[$CNAME_W\\]}\$" "$WATCHED_POLICY" \
  || die "$WATCHED_POLICY no longer selects containerNames [$CNAME_W]; update bench/auditor-overhead.sh"
grep -q "^  selector: {containerNames: \\[$CNAME_P\\]}\$" "$PROTECTED_POLICY" \
  || die "$PROTECTED_POLICY no longer selects containerNames [$CNAME_P]; update bench/auditor-overhead.sh"
CG2=$(findmnt -t cgroup2 -n -o TARGET | head -1)
[ -n "$CG2" ] || die "no cgroup v2 hierarchy mounted: rampart's sensor and the bpftrace arm's filter need one"

work=$(mktemp -d /tmp/rampart-auditor-bench.XXXXXX)
POLICIES=$work/policies.d
mkdir -p "$POLICIES"
cp "$WATCHED_POLICY" "$POLICIES/40-auditor-watch.yaml"
cp "$PROTECTED_POLICY" "$POLICIES/40-loops.yaml"
"$CTL" policy lint "$POLICIES" >&2 || die "the bench's policies do not lint"

# --- state, and what cleanup undoes.
UP=0                 # rampart's daemons are up (ours)
started_pods=()
UP_PODS=0            # the watched and protected pods exist
AUDITD_PID=          # the auditd we started
AUDIT_TOUCHED=0      # we changed the kernel's audit settings or rules
AUDIT_ORIG=          # "enabled failure backlog_limit backlog_wait_time" as found
BT_PID=              # the bpftrace we started
TRACEFS_MOUNTED=     # the tracefs we mounted

# Multicast listeners of the audit netlink family (journald on this node): "PID RMEM DROPS" each.
audit_listeners() { awk '$2 == 9 && $4 != "00000000" { print $3, $5, $9 }' /proc/net/netlink; }
audit_listener_drops() { audit_listeners | awk '{ s += $3 } END { print s + 0 }'; }
audit_status() { auditctl -s 2>/dev/null | awk -v k="$1" '$1 == k { print $2; exit }'; }
audit_restore() {
  local e f b w
  read -r e f b w <<<"$AUDIT_ORIG"
  auditctl -D >/dev/null 2>&1
  # Audit was enabled at least once now: keep new processes out of it (see the header).
  auditctl -a never,task >/dev/null 2>&1
  auditctl -f "$f" -b "$b" --backlog_wait_time "$w" >/dev/null 2>&1
  auditctl -e "$e" >/dev/null 2>&1
}
stop_auditd() {
  [ -n "$AUDITD_PID" ] || return 0
  kill -TERM "$AUDITD_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$AUDITD_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$AUDITD_PID" 2>/dev/null || true
  wait "$AUDITD_PID" 2>/dev/null || true
  AUDITD_PID=
}
stop_bpftrace() {
  [ -n "$BT_PID" ] || return 0
  # SIGTERM, not SIGINT: a background job of a script ignores SIGINT. bpftrace flushes either way.
  kill -TERM "$BT_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$BT_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$BT_PID" 2>/dev/null || true
  wait "$BT_PID" 2>/dev/null || true
  BT_PID=
}
cleanup() {
  local rc=$? p
  set +e
  stop_bpftrace
  if [ "$AUDIT_TOUCHED" = 1 ]; then
    auditctl -D >/dev/null 2>&1 # the rules first: nothing more to log
    stop_auditd
    audit_restore
  fi
  for p in "${started_pods[@]}"; do
    timeout 60 "$K" rm "$p" -n "$NS" >/dev/null 2>&1 || log "warning: could not remove pod $NS/$p"
  done
  "$SRC/scripts/rampart" down >/dev/null || log "warning: scripts/rampart down failed"
  [ -z "$TRACEFS_MOUNTED" ] || umount "$TRACEFS_MOUNTED" || log "warning: could not unmount $TRACEFS_MOUNTED"
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- what each comparison arm needs: installed here if missing; an arm that can't run is
# reported as unavailable with the reason, never faked.
declare -A WHY
apt_install() { # PACKAGE...: Debian's, without recommends; services don't start here (policy-rc.d)
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >"$work/apt.log" 2>&1 && return 0
  apt-get update -q >>"$work/apt.log" 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$work/apt.log" 2>&1
}

# auditd: the kernel's audit must answer, and nobody else's audit daemon or rules may be there
# (the bench deletes all rules when it is done).
if ! apt_install auditd; then
  WHY[auditd]="apt-get install auditd failed: $(grep -E '^E:' "$work/apt.log" | tail -1)"
elif ! out=$(auditctl -s 2>&1); then
  WHY[auditd]="the kernel's audit does not answer (auditctl -s: $(head -1 <<<"$out")): no audit support here"
elif [ "$(audit_status pid)" != 0 ]; then
  WHY[auditd]="an audit daemon already runs (pid $(audit_status pid)); the bench leaves its rules alone"
elif rules=$(auditctl -l 2>&1) && [ "$rules" != "No rules" ] && [ "$rules" != "-a never,task" ]; then
  WHY[auditd]="audit rules are already loaded (auditctl -l: $(head -1 <<<"$rules")…); the bench would delete them"
else
  AUDIT_ORIG="$(audit_status enabled) $(audit_status failure) $(audit_status backlog_limit) $(audit_status backlog_wait_time)"
  [ "$(audit_status enabled)" != 2 ] || WHY[auditd]="audit is locked (enabled 2): rules cannot change until reboot"
  [ -f /etc/audit/auditd.conf ] || WHY[auditd]="/etc/audit/auditd.conf is missing (Debian's auditd package ships it)"
fi
AUDITD_VERSION=$(dpkg-query -W -f='${Version}' auditd 2>/dev/null || echo unknown)
# bpftrace: tracefs for the tracepoints' formats (mounted here if not), and the events there.
if ! apt_install bpftrace; then
  WHY[bpftrace]="apt-get install bpftrace failed: $(grep -E '^E:' "$work/apt.log" | tail -1)"
else
  TRACEFS=$(findmnt -t tracefs -n -o TARGET | head -1)
  if [ -z "$TRACEFS" ]; then
    if mount -t tracefs tracefs /sys/kernel/tracing 2>"$work/mount.err"; then
      TRACEFS=/sys/kernel/tracing TRACEFS_MOUNTED=/sys/kernel/tracing
      log "mounted tracefs on /sys/kernel/tracing (bpftrace reads the tracepoints' formats there); unmounted at the end"
    else
      WHY[bpftrace]="tracefs is not mounted and could not be ($(head -1 "$work/mount.err")): bpftrace's tracepoints need it"
    fi
  fi
  if [ -z "${WHY[bpftrace]:-}" ]; then
    for e in sched/sched_process_fork sched/sched_process_exec sched/sched_process_exit syscalls/sys_enter_openat syscalls/sys_enter_connect; do
      [ -d "$TRACEFS/events/$e" ] || { WHY[bpftrace]="the kernel has no tracepoint $e ($TRACEFS/events/$e)"; break; }
    done
  fi
fi
BPFTRACE_VERSION=$(bpftrace --version 2>/dev/null | awk '{print $2}' || echo unknown)
ARMS="native unwatched watched protected"
for a in auditd bpftrace; do
  if [ -n "${WHY[$a]:-}" ]; then log "arm $a unavailable: ${WHY[$a]}"; else ARMS="$ARMS $a"; fi
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')

# --- pods and rampart's daemons.
# jq: the notified syscalls of a bundle's config.json (NAME(writes): notified only when the flags write).
# shellcheck disable=SC2016
jq_notify='[.linux.seccomp.syscalls[]? | select(.action == "SCMP_ACT_NOTIFY") | .names[] as $n | {n: $n, c: ((.args // []) | length > 0)}] | group_by(.n) | map(if all(.c) then "\(.[0].n)(writes)" else .[0].n end) | join(",")'
declare -A PID CID
start_pod() { # POD CONTAINER
  local out
  timeout 60 "$K" rm "$1" -n "$NS" >/dev/null 2>&1 || true # a pod left by an interrupted run
  started_pods+=("$1")
  out=$("$K" run "$1" -n "$NS" -c "$2" --image "$IMAGE" -o json -- sleep 1000000) || die "pod $NS/$1 did not start"
  CID[$1]=$(jq -r .containerId <<<"$out")
  PID[$1]=$("$K" inspect "$1" -n "$NS" | jq -r .info.pid)
  [[ ${PID[$1]} =~ ^[0-9]+$ ]] && [ "${PID[$1]}" != 0 ] || die "no pid for pod $1's container"
}
remove_pod() { # POD
  timeout 60 "$K" rm "$1" -n "$NS" >/dev/null 2>&1 || log "warning: could not remove pod $NS/$1"
  local p keep=()
  for p in "${started_pods[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  started_pods=("${keep[@]}")
}
seccomp_mode() { awk '/^Seccomp:/ {print $2}' "/proc/$1/status"; }
notified() { # POD
  local cfg=$NODE_DIR/state/io.containerd.runtime.v2.task/k8s.io/${CID[$1]}/config.json
  [ -f "$cfg" ] || die "pod $1: no bundle config at $cfg"
  jq -r "$jq_notify" "$cfg"
}
status_json() { "$CTL" status -o json 2>/dev/null; }
workload_policies() { # STATUS-JSON POD
  jq -r --arg ns "$NS" --arg pod "$2" '[.workloads[]? | select(.namespace == $ns and .pod == $pod)] | if length == 0 then "absent" else (.[0].policies | join(",")) end' <<<"$1"
}
sensor_counts() { # -> the kernel sensors' counts, one JSON word: [{name, written, dropped}], and the watched pod's own
  local st
  st=$(status_json) || { printf '[]\n{}\n'; return; }
  jq -c '[.sensors[]? | {name, written, dropped}]' <<<"$st"
  jq -c --arg ns "$NS" --arg pod "$POD_W" '[.workloads[]? | select(.namespace == $ns and .pod == $pod) | {sensorDropped, flows}] | .[0] // {}' <<<"$st"
}
W_LAST=0 # when a pod the sensors watch (watched, protected) last ran something: their counts settle SENSOR_SETTLE s later
settled_sensor_counts() {
  local wait=$((W_LAST + SENSOR_SETTLE - $(date +%s)))
  [ "$wait" -le 0 ] || sleep "$wait"
  sensor_counts
}
workload_entry() { # STATUS-JSON POD -> rampartd's workload entry for the pod's container (JSON), or nothing
  jq -c --arg ns "$NS" --arg pod "$2" '[.workloads[]? | select(.namespace == $ns and .pod == $pod)] | .[0] // empty' <<<"$1"
}
# rampart-nri's word on a pod's container, from its log (journald, else its log file): "protected
# [NOTIFY...]" when it injected a filter (its "protected" line, logged at CreateContainer, with the
# plan's notified syscalls), "none" when it bound the container (the "bound" line, StartContainer,
# after CreateContainer) with no "protected" line: a plan that protects nothing injects nothing.
nri_plan() { # POD
  local cid=${CID[$1]} recs
  for _ in $(seq 50); do
    recs=$({ journalctl -q --no-pager -t rampart-nri RAMPART_LOG_CONTAINER_ID="$cid" -o json 2>/dev/null || true; } \
      | jq -r 'select(.MESSAGE == "protected" or .MESSAGE == "bound") | "\(.MESSAGE) \(.RAMPART_LOG_NOTIFY // "")"' 2>/dev/null || true)
    [ -n "$recs" ] || recs=$(grep -F "$cid" "$NODE_DIR/rampart/rampart-nri.log" 2>/dev/null \
      | sed -nE -e 's/.*[[:space:]]protected[[:space:]].*notify=(\[[^]]*\]).*/protected \1/p' -e 's/.*[[:space:]]bound([[:space:]].*)?$/bound /p' || true)
    if grep -q '^protected ' <<<"$recs"; then grep -m1 '^protected ' <<<"$recs"; return; fi
    if grep -q '^bound' <<<"$recs"; then echo none; return; fi
    sleep 0.1
  done
  die "pod $1: rampart-nri logged neither \"protected\" nor \"bound\" for its container $cid (journalctl -t rampart-nri, $NODE_DIR/rampart/rampart-nri.log)"
}

U_CHECK='' W_CHECK='' P_CHECK='' PROTECTED_NOTIFY='' RAMPART_MECH=''
check_unwatched() {
  local m=${PID[$POD_U]} st pol out wl flows=
  [ "$(seccomp_mode "$m")" = 0 ] || die "pod $POD_U runs under a seccomp filter (Seccomp: $(seccomp_mode "$m")): a policy scopes it"
  [ -z "$(notified "$POD_U")" ] || die "pod $POD_U has notified syscalls: $(notified "$POD_U")"
  st=$(status_json) || die "rampartctl status failed"
  pol=$(workload_policies "$st" "$POD_U")
  [ "$pol" = "" ] || [ "$pol" = absent ] || die "rampartd says policies $pol select pod $POD_U"
  wl=$(workload_entry "$st" "$POD_U")
  [ -z "$wl" ] || flows=$(jq -r '.flows != null' <<<"$wl")
  [ "$flows" != true ] || die "rampartd's flow sensor watches pod $POD_U, which no policy selects"
  out=$("$K" exec "$POD_U" -n "$NS" -- "$PROBE" open /etc/passwd 2>&1) || die "pod $POD_U: open of /etc/passwd failed ($out); it should be unprotected"
  U_CHECK="Seccomp 0, no notified syscalls, rampartd: ${pol:-no policy}${pol:+ (not bound)}, not watched by its sensors (no flows); open /etc/passwd: read"
}
# The watched pod: selected (so rampartd's process and flow sensors watch its cgroup) and nothing
# notified: no seccomp filter at all, as rampart-nri injects none for a plan that notifies nothing.
check_watched() {
  local m=${PID[$POD_W]} st pol out wl nri cfg_notify watching ingress s
  [ "$(seccomp_mode "$m")" = 0 ] || die "pod $POD_W runs under a seccomp filter (Seccomp: $(seccomp_mode "$m")): its plan should notify nothing, and a plan that notifies nothing gets no filter"
  cfg_notify=$(notified "$POD_W")
  [ -z "$cfg_notify" ] || die "pod $POD_W has notified syscalls in its bundle config.json: $cfg_notify"
  nri=$(nri_plan "$POD_W")
  [ "$nri" = none ] || [ "$nri" = "protected []" ] || die "pod $POD_W: rampart-nri planned notifications for it: $nri"
  st=$(status_json) || die "rampartctl status failed"
  pol=$(workload_policies "$st" "$POD_W")
  [ "$pol" = BenchAuditorWatch ] || die "rampartd says pod $POD_W is selected by '$pol', expected BenchAuditorWatch"
  wl=$(workload_entry "$st" "$POD_W")
  [ "$(jq -r '.flows != null' <<<"$wl")" = true ] || die "rampartd's flow sensor does not watch pod $POD_W (its workload entry has no flows: $wl)"
  # The agents' mechanisms and rampartd's own (the sensors moved between them as the auditor grew).
  RAMPART_MECH=$(jq -r '[(.agents[]?.mechanisms[]?), (.mechanisms[]?) | select(.inUse) | .name] | unique | join(",")' <<<"$st")
  for s in tracepoint-process tracepoint-tcp; do
    [[ ,$RAMPART_MECH, == *,$s,* ]] || die "rampartd's $s sensor is not in use (mechanisms in use: $RAMPART_MECH): the watched arm would not be watched by it"
  done
  # "containers watched: N" in the sensors' details, where they say it: the watched and protected pods.
  watching=$(jq -r '[.mechanisms[]? | select(.name == "tracepoint-process" or .name == "tracepoint-tcp") | "\(.name) \(.detail | capture("containers watched: (?<n>[0-9]+)").n // "?")"] | join(", ")' <<<"$st" 2>/dev/null || true)
  if [[ $watching =~ (^|, )[a-z-]+\ [01]($|,) ]]; then die "a sensor watches fewer containers than the bench's two selected pods: $watching"; fi
  out=$("$K" exec "$POD_W" -n "$NS" -- "$PROBE" open /etc/passwd 2>&1) || die "pod $POD_W: open of /etc/passwd failed ($out); nothing should decide its opens"
  # The alert rule's ingress guard on its cgroup (rampartd logs it; reported, not required).
  ingress=$({ journalctl -q --no-pager -t rampartd RAMPART_LOG_CONTAINER_ID="${CID[$POD_W]}" -o json 2>/dev/null || true; } \
    | jq -r 'select(.MESSAGE == "ingress rules enforced") | "\(.RAMPART_LOG_CELLS) cells"' 2>/dev/null | tail -1 || true)
  if [ -n "$ingress" ]; then ingress="on its cgroup (rampartd: \"ingress rules enforced\", $ingress)"; else ingress="not reported by rampartd"; fi
  W_CHECK="Seccomp 0 (no filter), no notified syscalls in its bundle config.json, rampart-nri: $([ "$nri" = none ] && echo 'no "protected" line (bound, nothing injected: its plan notifies nothing)' || echo "notify=[]"); rampartd: $pol, flows $(jq -c .flows <<<"$wl"); containers its sensors watch (this pod and the protected one): ${watching:-?}; the ingress guard: $ingress; open /etc/passwd: read"
}
# The protected pod: rampart's full protection (bench/loops-policy.yaml).
check_protected() {
  local m=${PID[$POD_P]} st pol out nri
  [ "$(seccomp_mode "$m")" = 2 ] || die "pod $POD_P has no seccomp filter (Seccomp: $(seccomp_mode "$m")): rampart did not protect it"
  PROTECTED_NOTIFY=$(notified "$POD_P")
  [[ ,$PROTECTED_NOTIFY, == *,connect,* ]] || die "pod $POD_P: connect is not notified ($PROTECTED_NOTIFY); its egress rule should have it decided by rampart-seccomp"
  nri=$(nri_plan "$POD_P")
  [[ $nri == protected\ \[*\"connect\"* ]] || die "pod $POD_P: rampart-nri's log has no \"protected\" line notifying connect: $nri"
  st=$(status_json) || die "rampartctl status failed"
  pol=$(workload_policies "$st" "$POD_P")
  [ "$pol" = BenchLatencyLoops ] || die "rampartd says pod $POD_P is selected by '$pol', expected BenchLatencyLoops"
  ! out=$("$K" exec "$POD_P" -n "$NS" -- "$PROBE" open /etc/passwd 2>&1) || die "pod $POD_P: open of /etc/passwd was not blocked; the policy does not decide its opens"
  P_CHECK="Seccomp 2, rampart-nri: protected, rampartd: $pol; open /etc/passwd: ${out#err }"
}

# The pods rampart watches, created with rampart up (the protected pod's filter lives only as long
# as the agent's holder) and checked.
start_rampart_pods() {
  start_pod "$POD_W" "$CNAME_W"
  start_pod "$POD_P" "$CNAME_P"
  UP_PODS=1
  check_watched
  check_protected
}
# Rampart up: the daemons with this bench's policy directory, then the watched and protected pods
# and a warm-up pass in each.
go_up() {
  [ "$UP" = 0 ] || return 0
  RAMPART_POLICY_DIR=$POLICIES "$SRC/scripts/rampart" up >/dev/null
  UP=1
  start_rampart_pods
  warm_up watched
  warm_up protected
  log "rampart up; pod $POD_W (pid ${PID[$POD_W]}): nothing notified; pod $POD_P (pid ${PID[$POD_P]}): $PROTECTED_NOTIFY notified"
}
go_down() {
  [ "$UP" = 1 ] || return 0
  [ "$UP_PODS" = 0 ] || { remove_pod "$POD_W"; remove_pod "$POD_P"; UP_PODS=0; }
  "$SRC/scripts/rampart" down >/dev/null
  UP=0
  log "rampart down"
}

# --- the loops.
run_loop() { # LOOP ARM ROUND|warmup
  local loop=$1 arm=$2 r=$3 p=$POD_U n args out err=$work/probe.err name nl got _x p50 p99 mean
  case $arm in watched) p=$POD_W ;; protected) p=$POD_P ;; esac
  case $loop in
    open) n=$N_OPEN; args=(bench-open "$OPEN_FILE") ;;
    exec) n=$N_EXEC; args=(bench-exec) ;;
    connect) n=$N_CONNECT; args=(bench-connect 127.0.0.1 9) ;;
  esac
  [ "$r" != warmup ] || n=$(((n + 3) / 4))
  out=$("$K" exec "$p" -n "$NS" --timeout 600 -- "$PROBE" "${args[@]}" "$n" 2>"$err") \
    || die "round $r, arm $arm, loop $loop: rampart-probe ${args[*]} $n failed: $out $(tail -3 "$err")"
  [ "$p" = "$POD_U" ] || W_LAST=$(date +%s)
  # "bench-open n N p50 X p99 Y mean Z"
  read -r name nl got _x p50 _x p99 _x mean <<<"$out" || true
  [ "$name" = "${args[0]}" ] && [ "$nl" = n ] && [ "$got" = "$n" ] && [[ $p50 =~ ^[0-9]+$ && $p99 =~ ^[0-9]+$ ]] \
    || die "round $r, arm $arm, loop $loop: unexpected output from rampart-probe: $out"
  [ "$r" = warmup ] || echo "$loop $arm $r $p50 $p99 $mean $n" >> "$work/loops"
}
warm_up() { local l; for l in $LOOPS; do run_loop "$l" "$1" warmup; done; }
ROUND_LOOPS=$LOOPS
loops_of() { local l; for l in $ROUND_LOOPS; do run_loop "$l" "$1" "$2"; done; }

# auditd: a fresh daemon per arm, Debian's auditd.conf but its log in this run's directory, the
# buffer settings of Debian's rules.d/audit.rules, and the rules; removed (and `never,task`
# back) right after the loops.
AUDIT_RULES=(
  "-a always,exit -F arch=b64 -S open,openat,openat2,creat -k $AUDIT_KEY-file"
  "-a always,exit -F arch=b64 -S execve,execveat -k $AUDIT_KEY-exec"
  "-a always,exit -F arch=b64 -S clone,clone3,fork,vfork,exit_group -k $AUDIT_KEY-process"
  "-a always,exit -F arch=b64 -S connect -k $AUDIT_KEY-net"
)
HZ=$( (zcat /proc/config.gz 2>/dev/null || cat "/boot/config-$(uname -r)" 2>/dev/null) | awk -F= '$1 == "CONFIG_HZ" { print $2 }')
audit_arm() { # ROUND
  local r=$1 dir=$work/audit/$1 rule lost0 lost1 wait0 wait1 recs ours mdrop0 mdrop1 listeners
  mkdir -p "$dir"
  sed -e "s|^log_file = .*|log_file = $dir/audit.log|" /etc/audit/auditd.conf > "$dir/auditd.conf"
  chmod 0640 "$dir/auditd.conf"
  AUDIT_TOUCHED=1
  auditctl -D >/dev/null # the never,task rule, if there: new processes must be audited now
  auditd -n -c "$dir" >"$dir/auditd.out" 2>&1 &
  AUDITD_PID=$!
  for _ in $(seq 100); do [ "$(audit_status pid)" = "$AUDITD_PID" ] && break; kill -0 "$AUDITD_PID" 2>/dev/null || break; sleep 0.1; done
  [ "$(audit_status pid)" = "$AUDITD_PID" ] || die "auditd did not register with the kernel (auditctl -s pid: $(audit_status pid)); $(tail -3 "$dir/auditd.out")"
  auditctl -b 8192 --backlog_wait_time 60000 -f 1 >/dev/null
  for rule in "${AUDIT_RULES[@]}"; do
    # shellcheck disable=SC2086 # the rule is words
    auditctl $rule >/dev/null || die "auditctl $rule failed"
  done
  [ "$(auditctl -l | grep -c "key=$AUDIT_KEY-")" = ${#AUDIT_RULES[@]} ] || die "the audit rules did not load: $(auditctl -l)"
  [ "$(audit_status enabled)" = 1 ] || die "audit is not enabled after auditd started (auditctl -s: enabled $(audit_status enabled))"
  lost0=$(audit_status lost) wait0=$(audit_status backlog_wait_time_actual)
  mdrop0=$(audit_listener_drops)
  loops_of auditd "$r"
  lost1=$(audit_status lost) wait1=$(audit_status backlog_wait_time_actual)
  mdrop1=$(audit_listener_drops)
  listeners=$(audit_listeners | while read -r pid _ _; do printf '%s,' "$(cat "/proc/$pid/comm" 2>/dev/null || echo "pid $pid")"; done)
  auditctl -D >/dev/null
  auditctl -a never,task >/dev/null
  stop_auditd
  auditctl -e 0 >/dev/null
  recs=$(cat "$dir"/audit.log* 2>/dev/null | grep -c "^type=SYSCALL .*key=\"$AUDIT_KEY-" || true)
  ours=$(cat "$dir"/audit.log* 2>/dev/null | grep "^type=SYSCALL .*key=\"$AUDIT_KEY-" | grep -c ' comm="rampart-probe"' || true)
  echo "$r $ours $recs $((lost1 - lost0)) $((wait1 - wait0)) $(du -sk "$dir" | cut -f1) $((mdrop1 - mdrop0)) ${listeners%,}" >> "$work/audit-counts"
  rm -f "$dir"/audit.log*
  log "round $r: auditd: $ours events of the loops' processes, $recs in all (system-wide), lost $((lost1 - lost0)), backlog wait $((wait1 - wait0)) jiffies"
}

# bpftrace: the sensor's three tracepoints and the syscall tracepoints for open and connect,
# each filtered by the unwatched pod's cgroup, one line per event to a file.
bpftrace_arm() { # ROUND
  local r=$1 out=$work/bpftrace.$1.out err=$work/bpftrace.$1.err lines ours lost seen=0
  BT_PID=
  bpftrace -o "$out" "$work/auditor.bt" >"$err" 2>&1 &
  BT_PID=$!
  for _ in $(seq 600); do grep -q '^Attaching' "$out" 2>/dev/null && break; kill -0 "$BT_PID" 2>/dev/null || break; sleep 0.1; done
  grep -q '^Attaching' "$out" 2>/dev/null || die "bpftrace did not start: $(grep -v RLIMIT_MEMLOCK "$err" | tail -3)"
  # Attached and filtering on the pod's cgroup: a nop run in the pod shows up.
  for _ in $(seq 20); do
    "$K" exec "$POD_U" -n "$NS" -- "$PROBE" nop >/dev/null 2>&1 || true
    grep -q "^exec [0-9]* $PROBE\$" "$out" && { seen=1; break; }
    sleep 0.2
  done
  [ "$seen" = 1 ] || die "bpftrace runs but saw no exec of $PROBE in pod $POD_U's cgroup: $(grep -v RLIMIT_MEMLOCK "$err" | tail -3)"
  lines=$(wc -l < "$out")
  loops_of bpftrace "$r"
  stop_bpftrace
  # The loops' processes: comm rampart-probe (exec: the file it runs), after the check's lines.
  ours=$(tail -n +$((lines + 1)) "$out" | awk -v probe="$PROBE" '
    ($1 == "fork" && $4 == "rampart-probe") || ($1 == "exec" && $3 == probe) || ($1 == "exit" && $3 == "rampart-probe") ||
    (($1 == "open" || $1 == "connect" || $1 == "tcp") && $3 == "rampart-probe") { n++ } END { print n + 0 }')
  lost=$(awk '/^Lost [0-9]+ events/ { s += $2 } END { print s + 0 }' "$out" "$err")
  echo "$r $ours $(($(wc -l < "$out") - lines)) $lost $(du -sk "$out" | cut -f1)" >> "$work/bpftrace-counts"
  log "round $r: bpftrace: $(($(wc -l < "$out") - lines)) lines, lost $lost"
  rm -f "$out"
}

watched_arm() { # ROUND
  local r=$1 b a
  b=$(settled_sensor_counts)
  b=${b%%$'\n'*} # the sensors; the pod's own counts are read after
  loops_of watched "$r"
  a=$(settled_sensor_counts | tr '\n' ' ')
  echo "$r $b $a" >> "$work/sensor-counts"
  log "round $r: watched: sensors before $b, after $a"
}

run_arm() { # ARM ROUND
  case $1 in
    native) [ "$UP" = 0 ] || die "native arm with rampart up"; loops_of native "$2" ;;
    unwatched) [ "$UP" = 1 ] || die "unwatched arm with rampart down"; loops_of unwatched "$2" ;;
    watched) [ "$UP" = 1 ] || die "watched arm with rampart down"; watched_arm "$2" ;;
    protected) [ "$UP" = 1 ] || die "protected arm with rampart down"; loops_of protected "$2" ;;
    auditd) [ "$UP" = 0 ] || die "auditd arm with rampart up"; audit_arm "$2" ;;
    bpftrace) [ "$UP" = 0 ] || die "bpftrace arm with rampart up"; bpftrace_arm "$2" ;;
  esac
}

# --- start: rampart up (as the first round's first phase is), both pods, checked.
"$SRC/scripts/rampart" down >/dev/null
RAMPART_POLICY_DIR=$POLICIES "$SRC/scripts/rampart" up >/dev/null
UP=1
start_pod "$POD_U" "$CNAME_U"
for f in "$OPEN_FILE" /tmp; do
  # The repeated open's file in the image's own root filesystem (no bind mount from the node).
  ! awk -v p="$f" '$5 != "/" && (p == $5 || index(p, $5 "/") == 1) { found = 1 } END { exit !found }' "/proc/${PID[$POD_U]}/mountinfo" \
    || die "pod $POD_U: $f is not on the container's root filesystem"
done
for c in bench-open bench-exec bench-connect; do
  grep -qa "$c" "/proc/${PID[$POD_U]}/root$PROBE" || die "the node's $IMAGE has a rampart-probe without $c; 'make node-up' rebuilds the images"
done
CG_U=$CG2$(awk -F: '$1 == "0" { print $3 }' "/proc/${PID[$POD_U]}/cgroup")
[ -d "$CG_U" ] || die "pod $POD_U's cgroup v2 directory $CG_U is not there"
check_unwatched
log "pod $POD_U (container $CNAME_U, pid ${PID[$POD_U]}, cgroup $CG_U): $U_CHECK"
start_rampart_pods
log "pod $POD_W (container $CNAME_W, pid ${PID[$POD_W]}): $W_CHECK"
log "pod $POD_P (container $CNAME_P, pid ${PID[$POD_P]}): $P_CHECK; notified: $PROTECTED_NOTIFY"
cat > "$work/auditor.bt" <<BT
tracepoint:sched:sched_process_fork /cgroup == cgroupid("$CG_U")/ { printf("fork %d %d %s\n", args->parent_pid, args->child_pid, comm); }
tracepoint:sched:sched_process_exec /cgroup == cgroupid("$CG_U")/ { printf("exec %d %s\n", pid, str(args->filename)); }
tracepoint:sched:sched_process_exit /cgroup == cgroupid("$CG_U")/ { printf("exit %d %s\n", args->pid, comm); }
tracepoint:syscalls:sys_enter_openat /cgroup == cgroupid("$CG_U")/ { printf("open %d %s %s\n", pid, comm, str(args->filename)); }
tracepoint:syscalls:sys_enter_connect /cgroup == cgroupid("$CG_U")/ { printf("connect %d %s %d\n", pid, comm, args->fd); }
BT
# The flow sensor's tracepoint, where the kernel has it: TCP state changes (in softirq for some, so
# the task's cgroup is the interrupted one's; on loopback that is mostly the connecting task).
if [ -d "${TRACEFS:-/nonexistent}/events/sock/inet_sock_set_state" ]; then
  cat >> "$work/auditor.bt" <<BT
tracepoint:sock:inet_sock_set_state /cgroup == cgroupid("$CG_U") && args->protocol == 6/ { printf("tcp %d %s %d %d %d\n", pid, comm, args->oldstate, args->newstate, args->dport); }
BT
  BT_PROBES="sched:sched_process_fork, sched_process_exec, sched_process_exit (the process sensor's), sock:inet_sock_set_state (the flow sensor's; TCP only), syscalls:sys_enter_openat, sys_enter_connect"
else
  BT_PROBES="sched:sched_process_fork, sched_process_exec, sched_process_exit (the process sensor's), syscalls:sys_enter_openat, sys_enter_connect (this kernel has no sock:inet_sock_set_state)"
fi
warm_up unwatched
warm_up watched
warm_up protected
: > "$work/loops"
: > "$work/sensor-counts"
: > "$work/audit-counts"
: > "$work/bpftrace-counts"
t_start=$(date +%s)

# --- the rounds.
down_arms() { # FIRST|SECOND: native next to the up phase
  local others
  others=$(for a in $ARMS; do case $a in auditd|bpftrace) echo "$a" ;; esac; done | shuf | tr '\n' ' ')
  if [ "$1" = first ]; then echo "$others native"; else echo "native $others"; fi
}
up_arms() { # FIRST|SECOND: unwatched next to the down phase, watched and protected in random order
  local others
  others=$(printf '%s\n' watched protected | shuf | tr '\n' ' ')
  if [ "$1" = first ]; then echo "$others unwatched"; else echo "unwatched $others"; fi
}
ORDERS=()
for r in $(seq "$ROUNDS"); do
  ROUND_LOOPS=$(tr ' ' '\n' <<<"$LOOPS" | shuf | tr '\n' ' ')
  if [ $((r % 2)) = 1 ]; then
    go_up; plan="$(up_arms first) | $(down_arms second)"
  else
    go_down; plan="$(down_arms first) | $(up_arms second)"
  fi
  for a in $plan; do
    case $a in
      "|") if [ "$UP" = 1 ]; then go_down; else go_up; fi ;;
      *) run_arm "$a" "$r" ;;
    esac
  done
  ORDERS+=("round $r: $(tr -s ' ' <<<"$plan" | sed 's/ *$//') (loops: ${ROUND_LOOPS% })")
  log "round $r/$ROUNDS done: $plan (loops $ROUND_LOOPS)"
done
go_down
t_rounds=$(($(date +%s) - t_start))
# journald (systemd 252) stops reading its audit socket for good the first time it overflows (it
# logs "Got invalid event from epoll for datagram fd"): say so, and when, if it did.
JOURNALD_NOTE=
jpid=$(audit_listeners | awk '{ print $1 }' | head -1)
if [ -n "$jpid" ] && [ "$(cat "/proc/$jpid/comm" 2>/dev/null)" = systemd-journal ]; then
  first=$(journalctl --no-pager -q -o short-iso _PID="$jpid" 2>/dev/null | grep -m1 'Got invalid event from epoll for datagram fd' | cut -d' ' -f1 || true)
  if [ -n "$first" ]; then
    when="at $first, during this run" since="the records after that"
    [[ $(date -d "$first" +%s 2>/dev/null || echo 0) -ge $t_start ]] \
      || when="at $first, before this run (an earlier run's auditd arm)" since="this run's records"
    JOURNALD_NOTE=" On this node that socket overflowed $when, and journald (systemd $(dpkg-query -W -f='${Version}' systemd 2>/dev/null)) then stopped reading it for good (\"Got invalid event from epoll for datagram fd\" in its log; the socket stays full, $(audit_listeners | awk -v p="$jpid" '$1 == p { print $2 }') bytes): no audit record reaches the journal until journald restarts (scripts/node down, up); so journald kept none of $since (the drops counted below)."
  fi
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- tables.
export ARMS N_OPEN N_EXEC N_CONNECT HZ
export TARGETS_FILE=$work/targets
table=$(python3 - "$work/loops" <<'PY'
import os, statistics, sys
med = statistics.median
runs = {}  # (loop, arm) -> {round: (p50, p99, mean)}
for line in open(sys.argv[1]):
    loop, arm, rnd, p50, p99, mean, n = line.split()
    runs.setdefault((loop, arm), {})[int(rnd)] = (float(p50), float(p99), float(mean))
arms = os.environ["ARMS"].split()
loops = [("open", "open + close of /bin/busybox, repeated", os.environ["N_OPEN"]),
         ("exec", "posix_spawn + execve + wait (rampart-probe nop)", os.environ["N_EXEC"]),
         ("connect", "connect to 127.0.0.1:9, closed (ECONNREFUSED)", os.environ["N_CONNECT"])]
def t(v):
    if v < 10_000: return f"{v:.0f} ns"
    if v < 100_000: return f"{v / 1000:.1f} µs"
    if v < 10_000_000: return f"{v / 1000:.0f} µs"
    return f"{v / 1e6:.1f} ms"
def x(v):
    return f"{v:.3f}×" if v < 2 else f"{v:.2f}×" if v < 100 else f"{v:.0f}×"
def ratios(loop, arm, i):
    a, b = runs.get((loop, arm), {}), runs.get((loop, "native"), {})
    return [a[r][i] / b[r][i] for r in sorted(a) if r in b]
def cell(loop, arm):
    if arm not in arms:
        return "unavailable"
    r50, rmean = ratios(loop, arm, 0), ratios(loop, arm, 2)
    if not r50:
        return "-"
    spread = f" ({x(min(r50))}–{x(max(r50))})" if len(r50) > 1 else ""
    return f"**{x(med(r50))}**{spread}; mean {x(med(rmean))}"
def met(ok):
    return "met" if ok else "**not met**"
head = ["loop (rampart-probe)", "N", "native p50 / mean"]
cols = ["unwatched", "watched", "protected", "auditd", "bpftrace"]
for a in cols:
    head.append(f"{a} ÷ native" + (" (no target)" if a == "protected" else ""))
head.append("targets (p50 ratios): unwatched ≤ 1.02×; watched < auditd, < bpftrace")
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
summary = {"unwatched": [], "auditd": [], "bpftrace": []}
for loop, label, n in loops:
    nat = runs[(loop, "native")]
    row = [label, n, f"{t(med(v[0] for v in nat.values()))} / {t(med(v[2] for v in nat.values()))}"]
    for a in cols:
        row.append(cell(loop, a))
    u = med(ratios(loop, "unwatched", 0))
    summary["unwatched"].append((loop, u <= 1.02, f"{x(u)}"))
    tg = [f"unwatched {met(u <= 1.02)}"]
    w = med(ratios(loop, "watched", 0))
    for a in ["auditd", "bpftrace"]:
        if a in arms:
            o = med(ratios(loop, a, 0))
            summary[a].append((loop, w < o, f"{x(w)} vs {x(o)}"))
            tg.append(f"< {a} {met(w < o)}")
        else:
            summary[a].append((loop, None, f"no {a} arm"))
            tg.append(f"< {a}: no {a} arm")
    row.append("; ".join(tg))
    print("| " + " | ".join(row) + " |")
def verdict(items):
    if any(ok is None for _, ok, _ in items):
        return "not measured (" + "; ".join(f"{l}: {d}" for l, _, d in items) + ")"
    bad = [l for l, ok, _ in items if not ok]
    detail = ", ".join(f"{l} {d}" for l, _, d in items)
    return ("met" if not bad else f"**not met** ({', '.join(bad)})") + f": {detail}"
with open(os.environ["TARGETS_FILE"], "w") as f:
    print(f"- unwatched ≤ 1.02× native on every loop: {verdict(summary['unwatched'])}", file=f)
    print(f"- watched below auditd on every loop: {verdict(summary['auditd'])}", file=f)
    print(f"- watched below bpftrace on every loop: {verdict(summary['bpftrace'])}", file=f)
PY
)
counts=$(python3 - "$work/sensor-counts" "$work/audit-counts" "$work/bpftrace-counts" <<'PY'
import json, os, sys
def rows(path):
    return {int(l.split()[0]): l.split()[1:] for l in open(path) if l.strip()}
sensor, audit, bt = (rows(p) for p in sys.argv[1:4])
arms = os.environ["ARMS"].split()
hz = int(os.environ.get("HZ") or 0)
n_exec = int(os.environ["N_EXEC"])
n_events = int(os.environ["N_OPEN"]) + int(os.environ["N_CONNECT"]) + 3 * n_exec
print(f"| round | watched: each kernel sensor's written / dropped during its loops (since rampart started); the pod's own counts | auditd: SYSCALL records of the loops' processes (the loops make {n_events} calls: opens, connects, and clone3 + execve + exit_group per exec) / all (system-wide), lost, backlog wait, log size | bpftrace: lines of the loops' processes / all, lost events, output size |")
print("|---|---|---|---|")
drops, seen = {}, {}
for r in sorted(set(sensor) | set(audit) | set(bt)):
    if r in sensor:
        before = {x["name"]: x for x in json.loads(sensor[r][0])}
        after = json.loads(sensor[r][1])
        pod = json.loads(sensor[r][2]) if len(sensor[r]) > 2 else {}
        parts = []
        drops[r] = int(pod.get("sensorDropped") or 0)
        for x in after:
            b0 = before.get(x["name"], {"written": 0, "dropped": 0})
            drops[r] += x["dropped"] - b0["dropped"]
            seen.setdefault(x["name"], []).append(x["written"] - b0["written"])
            hint = {"tracepoint-process": f"; the exec loop alone makes {3 * n_exec}: fork, exec, exit each",
                    "tracepoint-tcp": f"; the connect loop makes {os.environ['N_CONNECT']} failed connections"}.get(x["name"], "")
            parts.append(f"{x['name']} +{x['written'] - b0['written']} / +{x['dropped'] - b0['dropped']} ({x['written']} / {x['dropped']}{hint})")
        if pod:
            parts.append("the pod: " + ", ".join(f"{k} {json.dumps(v, separators=(',', ':')) if isinstance(v, dict) else v}" for k, v in pod.items()))
        s = "; ".join(parts) if parts else "no sensor reported"
    else:
        s = "-"
    if r in audit:
        ours, recs, lost, wait, kb, mdrop = audit[r][:6]
        listeners = audit[r][6] if len(audit[r]) > 6 else ""
        w = f"{int(wait)} jiffies" + (f" ({int(wait) * 1000 // hz} ms)" if hz else "")
        m = f"; the audit multicast listeners ({listeners}) dropped {mdrop} messages" if listeners else "; no audit multicast listener"
        a = f"{ours} / {recs}, lost {lost}, backlog wait {w}, {int(kb) / 1024:.1f} MiB{m}"
    else:
        a = "unavailable" if "auditd" not in arms else "-"
    if r in bt:
        ours, lines, lost, kb = bt[r]
        b = f"{ours} / {lines}, lost {lost}, {int(kb) / 1024:.1f} MiB"
    else:
        b = "unavailable" if "bpftrace" not in arms else "-"
    print(f"| {r} | {s} | {a} | {b} |")
# The target: no event of the watched arm lost, by any kernel sensor (during its loops) or for
# the pod (its sensorDropped, since it was bound); and the sensors did see the loops.
need = {"tracepoint-process": 3 * n_exec, "tracepoint-tcp": int(os.environ["N_CONNECT"])}
saw = "; ".join(f"{k} wrote {', '.join(f'+{v}' for v in seen.get(k, [])) or 'nothing'} (the loops make {n})"
                + ("" if seen.get(k) and min(seen[k]) >= n else " **fewer than the loops' events**")
                for k, n in need.items())
total = sum(drops.values())
verdict = ("not measured (no watched round)" if not drops
           else "met" if total == 0 else f"**not met** ({total} dropped)")
with open(os.environ["TARGETS_FILE"], "a") as f:
    print(f"- zero drops for the watched arm's sensors: {verdict}: dropped during its loops, every kernel sensor, plus the pod's sensorDropped, by round: "
          + ", ".join(f"{r}: {d}" for r, d in sorted(drops.items())) + f"; {saw}", file=f)
PY
)
TARGETS=$(cat "$TARGETS_FILE")

decides_w="open: nothing of rampart's runs (no filter, and neither sensor hooks opens). exec: nothing decides it; the process sensor's tracepoints (sched_process_fork, sched_process_exec, sched_process_exit) match the pod's cgroup in the kernel and write fork, exec and exit to its ring. connect: nothing is notified or decided; the flow sensor's cgroup connect4 program (there for UDP flows) runs and returns at once for a TCP socket, its tracepoint (inet_sock_set_state) writes the failed connection, and the RST that refuses it passes the ingress guard's cgroup_skb/ingress program (the alert rule's; a TCP packet is decided only when it comes to a listening socket)."
decides_p="open: read-only, not notified (the filter notifies open/openat only when the flags write); the file guard (fanotify) allows /bin/busybox, and the kernel remembers the allow for the container. exec: the file guard's exec check (fanotify-exec; execve is not in the filter) allows rampart-probe (the deny-list names only /usr/bin/never-run), and the process sensor writes fork, exec and exit. connect: notified to rampart-seccomp (an egress rule scopes the container): a seccomp notification round trip to the agent per connect, allowed (127.0.0.1 is not in 192.0.2.0/24), then checked again by the egress backstop's cgroup connect4 program; and the flow sensor writes the failed connection."
env_line="$started, kernel $(uname -r), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), a shared VM; load average $load_before before the run, $load_after after; $ROUNDS round(s) in ${t_rounds} s. auditd $AUDITD_VERSION, bpftrace $BPFTRACE_VERSION."
unavail=
for a in auditd bpftrace; do [ -z "${WHY[$a]:-}" ] || unavail="$unavail **$a unavailable**: ${WHY[$a]}."; done

echo
echo "$table"
echo
echo "targets:"
echo "$TARGETS"
echo
echo "$counts"
echo
echo "$env_line$unavail$JOURNALD_NOTE"
echo
echo "mechanisms in use (the agents' and rampartd's): $RAMPART_MECH"
echo "watched pod: $W_CHECK"
echo "what its policy (bench/auditor-watch-policy.yaml) does on each loop: $decides_w"
echo "protected pod: $P_CHECK; notified syscalls: ${PROTECTED_NOTIFY:--}"
echo "what its policy (bench/loops-policy.yaml) decides on each loop: $decides_p"
echo "unwatched pod: $U_CHECK"
printf '%s\n' "${ORDERS[@]}"

[ "$DOC" = 1 ] || exit 0
doc=$SRC/docs/benchmarks.md
# shellcheck disable=SC2016 # backquotes for Markdown
rules_md=$(printf '  - `auditctl %s`\n' "${AUDIT_RULES[@]}")
section=$(cat <<EOF2
## Kernel auditor overhead (make bench)

\`${ENV_ARGS}RAMPART_BIN=target/release bench/auditor-overhead.sh${ARGS:+ $ARGS}\` as root on the
local node, release build (\`make bench\` runs it after bench/native-speed.sh, with
\`AUDITOR_ARGS="$ARGS"\`). The comparison: what rampart's kernel auditor (its sensors:
BTF tracepoints for process fork, exec and exit and for TCP state, filtered in the kernel by
cgroup) costs a loop in a pod it does not watch and in one it watches, in the same run as the
same loops under auditd and under bpftrace; and, next to them with no target, what rampart's full
protection costs the same loops.

Three loops, timed call by call inside busybox pods (\`$IMAGE\`, \`sleep\` as the entrypoint) by
the image's \`rampart-probe\` through \`rampart-kubelet exec\`, N calls per loop, arm and round.
Six arms:

- **native**: rampart's daemons down, no audit rule, no bpftrace; pod \`$POD_U\` (container
  \`$CNAME_U\`, which no policy selects). The baseline: down rather than "up with no policy",
  because the unwatched target is about what rampart's node-wide hooks cost a pod it does not
  protect (the process sensor's tracepoints run on every fork, exec and exit of the node, whatever
  the policies), and auditd and bpftrace run with rampart down too.
- **unwatched**: rampart up (\`scripts/rampart up\`, this bench's policy directory), the same pod.
- **watched**: rampart up, pod \`$POD_W\`, container \`$CNAME_W\`, selected by
  \`bench/auditor-watch-policy.yaml\`: \`mode: audit\` and one rule, a never-matching ingress
  alert (\`{direction: ingress, cidrs: [192.0.2.0/24], ports: [9], action: alert}\`). A policy
  that selects a container has rampartd's process sensor and flow sensor watch its cgroup; this
  one plans no seccomp notification (ingress is never notified: rampartd's kernel program decides
  it; an alert blocks nothing; audit mode adds no hardening baseline), so rampart-nri injects no
  filter at all: the kernel auditor watches the pod and nothing else of rampart's decides it.
  What happens on each loop: $decides_w
- **protected**: rampart up, pod \`$POD_P\`, container \`$CNAME_P\`, selected by
  \`bench/loops-policy.yaml\` (native-speed.sh's enforce policy: file, egress and process rules;
  none matches what the loops do). Rampart's full protection, **no target**: its ratios measure
  rampart's enforcement, above all the connect loop's seccomp notification round trip to
  rampart-seccomp (egress enforcement), not the kernel auditor's cost. What it decides on each
  loop: $decides_p
- **auditd**: rampart down; Debian's auditd $AUDITD_VERSION, a fresh daemon per round with the
  packaged \`/etc/audit/auditd.conf\` (log_format ENRICHED, flush INCREMENTAL_ASYNC; only log_file
  moved to the run's directory) and the packaged rules.d buffer settings (\`-b 8192
  --backlog_wait_time 60000 -f 1\`), with rules for the sensors' events (clone, clone3, fork,
  vfork, exit_group and execve, execveat for the process sensor's fork, exit and exec; connect for
  the flow sensor's connections) and for opens, system-wide: auditctl has no cgroup or container
  field (the kernel's audit filters can't name a cgroup; the loops' processes have no login uid or
  session either), so the rules log every process on the node. The open rule is what the
  protected arm's file rules decide; the watched arm has no sensor on opens, so on the open loop
  auditd (and bpftrace) log a record per call where the kernel auditor does nothing. The node's
  journald also listens to the kernel's audit multicast group (every record is sent there too,
  auditd or not); what that socket dropped is counted below.$JOURNALD_NOTE
  The rules:
$rules_md
- **bpftrace**: rampart down; bpftrace $BPFTRACE_VERSION on the tracepoints $BT_PROBES, each
  filtered in the kernel by the pod's cgroup (\`cgroup == cgroupid(...)\`, as rampart's sensors
  filter by cgroup id), one \`printf\` line per event into a file (\`bpftrace -o\`, on the VM's
  disk; tracefs mounted for it if it was not).

Each round runs every arm once and each arm the three loops, in the round's random order:
the rampart-up arms back to back (watched and protected in random order) and the rampart-down
ones back to back, native always right next to unwatched (rounds alternate up-then-down and
down-then-up), auditd and bpftrace in random order. The watched and protected pods are created at
each \`rampart up\`, checked and warmed up; every pod ran one warm-up pass first. Every ratio is
the median over rounds of the arm's p50 (or mean) divided by native's in the same round, with the
rounds' min–max. The targets are read on the p50 ratios and printed met or not; none fails the
run: **unwatched ≤ 1.02× native** on every loop; **watched below both auditd and bpftrace** on
every loop; **zero drops** for the watched arm's sensors. The protected arm has none. The machine
is a shared 2-core VM: compare columns within one run, not across runs.

$table

Targets in this run:

$TARGETS

For the "zero drops" target: the watched arm's kernel sensors' counts (\`rampartctl status -o json\`:
\`.sensors\`, each sensor's events written to its ring and dropped, counted since rampart started,
read ${SENSOR_SETTLE} s after the last activity in a pod the sensors watch, before and after the
watched arm's loops; and the pod's own \`sensorDropped\` and \`flows\` in \`.workloads\`), auditd's
\`auditctl -s\` lost and backlog_wait_time_actual, and what bpftrace wrote and its \`Lost N events\`
lines:

$counts

$env_line$unavail

Checked in the run (the bench stops if a check fails): the unwatched pod: $U_CHECK. The watched
pod: $W_CHECK; the mechanisms in use (the agents' and rampartd's) include tracepoint-process and
tracepoint-tcp: $RAMPART_MECH. The protected pod: $P_CHECK; its notified syscalls (bundle
config.json): \`${PROTECTED_NOTIFY:--}\`. That auditd registered and its rules loaded; that
bpftrace saw an exec of \`rampart-probe nop\` in the pod's cgroup before its loops. Audit is left
as found (rules deleted, settings restored), but with \`-a never,task\` loaded: once audit has been
enabled the kernel gives every new process an audit context until reboot, rules or not, and that
task rule keeps new processes out of audit (in the arms after an auditd one too).

Order of the arms:
$(printf '%s\n' "${ORDERS[@]}" | sed 's/^/- /')
EOF2
)
printf '%s\n' "$section" | "$SRC/bench/doc-section" "$doc" last
log "wrote the table to $doc"
