#!/usr/bin/env bash
# cli-latency.sh: the wall time of one `choir` CLI call, from the shell's fork to the process's exit,
# as a user sees it. Starts a fresh local 3-replica cluster (loopback, non-default ports and multicast
# group), writes one key, then times RUNS calls of each case, interleaved:
#   get         choir get KEY against the running cluster (a linearizable read on the primary)
#   put         choir put KEY VALUE (opens and closes a session)
#   no-server   choir get KEY with nothing listening on the endpoint (must answer at once, exit 3)
# and prints the median, p90 and max wall time of each, and the median and p90 of the CPU time (user +
# system) the call used, in milliseconds. The cluster is stopped at the end.
#
#   deploy/bench/cli-latency.sh
#   RUNS=20 deploy/bench/cli-latency.sh
#   ENDPOINTS=127.0.0.1:27301 deploy/bench/cli-latency.sh    # against a cluster already running
#
# Environment (defaults in brackets): RUNS [10] CHOIR_PORT [27601] BUILD [0: 1 builds the distribution
#   first, with mvn package, never install] ENDPOINTS [empty: start a cluster] NO_SERVER_PORT [27699]
#   CHOIR [deploy/bin/choir of this checkout]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUNS="${RUNS:-10}"
CHOIR_PORT="${CHOIR_PORT:-27601}"
BUILD="${BUILD:-0}"
ENDPOINTS="${ENDPOINTS:-}"
NO_SERVER_PORT="${NO_SERVER_PORT:-27699}"
CHOIR="${CHOIR:-$root/deploy/bin/choir}"

log() { echo "cli-latency: $*" >&2; }
die() { log "$*"; exit 1; }

if [ "$BUILD" = 1 ]; then
  log "building the distribution (mvn package -pl deploy -am, no tests)"
  (cd "$root" && mvn -q -B -Dstyle.color=never -DskipTests package -pl deploy -am) >&2
  touch "$root/deploy/target/choir/.built" # the launcher's stamp: without it, it would build (install) again
fi
[ -f "$root/deploy/target/choir/.built" ] \
  || die "no distribution in $root/deploy/target/choir (its .built stamp is missing): run with BUILD=1"
export CHOIR_NO_BUILD=1
tmp="$(mktemp -d /tmp/choir-cli-latency.XXXXXX)"
cluster_pid=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$cluster_pid" ]; then
    kill -TERM -- "-$cluster_pid" 2>/dev/null || kill -TERM "$cluster_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$cluster_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$cluster_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$ENDPOINTS" ]; then
  dir="$tmp/cluster"
  "$CHOIR" cluster init --replicas 3 --dir "$dir" --base-port "$CHOIR_PORT" --durability buffered >/dev/null
  # a group of its own, not the default one another local cluster may use
  sed -i "s/^multicast_group: .*/multicast_group: 239.255.91.17:$((CHOIR_PORT + 199))/" "$dir"/node*.yaml
  setsid "$CHOIR" cluster up --dir "$dir" >"$dir/cluster.log" 2>&1 &
  cluster_pid=$!
  ENDPOINTS="127.0.0.1:${CHOIR_PORT},127.0.0.1:$((CHOIR_PORT + 1)),127.0.0.1:$((CHOIR_PORT + 2))"
fi
healthy=
for _ in $(seq 1 120); do
  if "$CHOIR" put cli-latency/key value --endpoints "$ENDPOINTS" --timeout-ms 2000 >/dev/null 2>&1; then
    healthy=1
    break
  fi
  sleep 0.5
done
[ -n "$healthy" ] || die "the cluster at $ENDPOINTS did not take a write"
if (exec 3<>"/dev/tcp/127.0.0.1/$NO_SERVER_PORT") 2>/dev/null; then
  die "something listens on 127.0.0.1:$NO_SERVER_PORT: set NO_SERVER_PORT to a free port"
fi

# one timed call: appends its wall time and its CPU time (user + system, ms) to $tmp/$1.ms and checks
# its exit code. On a loaded machine the wall time varies with the load; the CPU time much less.
timed() {
  local name="$1" want="$2" rc=0 t TIMEFORMAT='%R %U %S'
  shift 2
  t="$( { time "$CHOIR" "$@" >/dev/null 2>"$tmp/$name.err" || echo "rc=$?" >"$tmp/$name.rc"; } 2>&1 )"
  if [ -f "$tmp/$name.rc" ]; then rc="$(sed 's/rc=//' "$tmp/$name.rc")"; rm -f "$tmp/$name.rc"; fi
  [ "$rc" = "$want" ] || die "$name: exit $rc, expected $want: $(head -3 "$tmp/$name.err")"
  echo "$t" | awk '{printf "%d %d\n", $1 * 1000, ($2 + $3) * 1000}' >>"$tmp/$name.ms"
}

log "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
for i in $(seq 1 "$RUNS"); do
  timed get 0 get cli-latency/key --endpoints "$ENDPOINTS"
  timed put 0 put cli-latency/key "value-$i" --endpoints "$ENDPOINTS"
  timed no-server 3 get cli-latency/key --endpoints "127.0.0.1:$NO_SERVER_PORT"
done
log "no-server prints: $(cat "$tmp/no-server.err")"

log "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
printf '%-10s %5s %10s %8s %8s %12s %10s\n' case runs wall_median wall_p90 wall_max cpu_median cpu_p90
for name in get put no-server; do
  # nearest-rank percentiles, in ms
  awk -v n="$name" '
    function pct(arr, k, q,   i) { i = int(q * k + 0.999999); return arr[i < 1 ? 1 : i] }
    function med(arr, k) { return k % 2 ? arr[(k + 1) / 2] : (arr[k / 2] + arr[k / 2 + 1]) / 2 }
    function isort(arr, k,   i, j, t) { for (i = 2; i <= k; i++) { t = arr[i]; for (j = i - 1; j > 0 && arr[j] > t; j--) arr[j + 1] = arr[j]; arr[j + 1] = t } }
    { w[NR] = $1; c[NR] = $2 }
    END {
      isort(w, NR); isort(c, NR)
      printf "%-10s %5d %10.0f %8d %8d %12.0f %10d\n", n, NR, med(w, NR), pct(w, NR, 0.9), w[NR], med(c, NR), pct(c, NR, 0.9)
    }' "$tmp/$name.ms"
done
