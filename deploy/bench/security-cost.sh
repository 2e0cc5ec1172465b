#!/usr/bin/env bash
# security-cost.sh: what sealing and TLS cost. Runs `choir bench` against a fresh local 3-replica cluster
# (loopback, fsync) in four set-ups, ROUNDS times each, interleaved so that a change of the machine's load
# hits every set-up alike:
#   plain     no cluster key (datagrams carry only their CRC32C), plaintext client port
#   key       the cluster key: every datagram sealed with AES-GCM, peer streams proven and sealed
#   tls       no key, mutual TLS on the client port (client certificate, access file)
#   key+tls   both (what `choir cluster init --tls` writes)
# Each run also reads the three replicas' CPU time (user + system, /proc) when the bench prints its first
# second of measurement and when it ends: server CPU per write (over the writes after that first second)
# is the figure least moved by the disk's fsync latency, which makes writes/s vary by a third between
# runs of the same set-up on this kind of machine.
# Prints one table (median of the rounds per set-up, and each set-up against plain) and writes it, with
# every run's result.json, server-cpu.json, plots and summary, to $OUT.
#
#   deploy/bench/security-cost.sh
#   ROUNDS=3 DURATION=20 deploy/bench/security-cost.sh
#
# Environment (defaults in brackets): ROUNDS [2] CLIENTS [64] DURATION [20] WARMUP [60: three fresh replica JVMs are still compiling after 20 s, and sealing's code warms later than the rest] VALUE_SIZE [100]
#   CONNECTIONS [1] CHOIR_PORT [27401] OUT [bench-results/security-<date>] BUILD [1] MODES [plain key tls key+tls]
#   CHOIR_SERVER_JAVA_OPTS [-XX:+UseG1GC] (the replicas' JVM options, e.g. to profile them)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROUNDS="${ROUNDS:-2}"
CLIENTS="${CLIENTS:-64}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-60}"
VALUE_SIZE="${VALUE_SIZE:-100}"
CONNECTIONS="${CONNECTIONS:-1}"
CHOIR_PORT="${CHOIR_PORT:-27401}"
BUILD="${BUILD:-1}"
MODES="${MODES:-plain key tls key+tls}"
OUT="${OUT:-bench-results/security-$(date +%Y%m%d-%H%M%S)}"

log() { echo "security-cost: $*" >&2; }
die() { log "$*"; exit 1; }

command -v java >/dev/null || die "java is missing: run deploy/bin/install-prereqs"
if [ "$BUILD" = 1 ]; then
  # package, not install: the distribution is deploy/target/choir of this checkout, and install would
  # overwrite the SNAPSHOT artifacts in ~/.m2 that other checkouts resolve.
  log "building the distribution (mvn package -pl deploy -am, no tests)"
  (cd "$root" && mvn -q -B -Dstyle.color=never -DskipTests package -pl deploy -am) >&2
  touch "$root/deploy/target/choir/.built" # the launcher's stamp: without it, it would build (install) again
fi
[ -f "$root/deploy/target/choir/.built" ] \
  || die "no distribution in $root/deploy/target/choir (its .built stamp is missing): run with BUILD=1"
choir=("$root/deploy/bin/choir")
export CHOIR_NO_BUILD=1
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
tmp="$(mktemp -d /tmp/choir-security-cost.XXXXXX)"
endpoints="127.0.0.1:${CHOIR_PORT},127.0.0.1:$((CHOIR_PORT + 1)),127.0.0.1:$((CHOIR_PORT + 2))"
cluster_pid=

stop_cluster() {
  [ -n "$cluster_pid" ] || return 0
  kill -TERM -- "-$cluster_pid" 2>/dev/null || kill -TERM "$cluster_pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$cluster_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$cluster_pid" 2>/dev/null || true
  cluster_pid=
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_cluster
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# client flags of a set-up (TLS ones need the files init wrote)
client_flags() {
  case "$1" in
    tls|key+tls) echo "--cacert $2/tls/ca.crt --cert $2/tls/client.crt --key $2/tls/client.key" ;;
    *) echo "" ;;
  esac
}

# CPU seconds (user + system) used so far by the replicas of the cluster in folder $1.
servers_cpu() {
  local dir="$1" tck total=0 t p
  tck="$(getconf CLK_TCK)"
  for p in $(pgrep -f -- "$dir/node"); do
    [ -r "/proc/$p/stat" ] || continue
    # fields 14 and 15 (utime, stime) counted after the command name, which may hold spaces
    t="$(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')"
    total=$((total + t))
  done
  awk -v t="$total" -v h="$tck" 'BEGIN{printf "%.3f\n", t / h}'
}

