#!/usr/bin/env bash
# nginx throughput with and without rampart, in one run, on the local node (scripts/node up):
# what users compare with in-kernel enforcers. `make bench` builds the release binaries and runs it.
#
# Pods from the node's rampart.local/nginx:latest image, side by side under ONE rampartd and one
# policy directory (each policy selects its arm's pods by container name):
#   baseline   container `web`: no policy selects it, so rampart-nri leaves it alone (no filter)
#   enforce    container `nginx`: the seed policy, config/examples/disallow-etc-access-for-nginx.yaml,
#              as shipped. Its file rules make every open a notification the agent decides
#   audit      container `nginx-audit`: the same policy with `mode: audit` (renamed, and selecting
#              this container instead): the same notifications, nothing blocked
#   allowlist  container `nginx-allowlist`: only a process allow-list (`allowOnly:
#              [/usr/sbin/nginx]`, the image's entrypoint), so only execve/execveat notify
# and each of them again with `sendfile off; open_file_cache off;` (the "-nosendfile" pods): nginx
# reads the file with pread instead of sendfile. (open_file_cache is off by default, in this
# image too, so both variants open index.html once per request; the bench checks that with
# strace.)
#
# Load: wrk from the node to each pod's IP (the pod bridge only), short runs, N rounds; in each
# round every protected pod runs right next to its baseline (same nginx config), pairs in random
# order. Every arm is reported as ratios to that baseline: the machine is shared and noisy, so
# absolute numbers from different runs are not comparable, and no threshold is applied.
#
#   bench/nginx-rps.sh [--doc] [--rounds N] [--duration SECONDS] [--connections N]   (root)
#     --doc   also write the table into docs/benchmarks.md, section
#             "## nginx throughput (make bench)" (replaced if present)
#   RAMPART_BIN   where rampart's binaries are (default target/release; `make bench` builds them)
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
# scripts/rampart reads RAMPART_BIN too: the daemons and rampart-kubelet come from the same build.
RAMPART_BIN=${RAMPART_BIN:-$SRC/target/release}
RAMPART_BIN=$(cd "$RAMPART_BIN" 2>/dev/null && pwd) || { echo "bench: RAMPART_BIN=$RAMPART_BIN does not exist; run 'make bench' (it builds target/release)" >&2; exit 1; }
export RAMPART_BIN
K=$RAMPART_BIN/rampart-kubelet
SEED=$SRC/config/examples/disallow-etc-access-for-nginx.yaml
IMAGE=rampart.local/nginx:latest
NS=rampart-bench-nginx
ROUNDS=5
DURATION=5
CONNECTIONS=16
DOC=0
ARGS="$*"

usage() { echo "usage: bench/nginx-rps.sh [--doc] [--rounds N] [--duration SECONDS] [--connections N]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --doc) DOC=1 ;;
    --rounds) ROUNDS=${2:-}; shift ;;
    --duration) DURATION=${2:-}; shift ;;
    --connections) CONNECTIONS=${2:-}; shift ;;
    -h|--help) usage ;;
    *) echo "bench: unknown argument $1" >&2; usage ;;
  esac
  shift
done
for n in "$ROUNDS" "$DURATION" "$CONNECTIONS"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "bench: '$n' is not a positive number" >&2; usage; }
done

