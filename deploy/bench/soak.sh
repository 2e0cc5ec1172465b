#!/usr/bin/env bash
# soak.sh: a long run at a steady paced load that reports, every minute, the p99 of that minute and
# what the replicas hold (issue 14, item 5): heap after GC, resident set, disk use and log entries,
# with a verdict on growth at the end. It starts a 3-replica cluster on loopback with fsync durability
# (servers.sh's start_choir, each replica's metrics endpoint on its own port) and runs one `choir bench`
# paced to RATE operations per second (WRITE_RATIO of them writes) with one-minute ticks, so each of
# its progress lines carries the p99 of one minute. After every minute it reads, per replica:
#   heap after GC   `jcmd PID GC.run` (System.gc(): with G1 a full, stop-the-world collection) and then
#                   GC.heap_info's "used", in one attach: the heap that survives a full collection, the
#                   live data. The collection pauses that replica (tens of ms); the pause lands in the
#                   next minute's latencies, alike in every minute.
#   RSS             VmRSS of /proc/PID/status
#   disk            du -sk of its data folder (log, state, RocksDB's files), in allocated blocks
#   WAL             the allocated blocks of RocksDB's write-ahead log files in it (NNNNNN.log): most of the
#                   disk, a sawtooth bounded by max_total_wal_size (256 MiB), so the report judges the disk
#                   without it and the WAL against that bound (SoakReport's wal_cap_mib, 320)
#   log entries     choir_log_entries of its metrics endpoint (log_retention_ops bounds it: truncation)
# and prints one line; everything goes to $OUT/soak.tsv. At the end io.choir.bench.SoakReport (tests/bench)
# fits a line through the last two thirds of each series (p99; per replica heap after GC, disk, log
# entries) and calls a series growing when its rise over that window passes the larger of a floor and
# 10 % of its mean; it prints the table and the verdict and writes soak.json, soak.png (the four series)
# and index.html. The exit code is 1 when something grows.
#
#   deploy/bench/soak.sh                   # 30 minutes
#   MINUTES=5 deploy/bench/soak.sh
#
# The key space (KEYS, 50,000) is larger than the log keeps (log_retention_ops LOG_RETENTION_OPS, 20,000
# entries), so the log truncates every few seconds and old values are overwritten in the state, and at
# 2,000 writes/s the key space is full after a minute or two: from then on nothing needs to grow.
#
# Environment (defaults in brackets):
#   MINUTES [30] RATE [2500] WRITE_RATIO [0.8] (2,000 writes/s + 500 linearizable reads/s)
#   VALUE_SIZE [512] KEYS [50000] CLIENTS [64] (at most in flight) WARMUP [30] SEED [42]
#   LOG_RETENTION_OPS [20000]   CHOIR_SETTINGS [log_retention_ops=$LOG_RETENTION_OPS]
#   CHOIR_SERVER_JAVA_OPTS [-Xmx512m -XX:+UseG1GC]
#   CHOIR_PORT [29301] (clients ..+2, peers +100, multicast +199)  CHOIR_METRICS_PORT [29391] (..+2)
#   LIMITS []   SoakReport's limits, space separated: heap_floor_mib=16 disk_floor_mib=64
#               log_floor_entries=1000 p99_floor_ms=5 share=0.10 wal_cap_mib=320
#   OUT [bench-results/soak-<date>]   BUILD [1] (0: use what target/ has)   KEEP [0]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MINUTES="${MINUTES:-30}"
RATE="${RATE:-2500}"
WRITE_RATIO="${WRITE_RATIO:-0.8}"
VALUE_SIZE="${VALUE_SIZE:-512}"
KEYS="${KEYS:-50000}"
CLIENTS="${CLIENTS:-64}"
WARMUP="${WARMUP:-30}"
SEED="${SEED:-42}"
LOG_RETENTION_OPS="${LOG_RETENTION_OPS:-20000}"
CHOIR_SETTINGS="${CHOIR_SETTINGS-log_retention_ops=$LOG_RETENTION_OPS}"
export CHOIR_SERVER_JAVA_OPTS="${CHOIR_SERVER_JAVA_OPTS:--Xmx512m -XX:+UseG1GC}"
CHOIR_PORT="${CHOIR_PORT:-29301}"
CHOIR_METRICS_PORT="${CHOIR_METRICS_PORT:-29391}"
CHOIR_DURABILITY=fsync
LIMITS="${LIMITS:-}"
BUILD="${BUILD:-1}"
KEEP="${KEEP:-0}"
OUT="${OUT:-bench-results/soak-$(date +%Y%m%d-%H%M%S)}"
ETCD_PORT=0 ETCD_PEER_PORT=0   # servers.sh names etcd's ports too; no etcd runs here

