#!/usr/bin/env bash
# ycsb-compare.sh: YCSB 0.17.0's own driver against Choir (3 replicas, fsync, majority acks), etcd 3.4
# (3 members, fsync), Redis 7 (a primary and 2 replicas, every write followed by WAIT 2) and JGroups 5.4's
# ReplicatedHashMap (2 member processes and the YCSB process as the third member; a write returns once
# all three applied it in memory, a read is the YCSB process's copy), one system at a time on this
# machine, loopback only, with the same bindings (tests/ycsb: a record is one key holding its 10 fields
# of 100 bytes), the same threads, records and workloads. Prints one comparison table and writes
# throughput.png and p99.png; leaves every run's YCSB output, the CPU use (cpu.txt: the servers', and
# the YCSB process's, which for JGroups includes its member) and logs in $OUT. Stops all it started.
#
#   deploy/bench/ycsb-compare.sh                          # 64 threads, writes-only, A and B, 30 s x 2 each
#   THREADS=16 DURATION=10 RUNS=1 SYSTEMS="choir etcd" deploy/bench/ycsb-compare.sh
#
# Environment (defaults in brackets):
#   THREADS [64] DURATION [30] RUNS [2] RECORDS [10000] WARMUP [20]  (s of writes before the first
#     measured run of each system, not counted: three fresh JVMs need it)
#   WORKLOADS [writes a b]        tests/ycsb/workloads/workload-writes, workloada, workloadb
#   SYSTEMS [choir etcd redis]     jgroups too on request
#   CONNECTIONS [1]               Choir and jetcd clients the YCSB threads share (Redis: one per thread)
#   CHOIR_READ [linearizable]     or sequential
#   CHOIR_PORT [27301] ETCD_PORT [23791] ETCD_PEER_PORT [23801] REDIS_PORT [26379]
#   JGROUPS_PORT [27600] (unicast, from there; FD_SOCK2 100 above) JGROUPS_MCAST_ADDR [239.77.14.1]
#   JGROUPS_MCAST_PORT [27588]
#   CHOIR_DURABILITY [fsync] CHOIR_SETTINGS []   as in compare-etcd.sh
#   OUT [bench-results/ycsb-<date>-<threads>t]  BUILD [1]  KEEP [0]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
THREADS="${THREADS:-64}"
DURATION="${DURATION:-30}"
RUNS="${RUNS:-2}"
RECORDS="${RECORDS:-10000}"
WARMUP="${WARMUP:-20}"
WORKLOADS="${WORKLOADS:-writes a b}"
SYSTEMS="${SYSTEMS:-choir etcd redis}"
CONNECTIONS="${CONNECTIONS:-1}"
CHOIR_READ="${CHOIR_READ:-linearizable}"
CHOIR_PORT="${CHOIR_PORT:-27301}"
ETCD_PORT="${ETCD_PORT:-23791}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-23801}"
REDIS_PORT="${REDIS_PORT:-26379}"
JGROUPS_PORT="${JGROUPS_PORT:-27600}"
JGROUPS_MCAST_ADDR="${JGROUPS_MCAST_ADDR:-239.77.14.1}"
JGROUPS_MCAST_PORT="${JGROUPS_MCAST_PORT:-27588}"
CHOIR_DURABILITY="${CHOIR_DURABILITY:-fsync}"
CHOIR_SETTINGS="${CHOIR_SETTINGS:-}"
BUILD="${BUILD:-1}"
KEEP="${KEEP:-0}"
OUT="${OUT:-bench-results/ycsb-$(date +%Y%m%d-%H%M%S)-${THREADS}t}"

log() { echo "ycsb-compare: $*" >&2; }
die() { log "$*"; exit 1; }

# --- prerequisites ------------------------------------------------------------------------------
need=()
for s in $SYSTEMS; do
  case "$s" in
    choir) ;;
    etcd) command -v etcd >/dev/null && command -v etcdctl >/dev/null || need+=(etcd-server etcd-client) ;;
    redis) command -v redis-server >/dev/null || need+=(redis-server) ;;
    jgroups) ;;
    *) die "SYSTEMS: choir, etcd, redis, jgroups (not $s)" ;;
  esac
