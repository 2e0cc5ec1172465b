#!/usr/bin/env bash
# compare-etcd.sh: Choir (3 replicas) against etcd 3.4 (3 members), both on this machine, loopback only,
# both durable (fsync before acknowledging), driven by the same closed-loop engine with the same
# concurrency, value size and write ratio. Prints both summaries and the ratios; leaves everything in
# $OUT (result.json, plots, server counters, logs). Stops all it started.
#
#   deploy/bench/compare-etcd.sh                    # 64 clients, 100-byte values, writes only, 30 s + 30 s warmup
#   CLIENTS=16 DURATION=20 deploy/bench/compare-etcd.sh
#
# Environment (defaults in brackets):
#   CLIENTS [64] DURATION [30] WARMUP [30] VALUE_SIZE [100] WRITE_RATIO [1.0] KEYS [100000] SEED [42]
#                                 (the warmup is long because three fresh server JVMs need it; see
#                                 docs/benchmarks.md)
#   CONNECTIONS [1]               client connections (ChoirClients / jetcd clients) the workers share; both
#                                 stores were measured fastest with 1 (docs/benchmarks.md); empty = min(CLIENTS,4)
#   ETCD_LEADER_ONLY [1]          etcd driver talks to the leader only (its fastest setup); 0 = all members
#   ETCD_PORT [23791]             client ports ETCD_PORT..+2; peer ports ETCD_PEER_PORT [23801]..+2
#   CHOIR_DURABILITY [fsync]      buffered only to see where Choir's time goes (not a fair comparison)
#   CHOIR_SETTINGS []             extra replica settings, comma-separated key=value (e.g. max_unsynced_batches=2)
#   CHOIR_PORT [27301]            Choir base port (clients 27301..27303, peers +100, multicast +199)
#   OUT [bench-results/compare-<date>-<clients>c]   where results go
#   ONLY [both]                   choir | etcd | both
#   BUILD [1]                     0 = do not run Maven (use what target/ has)
#   CHOIR_CMD [deploy/bin/choir]  the choir command to run (e.g. a wrapper around a saved distribution)
#   KEEP [0]                      1 = keep the temporary data folders
set -euo pipefail
src="${BASH_SOURCE[0]}"
root="$(cd "$(dirname "$src")/../.." && pwd)"

CLIENTS="${CLIENTS:-64}"
DURATION="${DURATION:-30}"
WARMUP="${WARMUP:-30}"
VALUE_SIZE="${VALUE_SIZE:-100}"
WRITE_RATIO="${WRITE_RATIO:-1.0}"
KEYS="${KEYS:-100000}"
SEED="${SEED:-42}"
CONNECTIONS="${CONNECTIONS-1}"
ETCD_LEADER_ONLY="${ETCD_LEADER_ONLY:-1}"
ETCD_PORT="${ETCD_PORT:-23791}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-23801}"
CHOIR_PORT="${CHOIR_PORT:-27301}"
CHOIR_DURABILITY="${CHOIR_DURABILITY:-fsync}"
CHOIR_SETTINGS="${CHOIR_SETTINGS:-}"
ONLY="${ONLY:-both}"
BUILD="${BUILD:-1}"
KEEP="${KEEP:-0}"
OUT="${OUT:-bench-results/compare-$(date +%Y%m%d-%H%M%S)-${CLIENTS}c}"

log() { echo "compare-etcd: $*" >&2; }
die() { log "$*"; exit 1; }

# --- prerequisites ------------------------------------------------------------------------------
if [ "$ONLY" != choir ] && { ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; }; then
  [ "$(id -u)" = 0 ] || die "etcd is missing: run as root (to apt-get install etcd-server etcd-client) or install them"
  log "installing etcd-server etcd-client with apt-get"
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends etcd-server etcd-client >&2
  # Debian's package may start a default single-member etcd on 2379 under systemd; it is not ours.
fi
command -v java >/dev/null || die "java is missing: run deploy/bin/install-prereqs"
if [ "$BUILD" = 1 ]; then
  log "building choir and the etcd driver (mvn install -pl deploy,tests/bench -am)"
  (cd "$root" && mvn -q -B -Dstyle.color=never -DskipTests install -pl deploy,tests/bench -am) >&2
fi
bench_cp="$root/tests/bench/target/classes:$(cat "$root/tests/bench/target/classpath.txt")"
read -r -a choir <<<"${CHOIR_CMD:-$root/deploy/bin/choir}"
export CHOIR_NO_BUILD=1   # built above (or on purpose not): the launcher must not rebuild mid-run

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
tmp="$(mktemp -d /tmp/choir-vs-etcd.XXXXXX)"
pids=()