log() { echo "bench: $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it starts rampart's daemons and reads the pods' /proc)"
[ -S "$RAMPART_CRI_SOCKET" ] && [ -f "$NODE_DIR/containerd.pid" ] && kill -0 "$(cat "$NODE_DIR/containerd.pid")" 2>/dev/null \
  || die "the node is not up ($RAMPART_CRI_SOCKET missing or containerd not running); run 'make node-up'"
command -v wrk >/dev/null || die "wrk not found; run 'make setup' (scripts/setup-node installs it) or apt-get install -y wrk"
for t in strace jq curl python3; do command -v "$t" >/dev/null || die "$t not found; run 'make setup'"; done
for b in rampartd rampartctl rampart-seccomp rampart-seccomp-holder rampart-nri rampart-kubelet; do
  [ -x "$RAMPART_BIN/$b" ] || die "$RAMPART_BIN/$b is not built; run 'make bench' (cargo build --release of the workspace binaries)"
done

# The node's pod bridge (config/cni/10-rampart.conflist): the only interface wrk may load.
BRIDGE=$(jq -r '.plugins[] | select(.type == "bridge") | .bridge' "$NODE_DIR"/cni/net.d/*.conflist 2>/dev/null | head -1)
[ -n "$BRIDGE" ] && [ "$BRIDGE" != null ] || die "no CNI bridge configured in $NODE_DIR/cni/net.d; is the node up (make node-up)?"

work=$(mktemp -d /tmp/rampart-nginx-rps.XXXXXX)
POLICIES=$work/policies.d
mkdir -p "$POLICIES" "$work/wrk"

# pod -> arm, container name, nginx config variant; the order here is the table's.
PODS=()
declare -A ARM CNAME VARIANT IP CID MASTER BASE_OF
add_pod() { # POD ARM CONTAINER VARIANT
  PODS+=("$1"); ARM[$1]=$2; CNAME[$1]=$3; VARIANT[$1]=$4
}
for v in default nosendfile; do
  s=; [ "$v" = nosendfile ] && s=-nosendfile
  add_pod "nginx-baseline$s" baseline web "$v"
  add_pod "nginx-enforce$s" enforce nginx "$v"
  add_pod "nginx-audit$s" audit nginx-audit "$v"
  add_pod "nginx-allowlist$s" allowlist nginx-allowlist "$v"
  for p in "nginx-baseline$s" "nginx-enforce$s" "nginx-audit$s" "nginx-allowlist$s"; do BASE_OF[$p]=nginx-baseline$s; done
done

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
  || die "could not derive the audit policy from $SEED (its metadata/mode/selector lines changed); update bench/nginx-rps.sh"
grep -q '^  selector: {containerNames: \[nginx\]}$' "$SEED" || die "$SEED no longer selects containerNames [nginx]; update bench/nginx-rps.sh"
cat > "$POLICIES/30-allowlist.yaml" <<'EOF'
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
EOF
"$RAMPART_BIN/rampartctl" policy lint "$POLICIES" >&2 || die "the bench's policies do not lint"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# --- rampart's daemons with this policy directory. Stop first: `up` keeps daemons that already
# run, and those could be reading another directory.
"$SRC/scripts/rampart" down >/dev/null
RAMPART_POLICY_DIR=$POLICIES "$SRC/scripts/rampart" up >&2
since=$(date +%s)

# --- pods: all of them after rampart is up, so the baseline runs under exactly the same node
# (rampart-nri sees it too, and finds no policy for it).
for p in "${PODS[@]}"; do
  timeout 60 "$K" rm "$p" -n "$NS" >/dev/null 2>&1 || true # a pod left by an interrupted run
  labels=()
  [ "${ARM[$p]}" = baseline ] || labels=(--label app=nginx)
  started_pods+=("$p")
  out=$("$K" run "$p" -n "$NS" -c "${CNAME[$p]}" "${labels[@]}" --image "$IMAGE" -o json) \
    || die "pod $NS/$p did not start (see: $K logs $p -n $NS, after --keep-on-failure)"
  IP[$p]=$(jq -r .ip <<<"$out"); CID[$p]=$(jq -r .containerId <<<"$out")
  [[ ${IP[$p]} =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "pod $p has no IPv4 address (got '${IP[$p]}')"
  # Load goes to the pod network on this machine only: the IP must be on the node's CNI bridge,
  # directly (no gateway), or we refuse to load it.
  route=$(ip -o route get "${IP[$p]}" 2>/dev/null) || die "no route to pod $p's IP ${IP[$p]}"
  [[ $route == *" dev $BRIDGE "* && $route != *" via "* ]] \
    || die "pod $p's IP ${IP[$p]} is not on the node's bridge $BRIDGE ($route); refusing to load it"
  MASTER[$p]=$("$K" inspect "$p" -n "$NS" | jq -r .info.pid)
  [[ ${MASTER[$p]} =~ ^[0-9]+$ ]] && [ "${MASTER[$p]}" != 0 ] || die "no pid for pod $p's container"
  log "pod $p (${ARM[$p]}, container ${CNAME[$p]}): ${IP[$p]}, nginx master pid ${MASTER[$p]}"
done
for p in "${PODS[@]}"; do
  for _ in $(seq 100); do curl -fsS -o /dev/null --max-time 1 "http://${IP[$p]}/" 2>/dev/null && break; sleep 0.1; done
  curl -fsS -o /dev/null --max-time 2 "http://${IP[$p]}/" || die "pod $p does not serve http://${IP[$p]}/"
done

workers() { { pgrep -P "$1" || true; } | sort -n | tr '\n' ' '; }

# --- the -nosendfile pods: change nginx.conf from the node through the master's /proc/PID/root
# and reload with SIGHUP. Not with `exec sed` in the pod: the seed policy blocks sed's read of
# /etc/nginx/nginx.conf (only /usr/sbin/nginx may read /etc), and the allow-list blocks the exec
# of sed and of `nginx -s reload` alike. The reload is nginx's own: the master re-reads the file,
# forks new workers and retires the old ones.
for p in "${PODS[@]}"; do
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
jq_notify='[.linux.seccomp.syscalls[]? | select(.action == "SCMP_ACT_NOTIFY") | .names[]] | join(",")'
record() { # POD ACTION: wait up to 5 s for a rampart record of this pod with this action
  local j
  for _ in $(seq 50); do
    j=$(journalctl --no-pager -q -o cat SYSLOG_IDENTIFIER=rampart RAMPART_POD="$1" RAMPART_ACTION="$2" --since "@$since" 2>/dev/null | tail -1)
    [ -n "$j" ] && { echo "$j"; return 0; }
    sleep 0.1
  done
  return 1
}
for p in "${PODS[@]}"; do
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
      [[ ,$notify, == *,openat,* ]] || die "pod $p: openat is not notified ($notify)"
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
      [[ ,$notify, == *,execve,* ]] || die "pod $p: execve is not notified ($notify)"
      ! "$K" exec "$p" -n "$NS" -- cat /etc/hostname >/dev/null 2>&1 || die "pod $p: exec of cat was not blocked"
      record "$p" Blocked >/dev/null || die "pod $p: no Blocked record in journald for the exec of cat"
      probe="exec cat: blocked, Blocked record in journald" ;;
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
log "verified: baseline pods unfiltered, protected pods under their policies, nginx config as intended"

# --- load. wrk against each pod's IP; a 1 s warm-up first (connections, page cache, the agent's
# per-container state), then ROUNDS rounds. A round measures every protected pod once, each right
# next to its baseline (the unprotected pod with the same nginx config), the pair in random order
# and the pairs in a new random order each round: the VM's speed drifts by tens of percent within
# a minute when other work starts or stops, and a ratio of two runs 5 s apart sees little of it.
# So each baseline pod runs once per protected arm per round.
run_wrk() { # POD SECONDS OUT
  wrk -t1 -c"$CONNECTIONS" -d"$2"s --latency "http://${IP[$1]}/" > "$3" 2>&1 || die "wrk against $1 failed: $(tail -3 "$3")"
}
for p in "${PODS[@]}"; do run_wrk "$p" 1 "$work/wrk/warmup"; done
PROTECTED=()
for p in "${PODS[@]}"; do [ "${ARM[$p]}" = baseline ] || PROTECTED+=("$p"); done
: > "$work/runs"
for r in $(seq "$ROUNDS"); do
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
  log "round $r/$ROUNDS done (${order[*]})"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

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

table_order=$(printf '%s\n' "${PODS[@]}")
table=$(python3 - "$work/results" <<PY
import statistics, sys
order = """$table_order""".split()
base_of = {$(for p in "${PODS[@]}"; do printf '"%s": "%s", ' "$p" "${BASE_OF[$p]}"; done)}
arm = {$(for p in "${PODS[@]}"; do printf '"%s": "%s", ' "$p" "${ARM[$p]}"; done)}
# rps[pod][(round, pair)]: a protected pod has one run per round; a baseline one per pair.
rps, p99 = {}, {}
for line in open(sys.argv[1]):
    pod, rnd, pair, r, l = line.split()[:5]
    rps.setdefault(pod, {})[(int(rnd), pair)] = float(r)
    p99.setdefault(pod, {})[(int(rnd), pair)] = float(l)
med = statistics.median
def lat(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"
print("| arm | nginx config | runs | req/s, median | ÷ baseline (medians) | ÷ baseline, median of pairs (min–max) | p99 latency, median | p99 ÷ baseline, median of pairs |")
print("|---|---|---|---|---|---|---|---|")
for pod in order:
    b = base_of[pod]
    cfg = "sendfile off, open_file_cache off" if pod.endswith("-nosendfile") else "image default (sendfile on)"
    name = arm[pod] if arm[pod] != "baseline" else "baseline (unprotected)"
    if pod == b:
        rr, rr_pairs, lr = "1", "1", "1"
    else:
        keys = sorted(rps[pod])
        ratios = [rps[pod][k] / rps[b][k] for k in keys]
        lratios = [p99[pod][k] / p99[b][k] for k in keys]
        rr = f"{med(rps[pod].values()) / med(rps[b].values()):.3f}"
        rr_pairs = f"**{med(ratios):.3f}** ({min(ratios):.3f}–{max(ratios):.3f})"
        lr = f"{med(lratios):.2f}"
    print(f"| {name} | {cfg} | {len(rps[pod])} | {med(rps[pod].values()):.0f} | {rr} | {rr_pairs} | {lat(med(p99[pod].values()))} | {lr} |")
b, n = "nginx-baseline", "nginx-baseline-nosendfile"
print()
print(f"sendfile off itself (unprotected): {med(rps[n].values()) / med(rps[b].values()):.3f}× the default config's requests/s (ratio of the baselines' medians; not paired).")
PY
)

env_line="$(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), a shared VM; load average $load_before before, $load_after after. $ROUNDS rounds of ${#PROTECTED[@]} (baseline, protected) pairs, $runs runs of \`wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency\`; socket errors in all runs: $sock_errs."
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

if [ "$DOC" = 1 ]; then
  doc=$SRC/docs/benchmarks.md
  heading="## nginx throughput (make bench)"
  make_cmd="make bench"; [ -z "$ARGS" ] || make_cmd="make bench BENCH_ARGS=\"$ARGS\""
  section=$(cat <<EOF
$heading

\`$make_cmd\` as root on the local node (\`cargo build --release\` of the
workspace binaries, then \`RAMPART_BIN=target/release bench/nginx-rps.sh${ARGS:+ $ARGS}\`): release build.
What users compare with in-kernel enforcers that cost a few percent of requests/s. enforce and
audit pay a round trip to rampart-seccomp for each request's open of the page (see "seccomp agent
latency" below for what one costs); allowlist puts nothing on the request path.

Pods from the node's \`$IMAGE\` (Debian's nginx, 2 workers, access log to stdout as in the
official image), no seccomp profile of their own (as \`rampart-kubelet run\` and the demo run
them), all started in the same run under one rampartd and one policy directory:

- **baseline**: container \`web\`, selected by no policy: rampart-nri adds nothing, no filter.
- **enforce**: container \`nginx\`, the seed policy
  \`config/examples/disallow-etc-access-for-nginx.yaml\` as shipped. Its file rules notify every
  open (open/openat/openat2/creat; rename/link too), so each request's open
  of index.html is a round trip to rampart-seccomp, which resolves, decides and emulates it.
- **audit**: container \`nginx-audit\`, the same policy with \`mode: audit\`: the same
  notifications, nothing blocked.
- **allowlist**: container \`nginx-allowlist\`, only \`processes: - allowOnly: [/usr/sbin/nginx]\`:
  execve/execveat notify, opens do not. The cost of the filter and of a rule that does not sit on
  the request path.
- each again with \`sendfile off; open_file_cache off;\` in nginx.conf (changed from the node
  through the master's \`/proc/PID/root\`, then SIGHUP: an \`exec sed\` in the pod would be
  blocked by the very policies measured). open_file_cache is off by default, so both variants open
  index.html once per request (checked with strace below); the difference is pread + write
  instead of sendfile.

\`wrk\` loads one pod at a time, at its IP (the pod bridge on this machine). Each round measures
every protected pod once, right next to the baseline pod with the same nginx config (the pair in
random order, the pairs in a new random order each round), so each ratio compares two runs 5 s
apart: on this VM the speed drifts by tens of percent within a minute as other work starts and
stops. **The figure to read is the median of the pairs' ratios**, with their spread; "÷ baseline
(medians)" divides the arm's median by the baseline's median over all its runs. p99 is wrk's
closed-loop latency over 16 connections, set mostly by scheduling on the 2 vCPUs (wrk, nginx's
workers and the agent share them), so a slower arm can show a lower p99: read it as the tail,
not as the cost of one request. The machine is a shared 2-core VM (wrk, nginx's two workers, the agent and containerd's
log copying all share the 2 vCPUs): compare rows within one run, never with other runs.

$table

$env_line

Checked before the load, for every pod (the bench stops if any check fails): the seccomp mode of
nginx's master in \`/proc/PID/status\` (0: no filter, 2: filter), the notified syscalls in the
bundle's config.json (where rampart-runc merged them), a probe through CRI exec with its journald
record, and what 4 requests do in the workers (strace from the node):

$verify_table
EOF
)
  # A new section goes first: it is the figure users look for.
  printf '%s\n' "$section" | "$SRC/bench/doc-section" "$doc" first
  log "wrote the table to $doc"
fi