done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${need[*]}: run as root (to apt-get install them) or install them"
  log "installing ${need[*]} with apt-get"
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2
  # Debian's packages may start a default etcd (2379) and Redis (6379) under systemd: not ours, and not
  # on our ports.
fi
command -v java >/dev/null || die "java is missing: run deploy/bin/install-prereqs"
if [ "$BUILD" = 1 ]; then
  log "building choir and the YCSB bindings (mvn package -pl deploy,tests/ycsb -am)"
  (cd "$root" && mvn -q -B -Dstyle.color=never -DskipTests package -pl deploy,tests/ycsb -am) >&2
fi
ycsb_cp="$root/tests/ycsb/target/classes:$(cat "$root/tests/ycsb/target/classpath.txt")"
read -r -a choir <<<"${CHOIR_CMD:-$root/deploy/bin/choir}"
export CHOIR_NO_BUILD=1

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
tmp="$(mktemp -d /tmp/choir-ycsb.XXXXXX)"
pids=()

source "$root/deploy/bench/servers.sh"   # the clusters, their endpoints, stop_pids, servers_cleanup
trap servers_cleanup EXIT
trap 'exit 130' INT TERM

# The YCSB arguments of one system: its binding and where its cluster is.
db_args() {
  case "$1" in
    choir) echo "-db io.choir.ycsb.ChoirYcsbClient -p choir.endpoints=$choir_endpoints -p choir.connections=$CONNECTIONS -p choir.read=$CHOIR_READ" ;;
    etcd) echo "-db io.choir.ycsb.EtcdYcsbClient -p etcd.endpoints=$etcd_clients -p etcd.connections=$CONNECTIONS" ;;
    redis) echo "-db io.choir.ycsb.RedisWaitYcsbClient -p redis.port=$REDIS_PORT -p redis.replicas=2" ;;
    jgroups) echo "-db io.choir.ycsb.JGroupsYcsbClient -p jgroups.cluster=choir-bench -p jgroups.mcast_addr=$JGROUPS_MCAST_ADDR -p jgroups.mcast_port=$JGROUPS_MCAST_PORT -p jgroups.bind_port=$JGROUPS_PORT -p jgroups.members=3" ;;
  esac
}
workload_file() {
  case "$1" in
    writes) echo "$root/tests/ycsb/workloads/workload-writes" ;;
    *) echo "$root/tests/ycsb/workloads/workload$1" ;;
  esac
}
server_pids() {
  case "$1" in
    choir) echo "${choir_pids[*]}" ;;
    etcd) echo "${etcd_pids[*]}" ;;
    redis) echo "${redis_pids[*]}" ;;
    jgroups) echo "${jgroups_pids[*]}" ;;
  esac
}
ycsb() {
  java -Xmx2g -XX:+UseG1GC -cp "$ycsb_cp" site.ycsb.Client "$@"
}

{
  echo "date: $(date)"
  echo "host: $(nproc) cpus, $(free -g | awk '/Mem:/{print $2}') GiB memory, $(uname -sr)"
  echo "java: $(java -version 2>&1 | head -1)"
  command -v etcd >/dev/null && echo "etcd: $(etcd --version 2>/dev/null | head -1)"
  command -v redis-server >/dev/null && echo "redis: $(redis-server --version)"
  [[ " $SYSTEMS " == *" jgroups "* ]] && echo "jgroups: $(awk -v RS=: '/\/jgroups-[0-9]/ {print; exit}' <<<"$ycsb_cp" | xargs basename)"
  echo "command: THREADS=$THREADS DURATION=$DURATION RUNS=$RUNS RECORDS=$RECORDS WARMUP=$WARMUP WORKLOADS=\"$WORKLOADS\" SYSTEMS=\"$SYSTEMS\" CONNECTIONS=$CONNECTIONS CHOIR_READ=$CHOIR_READ CHOIR_DURABILITY=$CHOIR_DURABILITY CHOIR_SETTINGS=$CHOIR_SETTINGS deploy/bench/ycsb-compare.sh"
} | tee "$OUT/environment.txt" >&2

