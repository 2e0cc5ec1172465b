#!/usr/bin/env bash
# write-cost.sh: the server CPU that one durable write costs (issue 14 item 2). Starts 3 replicas
# (fsync, majority acks) on loopback, warms them up, then for each client-connection count in
# CONNECTIONS runs `choir bench` (64 closed-loop clients, 100-byte writes) and reads the CPU time
# (utime + stime, /proc/PID/task/*/stat) of each replica JVM over exactly the measured window, also
# without the JIT compiler threads. Prints one table: connections, writes/s, p50, p99, CPU µs per write
# (all replicas, primary, all replicas without JIT). With PROFILE=1 it also records an async-profiler
# CPU profile of every replica over each measured window: flame graphs (HTML) and collapsed stacks,
# plus a summary of where the primary's samples go (top frames by self time, by package); and a
# profile of the benchmark client (the Java client library) from its start.
#
#   deploy/bench/write-cost.sh                      # CONNECTIONS="1 4", 64 clients, 20 s each after 30 s warmup
#   PROFILE=1 CONNECTIONS=1 deploy/bench/write-cost.sh
#
# Environment (defaults in brackets):
#   CLIENTS [64] DURATION [20] WARMUP [30] VALUE_SIZE [100] KEYS [100000] CONNECTIONS ["1 4"]
#   WRITE_RATIO [1.0]  share of writes (the rest linearizable reads); the CPU is then per operation
#   PROFILE [0]   1: async-profiler 4.0 (tools.profiler:async-profiler from Maven Central) on every replica
#   PROFILE_EVENT [cpu]  cpu (perf events, falls back to itimer) | itimer | wall
#   CHOIR_PORT [27401] CHOIR_DURABILITY [fsync] CHOIR_SETTINGS []   as in compare-etcd.sh
#   OUT [bench-results/write-cost-<date>]  BUILD [1]  KEEP [0]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLIENTS="${CLIENTS:-64}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-30}"
VALUE_SIZE="${VALUE_SIZE:-100}"
KEYS="${KEYS:-100000}"
CONNECTIONS="${CONNECTIONS:-1 4}"
WRITE_RATIO="${WRITE_RATIO:-1.0}"
PROFILE="${PROFILE:-0}"
PROFILE_EVENT="${PROFILE_EVENT:-cpu}"
CHOIR_PORT="${CHOIR_PORT:-27401}"
CHOIR_DURABILITY="${CHOIR_DURABILITY:-fsync}"
CHOIR_SETTINGS="${CHOIR_SETTINGS:-}"
BUILD="${BUILD:-1}"
KEEP="${KEEP:-0}"
OUT="${OUT:-bench-results/write-cost-$(date +%Y%m%d-%H%M%S)}"
ASPROF_VERSION=4.0

log() { echo "write-cost: $*" >&2; }
die() { log "$*"; exit 1; }

command -v java >/dev/null || die "java is missing: run deploy/bin/install-prereqs"
if [ "$BUILD" = 1 ]; then
  log "building the distribution (mvn package -pl deploy -am)"
  (cd "$root" && mvn -q -B -Dstyle.color=never -DskipTests package -pl deploy -am) >&2
fi
read -r -a choir <<<"${CHOIR_CMD:-$root/deploy/bin/choir}"
export CHOIR_NO_BUILD=1

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
tmp="$(mktemp -d /tmp/choir-write-cost.XXXXXX)"
pids=()
ETCD_PORT=0 ETCD_PEER_PORT=0
source "$root/deploy/bench/servers.sh"
trap servers_cleanup EXIT
trap 'exit 130' INT TERM

