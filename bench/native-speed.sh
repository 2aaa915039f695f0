#!/usr/bin/env bash
# rampart at native speed? One run on the local node (scripts/node up) that measures, against the
# same pods with no policy, what users compare with in-kernel enforcers. `make bench` builds the
# release binaries and runs it. Two parts, every arm of both under ONE rampartd (rampartd,
# rampart-seccomp and rampart-nri as scripts/rampart starts them) and one policy directory, pods
# created through CRI by rampart-kubelet; each policy selects its arm's pods by container name:
#
# nginx: requests/s and p99 with wrk, pods from the node's rampart.local/nginx:latest image:
#   baseline   container `web`: no policy selects it, so rampart-nri leaves it alone (no filter)
#   enforce    container `nginx`: the seed policy, config/examples/disallow-etc-access-for-nginx.yaml,
#              as shipped. Its file rules decide every open
#   audit      container `nginx-audit`: the same policy with `mode: audit` (renamed, and selecting
#              this container instead): the same decisions, nothing blocked
#   allowlist  container `nginx-allowlist`: only a process allow-list (`allowOnly:
#              [/usr/sbin/nginx]`, the image's entrypoint), so only execs are decided
# and each of them again with `sendfile off; open_file_cache off;` (the "-nosendfile" pods): nginx
# reads the file with pread instead of sendfile. (open_file_cache is off by default, in this
# image too, so both variants open index.html once per request; the bench checks that with
# strace.) Load: wrk from the node to each pod's IP (the pod bridge only); in each round every
# protected pod runs right next to its baseline (same nginx config), pairs in random order.
#
# loops: syscall latency inside busybox pods (rampart.local/busybox:latest, `sleep` as the
# entrypoint), timed call by call by rampart-probe (images/tools/rampart-probe.c) run through
# `rampart-kubelet exec`:
#   baseline       container `loops-baseline`: no policy selects it, no filter
#   enforce        container `loops`: bench/loops-policy.yaml (the seed policy's file rules, an
#                  egress block of 192.0.2.0/24 and a process deny-list entry that never match
#                  what the loops do, so opens, connects and execs are all decided)
#   seccomp-reads  the same container selection, with the pod label
#                  rampart.dev/read-opens=seccomp (every open notified to rampart-seccomp and
#                  emulated there, and execve notified: the escape hatch, and the design before
#                  the file guard; a rampart-nri that does not read the label makes this arm the
#                  same as enforce)
# Loops: open + close of one allowed file of the image (/bin/busybox) again and again; the first
# open + close of each of N files (bench-open-first: created in a fresh directory of the
# container's root filesystem, untimed); open of /etc/passwd, denied (baseline: allowed, open +
# close); posix_spawn + execve + wait; connect to a closed port (127.0.0.1:9); getpid. Each round
# runs every loop in every arm, the loops and the arms within each loop in random order.
#
# Every arm is reported as ratios to its baseline measured in the same round: the machine is
# shared and noisy, so absolute numbers from different runs are not comparable. The issue's
# targets are printed next to the ratios; none fails the run.
#
#   bench/native-speed.sh [--doc] [--rounds N] [--only nginx|loops] [--duration SECONDS]
#                         [--connections N]                                        (root)
#     --doc    also write the tables into docs/benchmarks.md, sections
#              "## nginx throughput (make bench)" and "## syscall latency in pods (make bench)"
#              (each replaced if present; --only writes only its part's)
#     --only   run one part (default: both, the rounds of the two alternating)
#     --duration, --connections   wrk's per run (nginx part)
#   RAMPART_BIN   where rampart's binaries are (default target/release; `make bench` builds them)
#   N_OPEN N_FIRST N_DENY N_EXEC N_CONNECT N_GETPID   calls per loop and round (defaults below)
#
# Stops rampart's daemons at the end (and restarts them at the start with this bench's policy
# directory); the node stays up.
# `A && B || die` is meant here: die when any of the checks fails.
# shellcheck disable=SC2015
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
NODE_DIR=${RAMPART_NODE_DIR:-/var/lib/rampart-node}
export RAMPART_NODE_DIR=$NODE_DIR
export RAMPART_CRI_SOCKET=${RAMPART_CRI_SOCKET:-$NODE_DIR/containerd.sock}
SEED=$SRC/config/examples/disallow-etc-access-for-nginx.yaml
LOOPS_POLICY=$SRC/bench/loops-policy.yaml
IMAGE=rampart.local/nginx:latest
LOOPS_IMAGE=rampart.local/busybox:latest
NS=rampart-bench-native
ROUNDS=5
DURATION=5
CONNECTIONS=16
DOC=0
ONLY=
ARGS="$*"
# Calls per loop and round. The probe times each call; p50 and p99 are over these. Those set in
# the environment go into the command line the docs show.
ENV_ARGS=
for v in N_OPEN N_FIRST N_DENY N_EXEC N_CONNECT N_GETPID; do [ -z "${!v:-}" ] || ENV_ARGS="$ENV_ARGS$v=${!v} "; done
N_OPEN=${N_OPEN:-20000}
N_FIRST=${N_FIRST:-2000}
N_DENY=${N_DENY:-20000}
N_EXEC=${N_EXEC:-300}
N_CONNECT=${N_CONNECT:-5000}
N_GETPID=${N_GETPID:-2000000}
# The repeated open's file: in the image's own root filesystem (not a bind mount from the node,
# as /etc/hostname is), readable under the loops' policy.
OPEN_FILE=/bin/busybox
PROBE=/usr/local/bin/rampart-probe
# The loops by name: run_loop says what each runs, the loops' table gives their labels and the
# issue's targets (printed next to the ratios, never enforced: the machine is noisy).
LOOPS="open open-first open-deny exec connect getpid"

usage() { echo "usage: bench/native-speed.sh [--doc] [--rounds N] [--only nginx|loops] [--duration SECONDS] [--connections N]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --doc) DOC=1 ;;
    --rounds) ROUNDS=${2:-}; shift ;;
    --duration) DURATION=${2:-}; shift ;;
    --connections) CONNECTIONS=${2:-}; shift ;;
    --only) ONLY=${2:-}; shift; [ "$ONLY" = nginx ] || [ "$ONLY" = loops ] || { echo "bench: --only takes nginx or loops" >&2; usage; } ;;
    -h|--help) usage ;;
    *) echo "bench: unknown argument $1" >&2; usage ;;
  esac
  shift
