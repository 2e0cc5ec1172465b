#!/usr/bin/env bash
# transport-scaling.sh: what a write costs the primary as the cluster grows, per peer transport (issue
# 12, item 6). For every number of replicas (3 5 7) and every transport (peer_transport: multicast,
# unicast) it makes that many hosts of network namespaces (deploy/bin/netns-hosts: one replica per
# namespace, PREPAREs over veths and a bridge, nothing leaves the machine), starts a keyed cluster with
# fsync durability on them and runs `choir bench` from the root namespace against the hosts' client
# addresses (64 clients, 100-byte writes). Over the measured window (from the bench's first measured
# second to its end) it reads the CPU time (utime + stime, /proc/PID/stat) of the primary's JVM and of
# every replica's (also without the JIT compiler threads), and the UDP datagrams and bytes that left
# every host (netns-hosts counters), and divides by the writes of that window.
# Prints one table (writes/s, p50, p99, primary and all replicas' CPU µs/write, both without JIT, the
# primary's datagrams and bytes per write) and writes it with transport-scaling.json, cpu-per-write.png
# (CPU per write vs replicas, one line per transport), datagrams-per-write.png and index.html to $OUT,
# every run's bench results under $OUT/runs/TRANSPORT-N.
#
#   deploy/bench/transport-scaling.sh
#   deploy/bench/transport-scaling.sh --transports multicast --replicas "3 5" --duration 10 --warmup 10
#
# Options (and their environment variables, defaults in brackets):
#   --transports LIST  TRANSPORTS  [multicast unicast]  peer_transport values (comma or space separated)
#   --replicas LIST    REPLICAS    [3 5 7]
#   --duration S       DURATION    [20]   measured seconds per run
#   --warmup S         WARMUP      [20]   seconds run first and left out
#   --clients N        CLIENTS     [64]
#   --value-size B     VALUE_SIZE  [100]
#   --rate OPS         RATE        [0]    pace the bench to OPS writes/s in all (0: closed loop); the
#                                         same offered load for every N and transport, so group commit
#                                         batches alike and the CPU per write compares the transports
#   --out DIR          OUT         [bench-results/transport-scaling-<date>]
#   --no-build         BUILD=0     use the distribution and tests/bench classes already built
# Environment only: CONNECTIONS [1] NET [250] (hosts on 10.213.NET.0/24) PREFIX [cts] (namespace names)
#   MVN_FLAGS [] (e.g. -o) CHOIR_SERVER_JAVA_OPTS [-Xmx512m -XX:+UseG1GC]
# Needs root (namespaces, nftables), Java 17 and Maven.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TRANSPORTS="${TRANSPORTS:-multicast unicast}"
REPLICAS="${REPLICAS:-3 5 7}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-20}"
CLIENTS="${CLIENTS:-64}"
VALUE_SIZE="${VALUE_SIZE:-100}"
RATE="${RATE:-0}"
CONNECTIONS="${CONNECTIONS:-1}"
BUILD="${BUILD:-1}"
NET="${NET:-250}"
PREFIX="${PREFIX:-cts}"
MVN_FLAGS="${MVN_FLAGS:-}"
CHOIR_SERVER_JAVA_OPTS="${CHOIR_SERVER_JAVA_OPTS:--Xmx512m -XX:+UseG1GC}"
OUT="${OUT:-bench-results/transport-scaling-$(date +%Y%m%d-%H%M%S)}"

log() { echo "transport-scaling: $*" >&2; }
die() { log "$*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --transports) TRANSPORTS="${2:?}"; shift 2 ;;
    --replicas) REPLICAS="${2:?}"; shift 2 ;;
    --duration) DURATION="${2:?}"; shift 2 ;;
    --warmup) WARMUP="${2:?}"; shift 2 ;;
    --clients) CLIENTS="${2:?}"; shift 2 ;;
    --value-size) VALUE_SIZE="${2:?}"; shift 2 ;;
    --rate) RATE="${2:?}"; shift 2 ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
TRANSPORTS="${TRANSPORTS//,/ }"
REPLICAS="${REPLICAS//,/ }"
for n in $REPLICAS; do [[ "$n" =~ ^[1-7]$ ]] || die "replicas must be 1..7: $n"; done
for t in $TRANSPORTS; do [[ "$t" =~ ^[a-z]+$ ]] || die "bad transport: $t"; done