start_cluster() {
  local mode="$1" dir="$2" init=(cluster init --replicas 3 --dir "$dir" --base-port "$CHOIR_PORT")
  case "$mode" in tls|key+tls) init+=(--tls) ;; esac
  "${choir[@]}" "${init[@]}" >/dev/null
  if [ "$mode" = plain ] || [ "$mode" = tls ]; then
    # no key: loopback only, so the replica accepts it without a further setting
    sed -i '/^cluster_key_file:/d' "$dir"/node*.yaml
  fi
  setsid "${choir[@]}" cluster up --dir "$dir" >"$dir/cluster.log" 2>&1 &
  cluster_pid=$!
  local flags
  read -r -a flags <<<"$(client_flags "$mode" "$dir")"
  for _ in $(seq 1 120); do
    if "${choir[@]}" put security-cost/health ok --endpoints "$endpoints" --timeout-ms 2000 "${flags[@]}" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  die "the $mode cluster did not become healthy (log: $dir/cluster.log)"
}

for round in $(seq 1 "$ROUNDS"); do
  for mode in $MODES; do
    dir="$tmp/${mode//+/_}-$round" # no "+" in the folder: pgrep takes it as a pattern
    log "round $round/$ROUNDS: $mode (load $(cut -d' ' -f1-3 /proc/loadavg))"
    start_cluster "$mode" "$dir"
    read -r -a flags <<<"$(client_flags "$mode" "$dir")"
    [ "$(pgrep -fc -- "$dir/node")" -ge 3 ] || die "found $(pgrep -fc -- "$dir/node") replica processes of $dir, not 3"
    progress="$tmp/progress-${mode//+/_}-$round" # its own file: a previous run's lines must not count
    : >"$progress"
    CHOIR_JAVA_OPTS="-Djava.awt.headless=true" "${choir[@]}" bench --endpoints "$endpoints" "${flags[@]}" \
      --clients "$CLIENTS" --duration "$DURATION" --warmup "$WARMUP" --value-size "$VALUE_SIZE" \
      --connections "$CONNECTIONS" --out "$OUT/$mode-$round" >"$OUT/$mode-$round.txt" 2>"$progress" &
    bench_pid=$!
    # the progress line of the first measured second (the JVM's output is line-buffered)
    while kill -0 "$bench_pid" 2>/dev/null && ! grep -q '\] measure' "$progress"; do sleep 0.1; done
    cpu0="$(servers_cpu "$dir")"
    wait "$bench_pid" || die "the bench of $mode round $round failed: $(tail -5 "$progress")"
    cpu1="$(servers_cpu "$dir")"
    echo "{\"server_cpu_seconds\": $(awk -v a="$cpu1" -v b="$cpu0" 'BEGIN{printf "%.3f", a - b}')}" >"$OUT/$mode-$round/server-cpu.json"
    cat "$OUT/$mode-$round.txt" >&2
    log "  the replicas used $(awk -v a="$cpu1" -v b="$cpu0" 'BEGIN{printf "%.1f", a - b}') CPU-s during the measurement"
    stop_cluster
  done
done

python3 - "$OUT" "$ROUNDS" $MODES <<'EOF' | tee "$OUT/summary.md"
import json, statistics, sys
out, rounds, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = {}
for m in modes:
    runs = [json.load(open(f"{out}/{m}-{r}/result.json")) for r in range(1, rounds + 1)]
    cpus = [json.load(open(f"{out}/{m}-{r}/server-cpu.json"))["server_cpu_seconds"] for r in range(1, rounds + 1)]
    # CPU was read after the first measured second: per write over the writes after it
    us = [c * 1e6 / max(1, x["ops"] - x["series"][0]["ops"]) for c, x in zip(cpus, runs)]
    rows[m] = {
        "us": statistics.median(us),
        "us_each": [round(u, 1) for u in us],
        "tput": statistics.median(x["throughput_ops_per_sec"] for x in runs),
        "each": [round(x["throughput_ops_per_sec"]) for x in runs],
        "p99": statistics.median(x["latency_ms"]["p99"] for x in runs),
        "errors": sum(x["errors"]["total"] for x in runs),
        "load": [x["machine"]["load_average_at_end"] for x in runs],
    }
base = rows.get("plain")
print("| set-up | writes/s (median) | each round | vs plain writes/s | server CPU µs/write (median) | each round | vs plain CPU | p99 ms (median) | errors | load at end |")
print("|---|---|---|---|---|---|---|---|---|---|")
for m, r in rows.items():
    vs = f"{r['tput'] / base['tput'] - 1:+.1%}" if base else "-"
    vc = f"{r['us'] / base['us'] - 1:+.1%}" if base and base["us"] else "-"
    print(f"| {m} | {r['tput']:,.0f} | {r['each']} | {vs} | {r['us']:.1f} | {r['us_each']} | {vc} | {r['p99']:.2f} | {r['errors']} | {r['load']} |")
EOF
log "results in $OUT (summary.md, one folder and summary per run)"