source "$root/deploy/bench/servers.sh"   # the clusters, their endpoints, stop_pids, servers_cleanup
trap servers_cleanup EXIT
trap 'exit 130' INT TERM


# Runs "$@" (one bench) and appends the servers' CPU use and the load during it to $OUT/cpu.txt.
measured() {
  local name="$1" before after load0 load1 t0 t1; shift
  local servers=("${etcd_pids[@]}")
  [ "$name" = choir ] && servers=("${choir_pids[@]}")
  before="$(cpu_seconds "${servers[@]}")"; load0="$(cut -d' ' -f1-3 /proc/loadavg)"; t0="$(date +%s)"
  "$@"
  after="$(cpu_seconds "${servers[@]}")"; load1="$(cut -d' ' -f1-3 /proc/loadavg)"; t1="$(date +%s)"
  awk -v n="$name" -v b="$before" -v a="$after" -v s="$((t1 - t0))" -v l0="$load0" -v l1="$load1" \
    'BEGIN{printf "%s: servers used %.1f CPU-s in %d s wall (%.2f cores of %d), load before %s, after %s\n", n, a-b, s, (a-b)/s, '"$(nproc)"', l0, l1}' \
    | tee -a "$OUT/cpu.txt" >&2
}

flags=(--clients "$CLIENTS" --duration "$DURATION" --warmup "$WARMUP" --value-size "$VALUE_SIZE"
  --write-ratio "$WRITE_RATIO" --keys "$KEYS" --seed "$SEED")
[ -n "$CONNECTIONS" ] && flags+=(--connections "$CONNECTIONS")

run_choir() {
  log "choir bench ${flags[*]}"
  "${choir[@]}" status --counters --endpoints "$choir_endpoints" >"$OUT/choir-status-before.txt" 2>&1 || true
  CHOIR_JAVA_OPTS="-Djava.awt.headless=true" measured choir "${choir[@]}" bench \
    --endpoints "$choir_endpoints" "${flags[@]}" --out "$OUT/choir" | tee "$OUT/choir-summary.txt"
  "${choir[@]}" status --counters --endpoints "$choir_endpoints" >"$OUT/choir-status-after.txt" 2>&1 || true
}

run_etcd() {
  local extra=()
  [ "$ETCD_LEADER_ONLY" = 1 ] && extra+=(--leader-only)
  log "etcd bench ${flags[*]} ${extra[*]}"
  measured etcd java -Djava.awt.headless=true -XX:+UseG1GC -cp "$bench_cp" io.choir.bench.EtcdBench \
    --endpoints "$etcd_clients" "${flags[@]}" "${extra[@]}" --out "$OUT/etcd" | tee "$OUT/etcd-summary.txt"
  ETCDCTL_API=3 etcdctl --endpoints="$etcd_clients" endpoint status -w table >"$OUT/etcd-status-after.txt" 2>&1 || true
  for i in 1 2 3; do
    { echo "# member m$i"; curl -s "http://127.0.0.1:$((ETCD_PORT + i - 1))/metrics" \
        | grep -E '^etcd_disk_(wal_fsync|backend_commit)_duration_seconds_(sum|count)|^etcd_server_proposals_committed_total' || true
    } >>"$OUT/etcd-metrics-after.txt"
  done
}

{
  echo "date: $(date)"
  echo "host: $(nproc) cpus, $(free -g | awk '/Mem:/{print $2}') GiB memory, $(uname -sr)"
  echo "java: $(java -version 2>&1 | head -1)"
  command -v etcd >/dev/null && echo "etcd: $(etcd --version 2>/dev/null | head -1)"
  echo "command: CLIENTS=$CLIENTS DURATION=$DURATION WARMUP=$WARMUP VALUE_SIZE=$VALUE_SIZE WRITE_RATIO=$WRITE_RATIO KEYS=$KEYS SEED=$SEED CONNECTIONS=$CONNECTIONS ETCD_LEADER_ONLY=$ETCD_LEADER_ONLY CHOIR_DURABILITY=$CHOIR_DURABILITY CHOIR_SETTINGS=$CHOIR_SETTINGS ONLY=$ONLY deploy/bench/compare-etcd.sh"
} | tee "$OUT/environment.txt" >&2

case "$ONLY" in
  both) start_etcd; start_choir; run_etcd; run_choir ;;
  etcd) start_etcd; run_etcd ;;
  choir) start_choir; run_choir ;;
  *) die "ONLY must be choir, etcd or both" ;;
esac

if [ "$ONLY" = both ]; then
  echo
  java -cp "$bench_cp" io.choir.bench.Compare "$OUT/choir/result.json" "$OUT/etcd/result.json" "$OUT/compare.json" \
    | tee "$OUT/compare.txt"
fi
log "results in $OUT"