log() { echo "soak: $*" >&2; }
die() { log "$*"; exit 1; }
[[ "$MINUTES" =~ ^[1-9][0-9]*$ ]] || die "MINUTES must be a positive whole number: $MINUTES"

command -v java >/dev/null || die "java is missing: run deploy/bin/install-prereqs"
command -v jcmd >/dev/null || die "jcmd is missing (a JDK's, not a JRE's)"
command -v curl >/dev/null || die "curl is missing"
if [ "$BUILD" = 1 ]; then
  # package, not install: install would overwrite the SNAPSHOT artifacts in ~/.m2 other checkouts use
  log "building the distribution and tests/bench (mvn package -pl deploy,tests/bench -am, no tests)"
  (cd "$root" && mvn -q -B ${MVN_FLAGS:-} -Dstyle.color=never -DskipTests package -pl deploy,tests/bench -am) >&2
  touch "$root/deploy/target/choir/.built"
fi
[ -f "$root/deploy/target/choir/.built" ] || die "no distribution in deploy/target/choir: run with BUILD=1"
[ -f "$root/tests/bench/target/classpath.txt" ] || die "tests/bench is not built: run with BUILD=1"
bench_cp="$root/tests/bench/target/classes:$(cat "$root/tests/bench/target/classpath.txt")"
choir=("$root/deploy/bin/choir")
export CHOIR_NO_BUILD=1
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
tmp="$(mktemp -d /tmp/choir-soak.XXXXXX)"
pids=()
bench_pid=
source "$root/deploy/bench/servers.sh"   # start_choir, stop_pids, servers_cleanup, choir_endpoints
cleanup() {
  if [ -n "$bench_pid" ]; then kill -TERM "$bench_pid" 2>/dev/null || true; fi
  servers_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The JVM of replica $1 among choir_pids (the one started with nodeN.yaml).
pid_of_replica() {
  local p
  for p in "${choir_pids[@]}"; do
    if tr '\0' ' ' <"/proc/$p/cmdline" | grep -q "node$1\.yaml"; then echo "$p"; return 0; fi
  done
  return 1
}

printf 'GC.run\nGC.heap_info\n' >"$tmp/jcmd-commands"
# Bytes of heap in use right after a full collection of JVM $1 (-1 when jcmd fails).
heap_after_gc() {
  { jcmd "$1" -f "$tmp/jcmd-commands" 2>/dev/null || true; } | awk '
    / total [0-9]+K, used [0-9]+K/ && !done { for (i = 1; i < NF; i++) if ($i == "used") { v = $(i + 1); sub(/K.*/, "", v); print v * 1024; done = 1 } }
    END { if (!done) print -1 }'
}

rss_of() { awk '/^VmRSS:/ { print $2 * 1024; f = 1 } END { if (!f) print -1 }' "/proc/$1/status" 2>/dev/null || echo -1; }

disk_of() { du -sk "$1" 2>/dev/null | awk '{ print $1 * 1024 }' || echo -1; }

# Bytes allocated to the RocksDB write-ahead log files of data folder $1 (du's count for them).
wal_of() { find "$1" -maxdepth 1 -name '[0-9]*.log' -printf '%b\n' 2>/dev/null | awk '{ s += $1 } END { print s * 512 }'; }

# "LOG_ENTRIES ROLE" of replica $1 from its metrics endpoint ("-1 ?" when it does not answer).
metrics_of() {
  { curl -s --max-time 5 "http://127.0.0.1:$((CHOIR_METRICS_PORT + $1 - 1))/metrics" || true; } | awk '
    /^choir_log_entries[{ ]/ { entries = sprintf("%.0f", $NF) }
    /^choir_role\{/ && $NF + 0 == 1 { if (match($0, /role="[a-z-]+"/)) role = substr($0, RSTART + 6, RLENGTH - 7) }
    END { print (entries == "" ? -1 : entries), (role == "" ? "?" : role) }'
}

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(nproc) cpus, $(free -g | awk '/Mem:/{print $2}') GiB memory, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "java: $(java -version 2>&1 | head -1)"
  echo "command: MINUTES=$MINUTES RATE=$RATE WRITE_RATIO=$WRITE_RATIO VALUE_SIZE=$VALUE_SIZE KEYS=$KEYS CLIENTS=$CLIENTS WARMUP=$WARMUP SEED=$SEED CHOIR_SETTINGS=$CHOIR_SETTINGS CHOIR_SERVER_JAVA_OPTS=\"$CHOIR_SERVER_JAVA_OPTS\" deploy/bench/soak.sh"
} | tee "$OUT/environment.txt" >&2

start_choir
replica_pids=()
for i in 1 2 3; do replica_pids+=("$(pid_of_replica "$i")") || die "no JVM for replica $i"; done
log "replica JVMs: ${replica_pids[*]}; metrics on 127.0.0.1:$CHOIR_METRICS_PORT..$((CHOIR_METRICS_PORT + 2))"

progress="$OUT/bench-progress.txt"
: >"$progress"
log "bench: $RATE ops/s (write ratio $WRITE_RATIO), $VALUE_SIZE-byte values, $KEYS keys, ${WARMUP} s warmup + $MINUTES min"
CHOIR_JAVA_OPTS="-Djava.awt.headless=true" "${choir[@]}" bench --endpoints "$choir_endpoints" --clients "$CLIENTS" \
  --rate "$RATE" --write-ratio "$WRITE_RATIO" --value-size "$VALUE_SIZE" --keys "$KEYS" --seed "$SEED" \
  --warmup "$WARMUP" --duration "$((MINUTES * 60))" --tick 60 --out "$OUT/bench" >"$OUT/bench.txt" 2>"$progress" &
bench_pid=$!

printf 'minute\treplica\trole\theap_after_gc_bytes\trss_bytes\tdisk_bytes\tlog_entries\twal_bytes\n' >"$OUT/soak.tsv"
printf '%6s %9s %9s %9s %6s   %s\n' minute ops/s p50_ms p99_ms errors "per replica: role heap-after-GC/RSS/disk MiB, log entries"
for m in $(seq 1 "$MINUTES"); do
  while [ "$(grep -c '\] measure' "$progress" || true)" -lt "$m" ]; do
    kill -0 "$bench_pid" 2>/dev/null || break
    sleep 1
  done
  line="$(grep '\] measure' "$progress" | sed -n "${m}p")"
  [ -n "$line" ] || { log "the bench ended before minute $m: $(tail -3 "$progress")"; break; }
  read -r ops p50 p99 errors < <(awk '{
      for (i = 1; i <= NF; i++) {
        if ($i == "measure") { o = $(i + 1); gsub(",", "", o) }
        if ($i == "p50") p5 = $(i + 1); if ($i == "p99") p9 = $(i + 1); if ($i == "errors") e = $(i + 1)
      }
      print o, p5, p9, e }' <<<"$line")
  cells=""
  for i in 1 2 3; do
    pid="${replica_pids[$((i - 1))]}"
    heap="$(heap_after_gc "$pid")"
    rss="$(rss_of "$pid")"
    disk="$(disk_of "$tmp/choir/data/node$i")"
    wal="$(wal_of "$tmp/choir/data/node$i")"
    read -r entries role <<<"$(metrics_of "$i")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$i" "$role" "$heap" "$rss" "$disk" "$entries" "$wal" >>"$OUT/soak.tsv"
    cells+="$(awk -v i="$i" -v r="$role" -v h="$heap" -v s="$rss" -v d="$disk" -v e="$entries" 'BEGIN {
      f = "%.1f"; printf " r%s %s %s/%s/%s %s", i, r, h < 0 ? "-" : sprintf(f, h / 1048576),
        s < 0 ? "-" : sprintf(f, s / 1048576), d < 0 ? "-" : sprintf(f, d / 1048576), e }')"
  done
  printf '%6d %9s %9s %9s %6s  %s\n' "$m" "$ops" "$p50" "$p99" "$errors" "$cells"
done

wait "$bench_pid" || die "the bench failed: $(tail -5 "$progress")"
bench_pid=
cat "$OUT/bench.txt" >&2
"${choir[@]}" status --counters --endpoints "$choir_endpoints" >"$OUT/status-after.txt" 2>&1 || true

setup="Choir soak: 3 replicas, fsync, $RATE ops/s paced (write ratio $WRITE_RATIO), $VALUE_SIZE-byte values, $KEYS keys, $CHOIR_SETTINGS, $CHOIR_SERVER_JAVA_OPTS, $MINUTES min after ${WARMUP} s warmup; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
rc=0
# shellcheck disable=SC2086
java -Djava.awt.headless=true -cp "$bench_cp" io.choir.bench.SoakReport "$OUT" "$setup" $LIMITS >"$OUT/summary.txt" || rc=$?
cat "$OUT/summary.txt"
log "results in $OUT (summary.txt, soak.tsv, soak.json, soak.png, index.html, bench/)"
exit "$rc"