# --- the profiler: the native library out of the Maven Central jar ------------------------------
asprof_lib=""
if [ "$PROFILE" = 1 ]; then
  jar="$HOME/.m2/repository/tools/profiler/async-profiler/$ASPROF_VERSION/async-profiler-$ASPROF_VERSION.jar"
  if [ ! -f "$jar" ]; then
    log "fetching tools.profiler:async-profiler:$ASPROF_VERSION"
    mvn -q -B -ntp dependency:get -Dartifact="tools.profiler:async-profiler:$ASPROF_VERSION" >&2
  fi
  mkdir -p "$tmp/asprof"
  (cd "$tmp/asprof" && unzip -q -o "$jar" 'linux-x64/libasyncProfiler.so')
  asprof_lib="$tmp/asprof/linux-x64/libasyncProfiler.so"
  # perf events for all users' kernel frames need a lower paranoid level (root only; else itimer).
  if [ "$(id -u)" = 0 ] && [ -w /proc/sys/kernel/perf_event_paranoid ]; then
    echo 1 >/proc/sys/kernel/perf_event_paranoid || true
  fi
fi
profiler() { # profiler PID ARGS: loads the agent into PID (again: a loaded agent takes the new command)
  # jcmd reads key=value words as its own arguments: the agent's options go in quotes of their own
  local said; said="$(jcmd "$1" JVMTI.agent_load "$asprof_lib" "\"$2\"" 2>&1)" || true
  grep -q 'ERROR\|rror' <<<"$said" && log "profiler on $1 ($2): $said"
  return 0
}