[ "$(id -u)" = 0 ] || die "needs root (network namespaces, nftables)"
command -v java >/dev/null || die "java is missing: run deploy/bin/install-prereqs"
hosts=("$root/deploy/bin/netns-hosts")
if [ "$BUILD" = 1 ]; then
  # package, not install: the distribution is deploy/target/choir of this checkout, and install would
  # overwrite the SNAPSHOT artifacts in ~/.m2 that other checkouts resolve.
  log "building the distribution and tests/bench (mvn package -pl deploy,tests/bench -am, no tests)"
  # shellcheck disable=SC2086
  (cd "$root" && mvn -q -B $MVN_FLAGS -Dstyle.color=never -DskipTests package -pl deploy,tests/bench -am) >&2
  touch "$root/deploy/target/choir/.built" # the launcher's stamp: without it, it would build (install) again
fi
dist="$root/deploy/target/choir"
[ -f "$dist/.built" ] || die "no distribution in $dist (its .built stamp is missing): run without --no-build"
[ -f "$root/tests/bench/target/classpath.txt" ] || die "tests/bench is not built: run without --no-build"
bench_cp="$root/tests/bench/target/classes:$(cat "$root/tests/bench/target/classpath.txt")"
choir=("$root/deploy/bin/choir")
export CHOIR_NO_BUILD=1
mkdir -p "$OUT/runs"
OUT="$(cd "$OUT" && pwd)"
tmp="$(mktemp -d /tmp/choir-transport-scaling.XXXXXX)"
pids=()
bench_pid=

stop_replicas() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  pids=()
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$bench_pid" ]; then kill -TERM "$bench_pid" 2>/dev/null || true; fi
  stop_replicas
  "${hosts[@]}" down --prefix "$PREFIX" --net "$NET" >/dev/null 2>&1 || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Whether this server knows peer_transport (until it does, only the default, multicast, can run).
knows_peer_transport=0
if "${choir[@]}" server --print-config 2>/dev/null | grep -q '^peer_transport'; then
  knows_peer_transport=1
fi

subnet="10.213.$NET"
endpoints_of() {
  local n="$1" i eps=()
  for i in $(seq 1 "$n"); do eps+=("$subnet.$i:7301"); done
  (IFS=,; echo "${eps[*]}")
}