done
for n in "$ROUNDS" "$DURATION" "$CONNECTIONS" "$N_OPEN" "$N_FIRST" "$N_DENY" "$N_EXEC" "$N_CONNECT" "$N_GETPID"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "bench: '$n' is not a positive number" >&2; usage; }
done
NGINX=1 LOOPING=1
[ "$ONLY" != loops ] || NGINX=0
[ "$ONLY" != nginx ] || LOOPING=0

log() { echo "bench: $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

# scripts/rampart reads RAMPART_BIN too: the daemons and rampart-kubelet come from the same build.
RAMPART_BIN=${RAMPART_BIN:-$SRC/target/release}
[ -d "$RAMPART_BIN" ] || die "RAMPART_BIN=$RAMPART_BIN does not exist; run 'make bench' (it builds target/release)"
RAMPART_BIN=$(cd "$RAMPART_BIN" && pwd)
export RAMPART_BIN
K=$RAMPART_BIN/rampart-kubelet

[ "$(id -u)" -eq 0 ] || die "must run as root (it starts rampart's daemons and reads the pods' /proc)"
[ -S "$RAMPART_CRI_SOCKET" ] && [ -f "$NODE_DIR/containerd.pid" ] && kill -0 "$(cat "$NODE_DIR/containerd.pid")" 2>/dev/null \
  || die "the node is not up ($RAMPART_CRI_SOCKET missing or containerd not running); run 'make node-up'"
tools="jq python3"
[ "$NGINX" = 0 ] || tools="$tools wrk strace curl"
for t in $tools; do command -v "$t" >/dev/null || die "$t not found; run 'make setup' (scripts/setup-node installs it)"; done
for b in rampartd rampartctl rampart-seccomp rampart-holder rampart-nri rampart-kubelet; do
  [ -x "$RAMPART_BIN/$b" ] || die "$RAMPART_BIN/$b is not built; run 'make bench' (cargo build --release of the workspace binaries)"
done

# The node's pod bridge (config/cni/10-rampart.conflist): the only interface wrk may load.
BRIDGE=$(jq -r '.plugins[] | select(.type == "bridge") | .bridge' "$NODE_DIR"/cni/net.d/*.conflist 2>/dev/null | head -1)
[ -n "$BRIDGE" ] && [ "$BRIDGE" != null ] || die "no CNI bridge configured in $NODE_DIR/cni/net.d; is the node up (make node-up)?"

work=$(mktemp -d /tmp/rampart-native-speed.XXXXXX)
POLICIES=$work/policies.d
mkdir -p "$POLICIES" "$work/wrk"

# pod -> arm, container name, nginx config variant; the order here is the tables'.
PODS=() NGINX_PODS=() LOOP_PODS=()
declare -A ARM CNAME VARIANT IP CID MASTER BASE_OF LABEL
add_pod() { # POD ARM CONTAINER VARIANT
  PODS+=("$1"); ARM[$1]=$2; CNAME[$1]=$3; VARIANT[$1]=$4
}
if [ "$NGINX" = 1 ]; then
  for v in default nosendfile; do
    s=; [ "$v" = nosendfile ] && s=-nosendfile
    add_pod "nginx-baseline$s" baseline web "$v"
    add_pod "nginx-enforce$s" enforce nginx "$v"
    add_pod "nginx-audit$s" audit nginx-audit "$v"
    add_pod "nginx-allowlist$s" allowlist nginx-allowlist "$v"
    for p in "nginx-baseline$s" "nginx-enforce$s" "nginx-audit$s" "nginx-allowlist$s"; do BASE_OF[$p]=nginx-baseline$s; NGINX_PODS+=("$p"); done
  done
fi
if [ "$LOOPING" = 1 ]; then
  add_pod loops-baseline baseline loops-baseline loops
  add_pod loops-enforce enforce loops loops
  add_pod loops-seccomp-reads seccomp-reads loops loops
  LABEL[loops-seccomp-reads]=rampart.dev/read-opens=seccomp
  LOOP_PODS=(loops-baseline loops-enforce loops-seccomp-reads)
fi
declare -A LOOP_POD=([baseline]=loops-baseline [enforce]=loops-enforce [seccomp-reads]=loops-seccomp-reads)

started_pods=()
STRACE_PID=
cleanup() {
  local rc=$? p
  set +e
  [ -n "$STRACE_PID" ] && kill "$STRACE_PID" 2>/dev/null
  for p in "${started_pods[@]}"; do
    timeout 60 "$K" rm "$p" -n "$NS" >/dev/null 2>&1 || log "warning: could not remove pod $NS/$p"
  done
  "$SRC/scripts/rampart" down >/dev/null || log "warning: scripts/rampart down failed"
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
# Interrupted: clean up too (the pods, rampart's daemons), once the command in flight returns.
trap 'exit 130' INT
trap 'exit 143' TERM

# --- policies: one directory, one rampartd; each arm's policy selects only its container name.
cp "$SEED" "$POLICIES/10-enforce.yaml"
sed -e 's/^metadata: {name: DisallowEtcAccessForNginx}$/metadata: {name: DisallowEtcAccessForNginxAudit}/' \
    -e 's/^  mode: enforce$/  mode: audit/' \
    -e 's/^  selector: {containerNames: \[nginx\]}$/  selector: {containerNames: [nginx-audit]}/' \
    "$SEED" > "$POLICIES/20-audit.yaml"
# If the seed's text changes, the substitutions above silently stop applying: check each one.
grep -q '^metadata: {name: DisallowEtcAccessForNginxAudit}$' "$POLICIES/20-audit.yaml" \
  && grep -q '^  mode: audit$' "$POLICIES/20-audit.yaml" \
  && grep -q '^  selector: {containerNames: \[nginx-audit\]}$' "$POLICIES/20-audit.yaml" \
  || die "could not derive the audit policy from $SEED (its metadata/mode/selector lines changed); update bench/native-speed.sh"
grep -q '^  selector: {containerNames: \[nginx\]}$' "$SEED" || die "$SEED no longer selects containerNames [nginx]; update bench/native-speed.sh"
cat > "$POLICIES/30-allowlist.yaml" <<'YAML'
# Only nginx may run: the image's entrypoint is /usr/sbin/nginx itself, and its workers are
# forked, not exec'd. Any other exec in the container is blocked.
apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: BenchNginxAllowOnly}
spec:
  selector: {containerNames: [nginx-allowlist]}
  mode: enforce
  severity: High
  processes:
    - allowOnly: [/usr/sbin/nginx]
      action: block
YAML
# The loops' policy: its file rules must be the seed's, as the table says.
files_rules() { awk '/^  files:$/ { on = 1; print; next } on && /^    / { print; next } { on = 0 }' "$1"; }
[ -n "$(files_rules "$SEED")" ] && [ "$(files_rules "$SEED")" = "$(files_rules "$LOOPS_POLICY")" ] \
  || die "the file rules of $LOOPS_POLICY are no longer the seed policy's ($SEED); make them the same again"
grep -q '^  selector: {containerNames: \[loops\]}$' "$LOOPS_POLICY" || die "$LOOPS_POLICY no longer selects containerNames [loops]; update bench/native-speed.sh"
cp "$LOOPS_POLICY" "$POLICIES/40-loops.yaml"
"$RAMPART_BIN/rampartctl" policy lint "$POLICIES" >&2 || die "the bench's policies do not lint"

# The loops need rampart-probe's bench-open-first, which node images built before it lack: then
# the probe is built from this tree and copied into each loop pod (see install_probe).
if [ "$LOOPING" = 1 ]; then
  command -v gcc >/dev/null || die "gcc not found; run 'make setup'"
  gcc -O2 -static -o "$work/rampart-probe" "$SRC/images/tools/rampart-probe.c" -lpthread \
    || die "could not build images/tools/rampart-probe.c"
fi

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')

# --- rampart's daemons with this policy directory. Stop first: `up` keeps daemons that already
# run, and those could be reading another directory.
"$SRC/scripts/rampart" down >/dev/null
RAMPART_POLICY_DIR=$POLICIES "$SRC/scripts/rampart" up >&2
since=$(date +%s)

# --- pods: all of them after rampart is up, so the baselines run under exactly the same node
# (rampart-nri sees them too, and finds no policy for them).
for p in "${PODS[@]}"; do
  timeout 60 "$K" rm "$p" -n "$NS" >/dev/null 2>&1 || true # a pod left by an interrupted run
  opts=()
  [ "${ARM[$p]}" = baseline ] || [ "${VARIANT[$p]}" = loops ] || opts=(--label app=nginx)
  [ -z "${LABEL[$p]:-}" ] || opts+=(--label "${LABEL[$p]}")
  started_pods+=("$p")
  if [ "${VARIANT[$p]}" = loops ]; then
    out=$("$K" run "$p" -n "$NS" -c "${CNAME[$p]}" "${opts[@]}" --image "$LOOPS_IMAGE" -o json -- sleep 1000000) \
      || die "pod $NS/$p did not start"
  else
    out=$("$K" run "$p" -n "$NS" -c "${CNAME[$p]}" "${opts[@]}" --image "$IMAGE" -o json) \
      || die "pod $NS/$p did not start (see: $K logs $p -n $NS, after --keep-on-failure)"
  fi
  IP[$p]=$(jq -r .ip <<<"$out"); CID[$p]=$(jq -r .containerId <<<"$out")
  MASTER[$p]=$("$K" inspect "$p" -n "$NS" | jq -r .info.pid)
  [[ ${MASTER[$p]} =~ ^[0-9]+$ ]] && [ "${MASTER[$p]}" != 0 ] || die "no pid for pod $p's container"
  if [ "${VARIANT[$p]}" = loops ]; then
    log "pod $p (${ARM[$p]}, container ${CNAME[$p]}${LABEL[$p]:+, label ${LABEL[$p]}}): sleep, pid ${MASTER[$p]}"
    continue
  fi
  [[ ${IP[$p]} =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "pod $p has no IPv4 address (got '${IP[$p]}')"
  # Load goes to the pod network on this machine only: the IP must be on the node's CNI bridge,
  # directly (no gateway), or we refuse to load it.
  route=$(ip -o route get "${IP[$p]}" 2>/dev/null) || die "no route to pod $p's IP ${IP[$p]}"
  [[ $route == *" dev $BRIDGE "* && $route != *" via "* ]] \
    || die "pod $p's IP ${IP[$p]} is not on the node's bridge $BRIDGE ($route); refusing to load it"
  log "pod $p (${ARM[$p]}, container ${CNAME[$p]}): ${IP[$p]}, nginx master pid ${MASTER[$p]}"
done
for p in "${NGINX_PODS[@]}"; do
  for _ in $(seq 100); do curl -fsS -o /dev/null --max-time 1 "http://${IP[$p]}/" 2>/dev/null && break; sleep 0.1; done
  curl -fsS -o /dev/null --max-time 2 "http://${IP[$p]}/" || die "pod $p does not serve http://${IP[$p]}/"
done

workers() { { pgrep -P "$1" || true; } | sort -n | tr '\n' ' '; }
# --- the -nosendfile pods: change nginx.conf from the node through the master's /proc/PID/root
# and reload with SIGHUP. Not with `exec sed` in the pod: the seed policy blocks sed's read of
# /etc/nginx/nginx.conf (only /usr/sbin/nginx may read /etc), and the allow-list blocks the exec
# of sed and of `nginx -s reload` alike. The reload is nginx's own: the master re-reads the file,
# forks new workers and retires the old ones.
for p in "${NGINX_PODS[@]}"; do
  [ "${VARIANT[$p]}" = nosendfile ] || continue
  conf=/proc/${MASTER[$p]}/root/etc/nginx/nginx.conf
  grep -q '^    sendfile on;$' "$conf" || die "pod $p: no 'sendfile on;' line in the image's nginx.conf to change"
  sed -i 's/^    sendfile on;$/    sendfile off;\n    open_file_cache off;/' "$conf"
  grep -q '^    sendfile off;$' "$conf" && grep -q '^    open_file_cache off;$' "$conf" || die "pod $p: editing $conf failed"
  old=$(workers "${MASTER[$p]}")
  kill -HUP "${MASTER[$p]}"
  new=
  for _ in $(seq 100); do
    new=$(workers "${MASTER[$p]}")
    # Reloaded: the same number of workers, none of them an old one.
    if [ "$(wc -w <<<"$new")" = "$(wc -w <<<"$old")" ] && ! grep -qwFf <(tr ' ' '\n' <<<"$old" | grep .) <<<"$new"; then break; fi
    new=; sleep 0.1
  done
  [ -n "$new" ] || die "pod $p: nginx did not reload after SIGHUP (workers before: $old, now: $(workers "${MASTER[$p]}")); $("$K" logs "$p" -n "$NS" 2>&1 | grep -E 'emerg|alert|crit' | tail -3)"
  nlog=$("$K" logs "$p" -n "$NS" 2>&1) || die "pod $p: cannot read nginx's log"
  grep -q 'reconfiguring' <<<"$nlog" || die "pod $p: nginx's log does not say it reconfigured"
  ! grep -q '\[emerg\]' <<<"$nlog" || die "pod $p: nginx logged [emerg] on reload: $(grep emerg <<<"$nlog" | tail -1)"
  log "pod $p: sendfile off, open_file_cache off; nginx reloaded (workers $old-> $new)"
done

# --- what each pod really runs under, checked, and kept for the record.
verify=()
# Notified syscall names; one notified only under argument conditions (open/openat when their
# flags write: read-only opens are the file guard's) is shown as NAME(writes).
# shellcheck disable=SC2016
jq_notify='[.linux.seccomp.syscalls[]? | select(.action == "SCMP_ACT_NOTIFY") | .names[] as $n | {n: $n, c: ((.args // []) | length > 0)}] | group_by(.n) | map(if all(.c) then "\(.[0].n)(writes)" else .[0].n end) | join(",")'
record() { # POD ACTION [TEXT]: wait up to 5 s for a rampart record of this pod with this action
  local j
  for _ in $(seq 50); do
    j=$(journalctl --no-pager -q -o cat SYSLOG_IDENTIFIER=rampart RAMPART_POD="$1" RAMPART_ACTION="$2" --since "@$since" 2>/dev/null | grep -F -- "${3:-}" | tail -1)
    [ -n "$j" ] && { echo "$j"; return 0; }
    sleep 0.1
  done
  return 1
}
for p in "${NGINX_PODS[@]}"; do
  m=${MASTER[$p]}
  mode=$(awk '/^Seccomp:/ {print $2}' "/proc/$m/status")
  # rampart-runc merges rampart's rules into the bundle's config.json (annotation mode), so the
  # filter runc installed is in that file, not in containerd's runtimeSpec.
  cfg=$NODE_DIR/state/io.containerd.runtime.v2.task/k8s.io/${CID[$p]}/config.json
  [ -f "$cfg" ] || die "pod $p: no bundle config at $cfg"
  notify=$(jq -r "$jq_notify" "$cfg")
  case ${ARM[$p]} in
    baseline)
      [ "$mode" = 0 ] || die "baseline pod $p runs under a seccomp filter (Seccomp: $mode): a policy scopes it"
      [ -z "$notify" ] || die "baseline pod $p has notified syscalls: $notify"
      "$K" exec "$p" -n "$NS" -- cat /etc/passwd >/dev/null 2>&1 || die "baseline pod $p: cat /etc/passwd failed; it should be unprotected"
      probe="cat /etc/passwd: read" ;;
    enforce|audit)
      [ "$mode" = 2 ] || die "pod $p has no seccomp filter (Seccomp: $mode): rampart did not protect it"
      [[ ,$notify, == *,openat* ]] || die "pod $p: openat is not notified ($notify)"
      if [ "${ARM[$p]}" = enforce ]; then
        ! "$K" exec "$p" -n "$NS" -- cat /etc/passwd >/dev/null 2>&1 || die "pod $p: cat /etc/passwd was not blocked"
        record "$p" Blocked >/dev/null || die "pod $p: no Blocked record in journald for cat /etc/passwd"
        probe="cat /etc/passwd: blocked, Blocked record in journald"
      else
        "$K" exec "$p" -n "$NS" -- cat /etc/passwd >/dev/null 2>&1 || die "pod $p: cat /etc/passwd failed in audit mode"
        record "$p" Alerted >/dev/null || die "pod $p: no Alerted record in journald for cat /etc/passwd"
        probe="cat /etc/passwd: read, Alerted record in journald"
      fi ;;
    allowlist)
      [ "$mode" = 2 ] || die "pod $p has no seccomp filter (Seccomp: $mode): rampart did not protect it"
      # Where the file guard decides execs alone, execve is left out of the filter (execveat
      # stays); otherwise execve is notified.
      if [ "$(jq -r '.annotations["rampart.dev/exec-guard"] // ""' "$cfg")" = fanotify ]; then
        [[ ,$notify, == *,execveat,* && ,$notify, != *,execve,* ]] \
          || die "pod $p: the file guard decides its execs, but its filter notifies: $notify"
        execs="execs decided by the file guard"
      else
        [[ ,$notify, == *,execve,* ]] || die "pod $p: execve is not notified ($notify)"
        execs="execve notified"
      fi
      ! "$K" exec "$p" -n "$NS" -- cat /etc/hostname >/dev/null 2>&1 || die "pod $p: exec of cat was not blocked"
      record "$p" Blocked >/dev/null || die "pod $p: no Blocked record in journald for the exec of cat"
      probe="$execs; exec cat: blocked, Blocked record in journald" ;;
  esac
  # What one request does in a worker: opens of index.html, sendfile or pread, seen by strace
  # from the node (the pod's workers are the master's children).
  ws=$(workers "$m")
  args=(); for w in $ws; do args+=(-p "$w"); done
  strace -qq -f -e trace=openat,open,sendfile,pread64,read -o "$work/strace.$p" "${args[@]}" 2>/dev/null &
  STRACE_PID=$!
  sleep 0.5
  for _ in 1 2 3 4; do curl -fsS -o /dev/null --max-time 2 "http://${IP[$p]}/" || die "pod $p stopped serving"; done
  sleep 0.3
  kill -INT "$STRACE_PID" 2>/dev/null || true; wait "$STRACE_PID" 2>/dev/null || true; STRACE_PID=
  opens=$(grep -c 'open.*index\.html' "$work/strace.$p" || true)
  sendfiles=$(grep -c 'sendfile' "$work/strace.$p" || true)
  preads=$(grep -c 'pread64(' "$work/strace.$p" || true)
  if [ "${VARIANT[$p]}" = nosendfile ]; then
    [ "$sendfiles" = 0 ] && [ "$preads" -ge 4 ] || die "pod $p: sendfile off did not take effect (4 requests: $sendfiles sendfile, $preads pread64)"
  else
    [ "$sendfiles" -ge 4 ] || die "pod $p: expected sendfile in the default config (4 requests: $sendfiles sendfile)"
  fi
  [ "$opens" -ge 4 ] || die "pod $p: 4 requests opened index.html $opens times; expected one open per request"
  verify+=("| $p | ${ARM[$p]} | ${VARIANT[$p]} | $mode | ${notify:--} | $probe | $opens / $sendfiles / $preads |")
done
[ "$NGINX" = 0 ] || log "verified: nginx baseline pods unfiltered, protected pods under their policies, nginx config as intended"


# --- the loop pods: what each really runs under, checked, and kept for the record.
under_root_fs() { # PID PATH: PATH is on the container's root filesystem (no mount at or above it but /)
  ! awk -v p="$2" '$5 != "/" && (p == $5 || index(p, $5 "/") == 1) { found = 1 } END { exit !found }' "/proc/$1/mountinfo"
}
# bench-open-first needs a rampart-probe from this tree; the other loops run the image's own.
PROBE_FIRST=$PROBE
probe_note="the image's $PROBE for every loop"
loop_verify=()
declare -A NOTIFY
for p in "${LOOP_PODS[@]}"; do
  m=${MASTER[$p]}
  if [ "$PROBE_FIRST" = "$PROBE" ] && ! grep -qa bench-open-first "/proc/$m/root$PROBE"; then
    PROBE_FIRST=/usr/local/bin/rampart-probe-tree
    probe_note="the image's $PROBE, but for bench-open-first (the node's images predate it) a build of this tree's images/tools/rampart-probe.c, copied from the node into each loop pod as $PROBE_FIRST"
    log "the node's $LOOPS_IMAGE has a rampart-probe without bench-open-first (make node-up rebuilds the images): using this tree's build, copied into the loop pods, for that loop"
  fi
done
for p in "${LOOP_PODS[@]}"; do
  m=${MASTER[$p]}
  if [ "$PROBE_FIRST" != "$PROBE" ]; then
    # From the node, through the container's root: no exec in the pod (the policy decides those).
    install -m 0755 "$work/rampart-probe" "/proc/$m/root$PROBE_FIRST" || die "pod $p: could not copy the probe into the container"
  fi
  for f in "$OPEN_FILE" /tmp /etc/passwd; do
    under_root_fs "$m" "$f" || die "pod $p: $f is not on the container's root filesystem (a mount: $(awk -v p="$f" 'p == $5 || index(p, $5 "/") == 1' "/proc/$m/mountinfo" | tail -1))"
  done
  mode=$(awk '/^Seccomp:/ {print $2}' "/proc/$m/status")
  cfg=$NODE_DIR/state/io.containerd.runtime.v2.task/k8s.io/${CID[$p]}/config.json
  [ -f "$cfg" ] || die "pod $p: no bundle config at $cfg"
  notify=$(jq -r "$jq_notify" "$cfg")
  NOTIFY[$p]=$notify
  label=$("$K" inspect "$p" -n "$NS" --sandbox | jq -r '.status.labels // {} | to_entries | map(select(.key | startswith("rampart.dev/")) | "\(.key)=\(.value)") | join(",")')
  [ "$label" = "${LABEL[$p]:-}" ] || die "pod $p: its rampart.dev/ labels are '$label', expected '${LABEL[$p]:-}'"
  out=$("$K" exec "$p" -n "$NS" -- "$PROBE" open "$OPEN_FILE" 2>&1) || die "pod $p: open of $OPEN_FILE failed ($out); the repeated-open loop needs it readable"
  out=$("$K" exec "$p" -n "$NS" -- "$PROBE" open /etc/passwd 2>&1) && passwd="read" || passwd=$out
  case ${ARM[$p]} in
    baseline)
      [ "$mode" = 0 ] || die "baseline pod $p runs under a seccomp filter (Seccomp: $mode): a policy scopes it"
      [ -z "$notify" ] || die "baseline pod $p has notified syscalls: $notify"
      [ "$passwd" = read ] || die "baseline pod $p: open of /etc/passwd failed ($passwd); it should be unprotected"
      probe="open /etc/passwd: read; open $OPEN_FILE: read" ;;
    enforce|seccomp-reads)
      [ "$mode" = 2 ] || die "pod $p has no seccomp filter (Seccomp: $mode): rampart did not protect it"
      [ "${ARM[$p]}" = enforce ] || [[ ,$notify, == *,openat,* ]] || die "pod $p: openat is not notified for every open ($notify), yet its label asks for it"
      [ "$passwd" != read ] || die "pod $p: open of /etc/passwd was not blocked"
      record "$p" Blocked '"filePath":"/etc/passwd"' >/dev/null || die "pod $p: no Blocked record in journald for the open of /etc/passwd"
      # The egress rule is live: a connect to the blocked range is refused before it leaves.
      net=$("$K" exec "$p" -n "$NS" --timeout 20 -- "$PROBE" send connect 192.0.2.1 9 2>&1) && die "pod $p: a connect to 192.0.2.1:9 was not blocked ($net)"
      record "$p" Blocked '"remoteAddress":"192.0.2.1"' >/dev/null || die "pod $p: no Blocked record in journald for the connect to 192.0.2.1:9 ($net)"
      probe="open /etc/passwd: ${passwd#err }, Blocked record; connect 192.0.2.1:9: ${net#err }, Blocked record; open $OPEN_FILE: read" ;;
  esac
  loop_verify+=("| $p | ${ARM[$p]} | \`${CNAME[$p]}\` | ${LABEL[$p]:--} | $mode | ${notify:--} | $probe |")
done
if [ "$LOOPING" = 1 ]; then
  log "verified: the loops' baseline pod unfiltered, the others under bench/loops-policy.yaml"
  [ "${NOTIFY[loops-enforce]}" != "${NOTIFY[loops-seccomp-reads]}" ] \
    || log "note: enforce and seccomp-reads notify the same syscalls (${NOTIFY[loops-enforce]}): this rampart-nri makes nothing of the label rampart.dev/read-opens=seccomp"
fi

# --- load, in ROUNDS rounds; in each, the nginx part's runs and then the loops'.
# nginx: wrk against each pod's IP; a 1 s warm-up first (connections, page cache, the agent's
# per-container state). A round measures every protected pod once, each right next to its
# baseline (the unprotected pod with the same nginx config), the pair in random order and the
# pairs in a new random order each round: the VM's speed drifts by tens of percent within a minute
# when other work starts or stops, and a ratio of two runs 5 s apart sees little of it. So each
# baseline pod runs once per protected arm per round.
run_wrk() { # POD SECONDS OUT
  wrk -t1 -c"$CONNECTIONS" -d"$2"s --latency "http://${IP[$1]}/" > "$3" 2>&1 || die "wrk against $1 failed: $(tail -3 "$3")"
}
PROTECTED=()
for p in "${NGINX_PODS[@]}"; do [ "${ARM[$p]}" = baseline ] || PROTECTED+=("$p"); done
nginx_round() { # ROUND
  local r=$1 p q order pair
  mapfile -t order < <(printf '%s\n' "${PROTECTED[@]}" | shuf)
  for p in "${order[@]}"; do
    pair=("${BASE_OF[$p]}" "$p")
    [ $((RANDOM % 2)) = 0 ] || pair=("$p" "${BASE_OF[$p]}")
    for q in "${pair[@]}"; do
      # One line per run: pod, round, the protected pod of its pair, wrk's output file.
      run_wrk "$q" "$DURATION" "$work/wrk/$q.$r.$p"
      echo "$q $r $p $work/wrk/$q.$r.$p" >> "$work/runs"
    done
  done
  log "round $r/$ROUNDS: nginx done (${order[*]})"
}

# loops: one rampart-probe run per loop and arm, through CRI exec; a warm-up pass first (the
# probe's pages, the agent's per-container state). Within a round each loop runs in every arm
# back to back, arms in random order, loops in random order.
run_loop() { # LOOP ARM ROUND|warmup
  local loop=$1 arm=$2 r=$3 p=${LOOP_POD[$2]} args probe=$PROBE out err name nl n p50 p99 mean
  case $loop in
    open) args=(bench-open "$OPEN_FILE" "$N_OPEN") ;;
    open-first) args=(bench-open-first "/tmp/first-$r" "$N_FIRST"); probe=$PROBE_FIRST ;;
    open-deny)
      if [ "$arm" = baseline ]; then args=(bench-open /etc/passwd "$N_DENY"); else args=(bench-open-deny /etc/passwd "$N_DENY"); fi ;;
    exec) args=(bench-exec "$N_EXEC") ;;
    connect) args=(bench-connect 127.0.0.1 9 "$N_CONNECT") ;;
    getpid) args=(bench-getpid "$N_GETPID") ;;
  esac
  err=$work/probe.err
  out=$("$K" exec "$p" -n "$NS" --timeout 300 -- "$probe" "${args[@]}" 2>"$err") \
    || die "round $r, loop $loop in $p: rampart-probe ${args[*]} failed: $out $(tail -3 "$err")"
  # "bench-open n N p50 X p99 Y mean Z"
  read -r name nl n _ p50 _ p99 _ mean <<<"$out" || true
  [ "$name" = "${args[0]}" ] && [ "$nl" = n ] && [ "$n" = "${args[-1]}" ] && [[ $p50 =~ ^[0-9]+$ && $p99 =~ ^[0-9]+$ ]] \
    || die "round $r, loop $loop in $p: unexpected output from rampart-probe ${args[*]}: $out"
  [ "$r" = warmup ] || echo "$loop $arm $r $p50 $p99 $mean $n" >> "$work/loops"
}
LOOP_ARMS="baseline enforce seccomp-reads"
loops_round() { # ROUND|warmup
  local r=$1 loop arm
  for loop in $(tr ' ' '\n' <<<"$LOOPS" | shuf); do
    for arm in $(tr ' ' '\n' <<<"$LOOP_ARMS" | shuf); do run_loop "$loop" "$arm" "$r"; done
  done
  [ "$r" = warmup ] || log "round $r/$ROUNDS: loops done"
}

: > "$work/runs"
: > "$work/loops"
if [ "$NGINX" = 1 ]; then for p in "${NGINX_PODS[@]}"; do run_wrk "$p" 1 "$work/wrk/warmup"; done; fi
[ "$LOOPING" = 0 ] || loops_round warmup
for r in $(seq "$ROUNDS"); do
  [ "$NGINX" = 0 ] || nginx_round "$r"
  [ "$LOOPING" = 0 ] || loops_round "$r"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- tables.
make_cmd="${ENV_ARGS}make bench"; [ -z "$ARGS" ] || make_cmd="$make_cmd BENCH_ARGS=\"$ARGS\""
env_common="$started, kernel $(uname -r), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), a shared VM; load average $load_before before the run, $load_after after"

if [ "$NGINX" = 1 ]; then
# wrk's output -> "POD ROUND PAIR RPS P99_US NON2XX SOCKET_ERRORS"
while read -r q r p f; do
  awk -v pod="$q" -v round="$r" -v pair="$p" '
    function us(s) { if (s ~ /us$/) return s + 0; if (s ~ /ms$/) return (s + 0) * 1000; if (s ~ /s$/) return (s + 0) * 1000000; return s + 0 }
    /^Requests\/sec:/ { rps = $2 }
    $1 == "99%" { p99 = us($2) }
    /Non-2xx or 3xx responses:/ { bad = $NF }
    /Socket errors:/ { gsub(/,/, ""); errs = $4 + $6 + $8 + $10 }
    END { printf "%s %s %s %s %s %d %d\n", pod, round, pair, rps, p99, bad, errs }
  ' "$f"
done < "$work/runs" > "$work/results"
awk 'NF < 7 { print "bench: no result parsed for " $1 " round " $2 " (pair " $3 ")"; bad = 1 } END { exit bad }' "$work/results" >&2 \
  || die "wrk's output did not parse; see $work/wrk"
# A protected pod answering errors would look fast; any non-2xx response is a failed run.
awk '$6 > 0 { print "bench: " $1 " round " $2 ": " $6 " non-2xx responses"; bad = 1 } END { exit bad }' "$work/results" >&2 \
  || die "some requests failed; the numbers would not mean what they say"
sock_errs=$(awk '{ s += $7 } END { print s + 0 }' "$work/results")
runs=$(wc -l < "$work/results")

table_order=$(printf '%s\n' "${NGINX_PODS[@]}")
table=$(python3 - "$work/results" <<PY
import statistics, sys
order = """$table_order""".split()
base_of = {$(for p in "${NGINX_PODS[@]}"; do printf '"%s": "%s", ' "$p" "${BASE_OF[$p]}"; done)}
arm = {$(for p in "${NGINX_PODS[@]}"; do printf '"%s": "%s", ' "$p" "${ARM[$p]}"; done)}
# rps[pod][(round, pair)]: a protected pod has one run per round; a baseline one per pair.
rps, p99 = {}, {}
for line in open(sys.argv[1]):
    pod, rnd, pair, r, l = line.split()[:5]
    rps.setdefault(pod, {})[(int(rnd), pair)] = float(r)
    p99.setdefault(pod, {})[(int(rnd), pair)] = float(l)
med = statistics.median
def lat(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"
def met(ok):
    return "met" if ok else "**not met**"
print("| arm | nginx config | runs | req/s, median | ÷ baseline (medians) | ÷ baseline, median of pairs (min–max) | p99 latency, median | p99 ÷ baseline, median of pairs | targets: req/s ≥ 0.97×, p99 ≤ 1.10× |")
print("|---|---|---|---|---|---|---|---|---|")
for pod in order:
    b = base_of[pod]
    cfg = "sendfile off, open_file_cache off" if pod.endswith("-nosendfile") else "image default (sendfile on)"
    name = arm[pod] if arm[pod] != "baseline" else "baseline (unprotected)"
    if pod == b:
        rr, rr_pairs, lr, tg = "1", "1", "1", ""
    else:
        keys = sorted(rps[pod])
        ratios = [rps[pod][k] / rps[b][k] for k in keys]
        lratios = [p99[pod][k] / p99[b][k] for k in keys]
        rr = f"{med(rps[pod].values()) / med(rps[b].values()):.3f}"
        rr_pairs = f"**{med(ratios):.3f}** ({min(ratios):.3f}–{max(ratios):.3f})"
        lr = f"{med(lratios):.2f}"
        tg = f"req/s {met(med(ratios) >= 0.97)}, p99 {met(med(lratios) <= 1.10)}"
    print(f"| {name} | {cfg} | {len(rps[pod])} | {med(rps[pod].values()):.0f} | {rr} | {rr_pairs} | {lat(med(p99[pod].values()))} | {lr} | {tg} |")
b, n = "nginx-baseline", "nginx-baseline-nosendfile"
print()
print(f"sendfile off itself (unprotected): {med(rps[n].values()) / med(rps[b].values()):.3f}× the default config's requests/s (ratio of the baselines' medians; not paired).")
PY
)

env_line="$env_common. $ROUNDS round(s) of ${#PROTECTED[@]} (baseline, protected) pairs, $runs runs of \`wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency\`; socket errors in all runs: $sock_errs."
verify_table=$(
  echo "| pod | arm | nginx config | Seccomp (/proc) | notified syscalls (bundle config.json) | probe | per 4 requests: opens of index.html / sendfile / pread64 (strace) |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${verify[@]}"
)

echo
echo "$table"
echo
echo "$env_line"
echo
echo "$verify_table"
fi

if [ "$LOOPING" = 1 ]; then
loops_table=$(python3 - "$work/loops" <<'PY'
import statistics, sys
med = statistics.median
# runs[(loop, arm)][round] = (p50, p99), in ns
runs, ns = {}, {}
for line in open(sys.argv[1]):
    loop, arm, rnd, p50, p99, _mean, n = line.split()
    runs.setdefault((loop, arm), {})[int(rnd)] = (float(p50), float(p99))
    ns[loop] = n
loops = [
    ("open", "open + close of one allowed file, repeated (/bin/busybox, in the image)", 1.2),
    ("open-first", "open + close, the first of each of N files (created untimed in a fresh /tmp dir)", 10),
    ("open-deny", "open of /etc/passwd: denied (baseline: allowed, open + close)", 10),
    ("exec", "posix_spawn + execve + wait (rampart-probe nop)", 1.05),
    ("connect", "connect to 127.0.0.1:9, closed (ECONNREFUSED)", None),
    ("getpid", "getpid", 1.02),
]
def t(v):
    if v < 10_000: return f"{v:.0f} ns"
    if v < 100_000: return f"{v / 1000:.1f} µs"
    if v < 10_000_000: return f"{v / 1000:.0f} µs"
    return f"{v / 1e6:.1f} ms"
def x(v):
    return f"{v:.3f}×" if v < 2 else f"{v:.2f}×" if v < 100 else f"{v:.0f}×"
def ratios(loop, arm, i):
    a, b = runs[(loop, arm)], runs[(loop, "baseline")]
    return [a[r][i] / b[r][i] for r in sorted(a) if r in b]
def abs_(loop, arm):
    r = runs[(loop, arm)]
    return f"{t(med(v[0] for v in r.values()))} / {t(med(v[1] for v in r.values()))}"
print("| loop (rampart-probe) | N | baseline p50 / p99 | enforce p50 / p99 | enforce ÷ baseline, p50 (min–max) | p99 | target, p50 | seccomp-reads p50 / p99 | seccomp-reads ÷ baseline, p50 | p99 |")
print("|---|---|---|---|---|---|---|---|---|---|")
for loop, label, target in loops:
    e50, e99 = ratios(loop, "enforce", 0), ratios(loop, "enforce", 1)
    s50, s99 = ratios(loop, "seccomp-reads", 0), ratios(loop, "seccomp-reads", 1)
    if target is None:
        tg = "none"
    else:
        tg = f"≤ {target}×: " + ("met" if med(e50) <= target else "**not met**")
    spread = f" ({x(min(e50))}–{x(max(e50))})" if len(e50) > 1 else ""
    print(f"| {label} | {ns[loop]} | {abs_(loop, 'baseline')} | {abs_(loop, 'enforce')} | **{x(med(e50))}**{spread} | {x(med(e99))} | {tg} | {abs_(loop, 'seccomp-reads')} | {x(med(s50))} | {x(med(s99))} |")
PY
)
loops_env="$env_common. $ROUNDS round(s); per round and arm, N calls per loop (the N column); rampart-probe: $probe_note."
[ "${NOTIFY[loops-enforce]}" != "${NOTIFY[loops-seccomp-reads]}" ] \
  || loops_env="$loops_env enforce and seccomp-reads ran under the same notified syscalls: this rampart-nri makes nothing of the label rampart.dev/read-opens=seccomp, so the two arms measure the same thing."
loops_verify=$(
  echo "| pod | arm | container | pod label | Seccomp (/proc) | notified syscalls (bundle config.json) | probes (rampart-probe through CRI exec) |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${loop_verify[@]}"
)
echo
echo "$loops_table"
echo
echo "$loops_env"
echo
echo "$loops_verify"
fi

[ "$DOC" = 1 ] || exit 0
doc=$SRC/docs/benchmarks.md
run_line="\`$make_cmd\` as root on the local node (\`cargo build --release\` of the workspace
binaries, then \`${ENV_ARGS}RAMPART_BIN=target/release bench/native-speed.sh${ARGS:+ $ARGS}\`): release build"
[ "$NGINX" = 1 ] && [ "$LOOPING" = 1 ] && run_line="$run_line; the nginx part and the latency loops in the same run, their rounds alternating"
if [ "$LOOPING" = 1 ]; then
  section=$(cat <<EOF2
## syscall latency in pods (make bench)

$run_line.

Each loop times every call inside the pod with \`rampart-probe\`
(clock_gettime(CLOCK_MONOTONIC) around each call), in busybox pods (\`$LOOPS_IMAGE\`, \`sleep\`
as the entrypoint, no seccomp profile of their own) started through CRI by rampart-kubelet
under the full stack: rampartd, rampart-seccomp and rampart-nri as \`scripts/rampart\` starts
them, one policy directory, the nginx part's pods beside them. The loops run through
\`rampart-kubelet exec\`.

- **baseline**: container \`loops-baseline\`, selected by no policy: no filter.
- **enforce**: container \`loops\`, selected by \`bench/loops-policy.yaml\`: the seed policy's
  file rules (no read under \`/etc/**\` but hostname, hosts and resolv.conf), an egress block of
  192.0.2.0/24 and a process deny-list entry for \`/usr/bin/never-run\`. No loop touches either,
  but with them every connect and exec is decided by policy, as every open is.
- **seccomp-reads**: the same container selection, with the pod label
  \`rampart.dev/read-opens=seccomp\`: every open notified to rampart-seccomp and emulated there,
  and execve notified (the escape hatch, and the design before the file guard). A rampart-nri
  that does not read the label makes this arm the same as enforce (compare their notified syscalls below).

Each round runs every loop in every arm, the arms of a loop back to back in random order and the
loops in random order, after one warm-up pass. Every ratio is the median over rounds of the
arm's p50 (or p99) divided by the baseline's p50 (or p99) in the same round; the p50 / p99
columns are the medians of the rounds' values. The targets (the "native speed" issue: repeated
open ≤ 1.2×, first open ≤ 10×, denied open ≤ 10×, exec ≤ 1.05×, getpid ≤ 1.02×) are read against
enforce's p50 ratio; none fails the run. The denied open's baseline is an allowed open + close of
the same file. The machine is a shared 2-core VM: compare columns within one run, not across runs.

$loops_table

$loops_env

Checked before the loops, for every pod (the bench stops if any check fails): that
\`$OPEN_FILE\`, \`/tmp\` and \`/etc/passwd\` are on the container's root filesystem (no mount
at or above them in its mountinfo), the pod's \`rampart.dev/\` labels as CRI reports them,
the seccomp mode of the container's process in \`/proc/PID/status\`, the notified syscalls in
the bundle's config.json, and probes through CRI exec with their journald records:

$loops_verify
EOF2
)
  printf '%s\n' "$section" | "$SRC/bench/doc-section" "$doc" first
  log "wrote the loops' table to $doc"
fi
if [ "$NGINX" = 1 ]; then
  section=$(cat <<EOF2
## nginx throughput (make bench)

$run_line.

What users compare with in-kernel enforcers that cost a few percent of requests/s.
enforce and audit decide each request's open of the page: the file guard decides the first one
and the kernel remembers the allow (read-only opens are not notified: \`open(writes)\` below);
allowlist puts nothing on the request path.

Pods from the node's \`$IMAGE\` (Debian's nginx, 2 workers, access log to stdout as in the
official image), no seccomp profile of their own (as \`rampart-kubelet run\` and the demo run
them), all started in the same run under one rampartd and one policy directory:

- **baseline**: container \`web\`, selected by no policy: rampart-nri adds nothing, no filter.
- **enforce**: container \`nginx\`, the seed policy
  \`config/examples/disallow-etc-access-for-nginx.yaml\` as shipped. Its file rules decide every
  open, index.html's on every request included.
- **audit**: container \`nginx-audit\`, the same policy with \`mode: audit\`: the same
  decisions, nothing blocked.
- **allowlist**: container \`nginx-allowlist\`, only \`processes: - allowOnly: [/usr/sbin/nginx]\`:
  execs are decided, opens are not. The cost of the filter and of a rule that does not sit on
  the request path.
- each again with \`sendfile off; open_file_cache off;\` in nginx.conf (changed from the node
  through the master's \`/proc/PID/root\`, then SIGHUP: an \`exec sed\` in the pod would be
  blocked by the very policies measured). open_file_cache is off by default, so both variants open
  index.html once per request (checked with strace below); the difference is pread + write
  instead of sendfile.

\`wrk\` loads one pod at a time, at its IP (the pod bridge on this machine). Each round measures
every protected pod once, right next to the baseline pod with the same nginx config (the pair in
random order, the pairs in a new random order each round), so each ratio compares two runs
${DURATION} s apart: on this VM the speed drifts by tens of percent within a minute as other work
starts and stops. **The figure to read is the median of the pairs' ratios**, with their spread;
"÷ baseline (medians)" divides the arm's median by the baseline's median over all its runs. The
targets (the "native speed" issue: req/s ≥ 0.97× and p99 ≤ 1.10× the baseline's) are read
against the medians of the pairs; none fails the run. p99 is wrk's closed-loop latency over
$CONNECTIONS connections, set mostly by scheduling on the 2 vCPUs (wrk, nginx's workers, the
agent and containerd's log copying share them), so a slower arm can show a lower p99: read it as
the tail, not as the cost of one request. Compare rows within one run, never with other runs.

$table

$env_line

Checked before the load, for every pod (the bench stops if any check fails): the seccomp mode of
nginx's master in \`/proc/PID/status\` (0: no filter, 2: filter), the notified syscalls in the
bundle's config.json (where rampart-runc merged them), a probe through CRI exec with its journald
record, and what 4 requests do in the workers (strace from the node):

$verify_table
EOF2
)
  # A new section goes first: it is the figure users look for.
  printf '%s\n' "$section" | "$SRC/bench/doc-section" "$doc" first
  log "wrote the nginx table to $doc"
fi