# "TOTAL NOJIT" CPU seconds of process $1 so far, summed over its threads.
cpu_of() {
  local tck; tck="$(getconf CLK_TCK)"
  for t in /proc/"$1"/task/*/stat; do cat "$t" 2>/dev/null; echo; done | awk -v h="$tck" '
    NF { s = $0; sub(/^[0-9]+ \(/, "", s); name = substr(s, 1, index(s, ") ") - 1);
         rest = substr(s, index(s, ") ") + 2); split(rest, f, " ");
         t = f[12] + f[13]; all += t; if (name !~ /^C[12] CompilerThre/) nojit += t }
    END { printf "%.3f %.3f\n", all / h, nojit / h }'
}

pid_on_port() { ss -Hltnp "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }

{
  echo "date: $(date -u)"
  echo "host: $(nproc) cpus, $(free -g | awk '/Mem:/{print $2}') GiB memory, $(uname -sr)"
  echo "java: $(java -version 2>&1 | head -1)"
  echo "command: CLIENTS=$CLIENTS DURATION=$DURATION WARMUP=$WARMUP VALUE_SIZE=$VALUE_SIZE KEYS=$KEYS WRITE_RATIO=$WRITE_RATIO CONNECTIONS=\"$CONNECTIONS\" PROFILE=$PROFILE CHOIR_DURABILITY=$CHOIR_DURABILITY CHOIR_SETTINGS=$CHOIR_SETTINGS deploy/bench/write-cost.sh"
  echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/environment.txt" >&2

start_choir
replica_pids=()
for i in 0 1 2; do replica_pids+=("$(pid_on_port $((CHOIR_PORT + i)))"); done
primary_port="$("${choir[@]}" status --json --endpoints "$choir_endpoints" | python3 -c '
import json, sys
d = json.load(sys.stdin)
rows = d if isinstance(d, list) else d.get("replicas", [])
for r in rows:
    if r.get("role") == "primary":
        print(r["endpoint"].rsplit(":", 1)[-1]); break')"
primary=$(( ${primary_port:-$CHOIR_PORT} - CHOIR_PORT ))
log "replica pids ${replica_pids[*]}, primary is replica $((primary + 1))"

bench_flags=(--endpoints "$choir_endpoints" --clients "$CLIENTS" --value-size "$VALUE_SIZE" --keys "$KEYS"
  --write-ratio "$WRITE_RATIO" --seed 42 --no-progress)
log "warmup: ${WARMUP} s of writes"
CHOIR_JAVA_OPTS="-Djava.awt.headless=true" "${choir[@]}" bench "${bench_flags[@]}" --connections 1 \
  --duration "$WARMUP" --warmup 0 --out "$OUT/warmup" >"$OUT/warmup.txt" 2>&1

cat >"$tmp/row.py" <<'EOF'
import json, sys
text = open(sys.argv[1]).read(); r = json.loads(text[text.index("{"):])  # after the profiler's "Profiling started"
conns = sys.argv[2]; primary = int(sys.argv[3])
c0 = [float(x) for x in sys.argv[4].split()]; c1 = [float(x) for x in sys.argv[5].split()]
all_ = [c1[2 * i] - c0[2 * i] for i in range(3)]; nojit = [c1[2 * i + 1] - c0[2 * i + 1] for i in range(3)]
w = max(r["ops"], 1); lat = r["latency_ms"]
us = lambda s: 1e6 * s / w
client = r.get("client_cpu_seconds", -1)
print(f'| {conns} | {r["throughput_ops_per_sec"]:,.0f} | {lat["p50"]:.2f} | {lat["p99"]:.2f} | '
      f'{us(sum(all_)):.1f} | {us(all_[primary]):.1f} | {us(sum(nojit)):.1f} | '
      f'{us(client) if client >= 0 else float("nan"):.1f} | {r["errors"]["total"]} |')
EOF
rows=()
for conns in $CONNECTIONS; do
  c0=(); for p in "${replica_pids[@]}"; do c0+=("$(cpu_of "$p")"); done
  if [ "$PROFILE" = 1 ]; then
    for p in "${replica_pids[@]}"; do profiler "$p" "start,event=$PROFILE_EVENT,interval=1ms,threads"; done
  fi
  log "measuring: $conns connection(s), $CLIENTS clients, $DURATION s (load $(cut -d' ' -f1-3 /proc/loadavg))"
  client_opts="-Djava.awt.headless=true"
  if [ "$PROFILE" = 1 ]; then
    # The benchmark client too, from its start (its JIT threads are named, so they can be told apart).
    client_opts+=" -agentpath:$asprof_lib=start,event=$PROFILE_EVENT,interval=1ms,threads,collapsed,file=$OUT/c$conns-client.collapsed"
  fi
  CHOIR_JAVA_OPTS="$client_opts" "${choir[@]}" bench "${bench_flags[@]}" --connections "$conns" \
    --duration "$DURATION" --warmup 0 --out "$OUT/c$conns" --json >"$OUT/c$conns.json" 2>"$OUT/c$conns.txt"
  c1=(); for p in "${replica_pids[@]}"; do c1+=("$(cpu_of "$p")"); done
  if [ "$PROFILE" = 1 ]; then
    for i in 0 1 2; do
      p="${replica_pids[$i]}"; role=backup; [ "$i" = "$primary" ] && role=primary
      profiler "$p" "dump,collapsed,file=$OUT/c$conns-replica$((i + 1))-$role.collapsed"
      profiler "$p" "stop,file=$OUT/c$conns-replica$((i + 1))-$role.html"
    done
  fi
  rows+=("$(python3 "$tmp/row.py" "$OUT/c$conns.json" "$conns" "$primary" "${c0[*]}" "${c1[*]}")")
done

{
  echo
  echo "| connections | ops/s | p50 ms | p99 ms | CPU µs/op, all replicas | primary | all replicas without JIT | client (its JIT included) | errors |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/table.md"

if [ "$PROFILE" = 1 ]; then
  for f in "$OUT"/c*-primary.collapsed "$OUT"/c*-client.collapsed; do
    [ -f "$f" ] || continue
    echo; echo "where the samples go ($(basename "$f")):"
    python3 - "$f" <<'EOF' | tee "${f%.collapsed}-summary.txt"
import collections, sys
self_ = collections.Counter(); thread = collections.Counter(); total = 0
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip().rpartition(" ")
    n = int(n); total += n; frames = stack.split(";")
    self_[frames[-1]] += n
    name = frames[0].strip("[]").split(" tid=")[0] if frames else "?"
    thread[name.rstrip("0123456789-#")] += n
print(f"  {total} samples")
print("  by thread (numbers dropped):")
for k, v in thread.most_common(14): print(f"    {100 * v / total:5.1f}%  {k}")
print("  top self frames:")
for k, v in self_.most_common(25): print(f"    {100 * v / total:5.1f}%  {k}")
EOF
  done
fi
log "results in $OUT"