# "TOTAL NOJIT": CPU seconds (utime + stime) of process $1 so far, and the same without the JIT
# compiler threads (C1/C2 CompilerThread: a warm-up cost that a paced run spreads over few writes), summed
# over its threads (/proc/PID/task/*/stat; the replica's threads live as long as it does).
cpu_of() {
  local tck
  tck="$(getconf CLK_TCK)"
  # the command name is in parentheses and may hold spaces: fields 14 and 15 are 12 and 13 after it
  for t in /proc/"$1"/task/*/stat; do cat "$t" 2>/dev/null; echo; done | awk -v h="$tck" '
    NF == 0 { next }
    { name = $0; sub(/^[^(]*\(/, "", name); sub(/\).*$/, "", name)
      rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
      t = f[12] + f[13]; all += t; if (name !~ /^C[12] CompilerThre/) nojit += t }
    END { printf "%.3f %.3f\n", all / h, nojit / h }'
}

# The peer datagrams (UDP) that left each host so far: "PACKETS:BYTES" per host, space separated.
udp_out() {
  "${hosts[@]}" counters --prefix "$PREFIX" | awk '{printf "%s:%s ", $2, $3} END {print ""}'
}

# "ID VIEW" of the primary in the highest view, from `choir status --json` ("0 0" if none answers so, after
# a few tries: on a loaded machine a status can time out).
primary_of() {
  local try answer
  for try in 1 2 3 4 5; do
    answer="$(primary_once "$1")"
    if [ "${answer%% *}" != 0 ]; then break; fi
    log "  no primary in the status answers (try $try of 5)"
  done
  echo "$answer"
}
primary_once() {
  { "${choir[@]}" status --json --endpoints "$1" --timeout-ms 5000 2>/dev/null || true; } | python3 -c '
import json, sys
try:
    data = json.load(sys.stdin)
except ValueError:
    data = []
rows = data if isinstance(data, list) else data.get("replicas", [data])
best = None
for r in rows:
    if r.get("role") == "primary" and (best is None or r["view"] > best["view"]):
        best = r
print(f"{best['"'"'id'"'"']} {best['"'"'view'"'"']}" if best else "0 0")'
}

# "yes" when all n replicas answer, in one view, with one primary (a cluster of fresh JVMs on a loaded
# machine may change views in its first seconds; the bench waits for that to pass).
settled() {
  "${choir[@]}" status --json --endpoints "$1" --timeout-ms 3000 2>/dev/null | python3 -c '
import json, sys
data = json.load(sys.stdin)
rows = data if isinstance(data, list) else data.get("replicas", [data])
ok = [r for r in rows if "role" in r]
views = {r["view"] for r in ok}
print("yes" if len(ok) == int(sys.argv[1]) and len(views) == 1
      and sum(r["role"] == "primary" for r in ok) == 1 else "no")' "$2" || echo no
}

start_cluster() {
  local transport="$1" n="$2" dir="$3" i members=""
  "${hosts[@]}" up "$n" --prefix "$PREFIX" --net "$NET"
  "${choir[@]}" keygen --out "$dir/cluster.key" >/dev/null
  for i in $(seq 1 "$n"); do
    members+="  - id: $i"$'\n'"    client: $subnet.$i:7301"$'\n'"    peer: $subnet.$i:7401"$'\n'
  done
  for i in $(seq 1 "$n"); do
    {
      echo "cluster_id: transport-scaling-$transport-$n"
      echo "replica_id: $i"
      echo "replicas:"
      printf '%s' "$members"
      echo "data_dir: $dir/data/node$i"
      echo "durability: fsync"
      echo "multicast_group: 239.255.77.1:7500"
      echo "multicast_interface: ch0"
      echo "cluster_key_file: $dir/cluster.key"
      echo "accept_plaintext_clients: true" # the client ports are reachable from this machine only
      echo "log_level: warn"
      if [ "$knows_peer_transport" = 1 ]; then echo "peer_transport: $transport"; fi
    } >"$dir/node$i.yaml"
    # ip netns exec execs java in place: $! is the replica's JVM, whose CPU is read below
    # shellcheck disable=SC2086
    ip netns exec "$PREFIX-$i" java $CHOIR_SERVER_JAVA_OPTS -cp "$dist/lib/*" io.choir.launcher.ChoirLauncher \
      server --config "$dir/node$i.yaml" >"$dir/node$i.log" 2>&1 &
    pids+=("$!")
  done
  local eps
  eps="$(endpoints_of "$n")"
  for _ in $(seq 1 240); do
    if "${choir[@]}" put transport-scaling/health ok --endpoints "$eps" --timeout-ms 2000 >/dev/null 2>&1 \
        && [ "$(settled "$eps" "$n")" = yes ]; then
      return 0
    fi
    for i in "${!pids[@]}"; do
      kill -0 "${pids[$i]}" 2>/dev/null || die "replica $((i + 1)) exited: $(tail -5 "$dir/node$((i + 1)).log")"
    done
    sleep 0.5
  done
  die "the $transport cluster of $n did not become healthy (logs in $dir)"
}

runs=0
total=$(( $(wc -w <<<"$TRANSPORTS") * $(wc -w <<<"$REPLICAS") ))
for n in $REPLICAS; do
  for transport in $TRANSPORTS; do
    runs=$((runs + 1))
    if [ "$transport" != multicast ] && [ "$knows_peer_transport" = 0 ]; then
      log "[$runs/$total] $transport, $n replicas: skipped (this server has no peer_transport setting yet)"
      continue
    fi
    name="$transport-$n"
    dir="$tmp/$name"
    mkdir -p "$dir"
    log "[$runs/$total] $transport, $n replicas: starting (load $(cut -d' ' -f1-3 /proc/loadavg))"
    start_cluster "$transport" "$n" "$dir"
    eps="$(endpoints_of "$n")"
    progress="$dir/progress"
    : >"$progress"
    log "[$runs/$total] $transport, $n replicas: bench ${WARMUP} s warmup + ${DURATION} s"
    CHOIR_JAVA_OPTS="-Djava.awt.headless=true" "${choir[@]}" bench --endpoints "$eps" --clients "$CLIENTS" \
      --duration "$DURATION" --warmup "$WARMUP" --value-size "$VALUE_SIZE" --connections "$CONNECTIONS" \
      --rate "$RATE" --out "$OUT/runs/$name" >"$OUT/runs/$name.txt" 2> >(tee "$progress" | sed -u "s/^/  [$name] /" >&2) &
    bench_pid=$!
    # the progress line of the first measured second (the JVM's output is line-buffered)
    while kill -0 "$bench_pid" 2>/dev/null && ! grep -q '\] measure' "$progress"; do sleep 0.1; done
    kill -0 "$bench_pid" 2>/dev/null || die "the bench of $name ended before its first measured second"
    cpu0=()
    for p in "${pids[@]}"; do cpu0+=("$(cpu_of "$p" | tr ' ' :)"); done
    udp0="$(udp_out)"
    # after the CPU reading: a status command is a JVM start, seconds on a loaded machine
    read -r primary view0 <<<"$(primary_of "$eps")"
    kill -0 "$bench_pid" 2>/dev/null || log "  WARNING: the bench ended before the primary was known: make --duration longer"
    wait "$bench_pid" || die "the bench of $name failed: $(tail -5 "$progress")"
    cpu1=()
    for p in "${pids[@]}"; do cpu1+=("$(cpu_of "$p" | tr ' ' :)"); done
    udp1="$(udp_out)"
    read -r primary1 view1 <<<"$(primary_of "$eps")"
    if [ "$primary" = 0 ]; then
      log "  WARNING: the primary was unknown at the start of the window; taking the one at its end"
      primary="$primary1"
      view0="$view1"
    fi
    [ "$primary" -ge 1 ] || die "no primary in the $name cluster"
    stable=true
    if [ "$primary1" != "$primary" ] || [ "$view1" != "$view0" ]; then
      stable=false
      log "  WARNING: the primary changed during the run ($primary in view $view0 -> $primary1 in view $view1)"
    fi
    python3 - "$OUT/runs/$name/cpu.json" "$transport" "$n" "$primary" "$stable" "${cpu0[*]}" "${cpu1[*]}" \
        "$udp0" "$udp1" <<'EOF'
import json, sys
out, transport, n, primary, stable, c0, c1, u0, u1 = sys.argv[1:]
def pairs(s):
    return [[float(v) for v in x.split(":")] for x in s.split()]
c0, c1, u0, u1 = pairs(c0), pairs(c1), pairs(u0), pairs(u1)
each = [round(b[0] - a[0], 3) for a, b in zip(c0, c1)]
nojit = [round(b[1] - a[1], 3) for a, b in zip(c0, c1)]
pk = [int(b[0] - a[0]) for a, b in zip(u0, u1)]
by = [int(b[1] - a[1]) for a, b in zip(u0, u1)]
p = int(primary) - 1
json.dump({"transport": transport, "replicas": int(n), "primary_id": int(primary),
           "primary_stable": stable == "true", "primary_cpu_s": each[p],
           "replicas_cpu_s": round(sum(each), 3), "cpu_s_per_replica": each,
           "primary_cpu_nojit_s": nojit[p], "replicas_cpu_nojit_s": round(sum(nojit), 3),
           "primary_udp_out_packets": pk[p], "primary_udp_out_bytes": by[p],
           "replicas_udp_out_packets": sum(pk), "udp_out_packets_per_replica": pk},
          open(out, "w"), indent=2)
EOF
    cat "$OUT/runs/$name.txt" >&2
    log "  CPU over the window: primary (replica $primary) $(python3 -c "import json;d=json.load(open('$OUT/runs/$name/cpu.json'));print(d['primary_cpu_s'], 's; all replicas', d['replicas_cpu_s'], 's')")"
    "${hosts[@]}" status --prefix "$PREFIX" >"$OUT/runs/$name/hosts-status.txt"
    cp "$dir"/node*.log "$OUT/runs/$name/" 2>/dev/null || true
    stop_replicas
    "${hosts[@]}" down --prefix "$PREFIX" --net "$NET" >/dev/null
  done
done

setup="$CLIENTS clients$([ "$RATE" = 0 ] || echo " paced to $RATE writes/s"), $VALUE_SIZE-byte writes, fsync, ${WARMUP} s warmup + ${DURATION} s measured, $CONNECTIONS connection(s) each; replicas in network namespaces on one machine ($(nproc) cores); $(date -u +%Y-%m-%dT%H:%M:%SZ)"
java -Djava.awt.headless=true -cp "$bench_cp" io.choir.bench.TransportScaling "$OUT" "$setup" | tee "$OUT/summary.md"
log "results in $OUT (summary.md, transport-scaling.json, cpu-per-write.png, index.html, runs/)"