for system in $SYSTEMS; do
  n_before=${#pids[@]}
  "start_$system"
  started=("${pids[@]:$n_before}")
  read -r -a args <<<"$(db_args "$system")"
  log "$system: loading $RECORDS records"
  ycsb -load "${args[@]}" -P "$(workload_file writes)" -p recordcount="$RECORDS" -threads 16 \
    >"$OUT/$system-load.out" 2>"$tmp/$system-load.log"
  grep -q 'Return=OK, '"$RECORDS"'$' "$OUT/$system-load.out" || die "$system: the load did not insert every record (see $OUT/$system-load.out)"
  if [ "$WARMUP" -gt 0 ]; then
    log "$system: warming up for ${WARMUP} s"
    ycsb -t "${args[@]}" -P "$(workload_file writes)" -p recordcount="$RECORDS" -p operationcount=100000000 \
      -p maxexecutiontime="$WARMUP" -threads "$THREADS" >/dev/null 2>"$tmp/$system-warmup.log"
  fi
  for w in $WORKLOADS; do
    for r in $(seq 1 "$RUNS"); do
      log "$system: workload $w, run $r of $RUNS (${DURATION} s, $THREADS threads)"
      read -r -a servers <<<"$(server_pids "$system")"
      before="$(cpu_seconds "${servers[@]}")"
      # The YCSB process's user+system CPU too (bash's time of it): for JGroups it holds the third member.
      { TIMEFORMAT='%U %S'; time ycsb -t "${args[@]}" -P "$(workload_file "$w")" -p recordcount="$RECORDS" \
        -p operationcount=100000000 -p maxexecutiontime="$DURATION" -threads "$THREADS" \
        >"$OUT/$system-$w-$r.txt" 2>"$tmp/$system-$w-$r.log"; } 2>"$tmp/$system-$w-$r.time"
      after="$(cpu_seconds "${servers[@]}")"
      client="$(awk '{print $1 + $2}' "$tmp/$system-$w-$r.time")"
      ops="$(awk -F', ' '/^\[OVERALL\], Operations|^\[(READ|UPDATE|INSERT)\], Operations/ {n += $3} END {print n + 0}' "$OUT/$system-$w-$r.txt")"
      note=""
      [ "$system" = jgroups ] && note=" (servers: the 2 member processes; the YCSB process holds the third member)"
      awk -v s="$system" -v w="$w" -v r="$r" -v b="$before" -v a="$after" -v n="$ops" -v c="$client" -v note="$note" \
        'BEGIN { printf "%s %s run %s: servers used %.1f CPU-s for %d operations: %.1f us per operation; the YCSB process %.1f CPU-s: %.1f us per operation%s\n", s, w, r, a - b, n, (n > 0 ? (a - b) * 1e6 / n : 0), c, (n > 0 ? c * 1e6 / n : 0), note }' \
        | tee -a "$OUT/cpu.txt" >&2
    done
  done
  if [ "$system" = choir ]; then
    # Every replica's status and counters (lease reads, reads answered from memory, ...), for the record.
    "${choir[@]}" status --json --endpoints "$choir_endpoints" >"$OUT/choir-status.json" 2>/dev/null || true
  fi
  log "$system: stopping"
  read -r -a servers <<<"$(server_pids "$system")"
  stop_pids "${started[@]}" "${servers[@]}"
done

echo
java -Djava.awt.headless=true -cp "$ycsb_cp" io.choir.ycsb.YcsbReport "$OUT" | tee "$OUT/report.txt"
log "results in $OUT (report.txt, throughput.png, p99.png, cpu.txt)"
