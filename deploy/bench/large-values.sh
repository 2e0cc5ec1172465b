#!/usr/bin/env bash
# large-values.sh: write throughput with large values against the disk's own fsynced write bandwidth
# (issue 14, item 5). For every value size (4 KiB, 64 KiB, 1 MiB) it starts a fresh 3-replica cluster on
# loopback with fsync durability (servers.sh's start_choir), runs `choir bench` writes-only at that value
# size and reads the primary's CPU time over the measured window (/proc/PID/stat). Before that it
# measures the disk under the replicas' data folders with fio: sequential writes of the same block
# sizes with an fdatasync after every write (what one synced append of that size costs), and a
# sequential 1 MiB stream with a single fsync at its end (the disk's bulk bandwidth); dd oflag=dsync
# when fio is missing. Prints one table: value size, writes/s, Choir MB/s of payload, p50/p99, the
# primary's CPU (cores and µs per write), the disk's fsynced MB/s at that size and the ratio of the two.
# Writes it with large-values.json and every run's bench result (runs/SIZE) to $OUT.
#
#   deploy/bench/large-values.sh
#   SIZES="65536" DURATION=10 deploy/bench/large-values.sh
#
# The replicas get the settings that a 1 MiB value needs (max_value_bytes 1048576, the default, so
# exactly 1 MiB is accepted and one byte more is TOO_LARGE; max_frame_bytes 4194304, at least
# max_key_bytes + max_value_bytes + 256) and a short log (log_retention_ops 1000: the log keeps
# 1,000 applied entries, 1 GiB of 1 MiB values, instead of 100,000). MB are 10^6 bytes.
#
# Environment (defaults in brackets):
#   SIZES [4096 65536 1048576]    value sizes in bytes
#   DURATION [20] WARMUP [10]     measured and warmup seconds of each bench
#   CLIENTS [auto]                closed-loop clients; auto: min(64, max(4, 8 MiB / size)), so about 8 MiB
#                                 is in flight at most (64, 64, 8)
#   STATE_BYTES [268435456]       the key space is STATE_BYTES / size keys (at least 16): the data stays
#                                 about 256 MiB per replica whatever the size
#   SEED [42]
#   FIO_SECONDS [10]              seconds per fio job (FIO=0: skip the disk measurement)
#   CHOIR_PORT [28301]            clients 28301..28303, peers +100, multicast +199
#   CHOIR_SETTINGS                replaces the settings above (comma-separated key=value)
#   CHOIR_SERVER_JAVA_OPTS [-Xmx1g -XX:+UseG1GC]
#   OUT [bench-results/large-values-<date>]   BUILD [1] (0: use what target/ has)  KEEP [0]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SIZES="${SIZES:-4096 65536 1048576}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-10}"
CLIENTS="${CLIENTS:-auto}"
STATE_BYTES="${STATE_BYTES:-268435456}"
SEED="${SEED:-42}"
FIO="${FIO:-1}"
FIO_SECONDS="${FIO_SECONDS:-10}"
CHOIR_PORT="${CHOIR_PORT:-28301}"
CHOIR_DURABILITY=fsync
CHOIR_SETTINGS="${CHOIR_SETTINGS-max_value_bytes=1048576,max_frame_bytes=4194304,log_retention_ops=1000}"
export CHOIR_SERVER_JAVA_OPTS="${CHOIR_SERVER_JAVA_OPTS:--Xmx1g -XX:+UseG1GC}"
BUILD="${BUILD:-1}"
KEEP="${KEEP:-0}"
OUT="${OUT:-bench-results/large-values-$(date +%Y%m%d-%H%M%S)}"
ETCD_PORT=0 ETCD_PEER_PORT=0   # servers.sh names etcd's ports too; no etcd runs here

log() { echo "large-values: $*" >&2; }
die() { log "$*"; exit 1; }

command -v java >/dev/null || die "java is missing: run deploy/bin/install-prereqs"
if [ "$BUILD" = 1 ]; then
  # package, not install: install would overwrite the SNAPSHOT artifacts in ~/.m2 other checkouts use
  log "building the distribution (mvn package -pl deploy -am, no tests)"
  (cd "$root" && mvn -q -B ${MVN_FLAGS:-} -Dstyle.color=never -DskipTests package -pl deploy -am) >&2
  touch "$root/deploy/target/choir/.built"
fi
[ -f "$root/deploy/target/choir/.built" ] || die "no distribution in deploy/target/choir: run with BUILD=1"
choir=("$root/deploy/bin/choir")
export CHOIR_NO_BUILD=1
mkdir -p "$OUT/runs"
OUT="$(cd "$OUT" && pwd)"
tmp="$(mktemp -d /tmp/choir-large-values.XXXXXX)"
pids=()
source "$root/deploy/bench/servers.sh"   # start_choir, stop_pids, servers_cleanup, choir_endpoints
trap servers_cleanup EXIT
trap 'exit 130' INT TERM

# CPU seconds (utime + stime of all its threads, /proc/PID/stat) of process $1 so far.
cpu_of() {
  awk -v k="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13) / k }' "/proc/$1/stat"
}

# The id of the primary of the highest view in `choir status --json` (empty if none answers so).
primary_id() {
  { "${choir[@]}" status --json --endpoints "$choir_endpoints" --timeout-ms 5000 2>/dev/null || true; } | python3 -c '
import json, sys
try:
    rows = json.load(sys.stdin)
except ValueError:
    rows = []
rows = rows if isinstance(rows, list) else [rows]
best = max((r for r in rows if r.get("role") == "primary"), key=lambda r: r["view"], default=None)
print(best["id"] if best else "")'
}

# The JVM of replica $1 among choir_pids (the one started with nodeN.yaml).
pid_of_replica() {
  local p
  for p in "${choir_pids[@]}"; do
    if tr '\0' ' ' <"/proc/$p/cmdline" | grep -q "node$1\.yaml"; then echo "$p"; return 0; fi
  done
  return 1
}

# --- the disk: fio (or dd) in a folder next to the replicas' data, on the same filesystem ----------
disk_json="$OUT/disk.json"
measure_disk() {
  local dir="$tmp/disk" results=() bs name
  mkdir -p "$dir"
  log "disk under $tmp: $(df -h "$tmp" | awk 'NR==2{print $1, $2" size,", $4" free"}'), $(findmnt -no FSTYPE -T "$tmp" 2>/dev/null || echo '?')"
  if command -v fio >/dev/null; then
    for bs in $SIZES; do
      name="fdatasync-$bs"
      # appends to a fresh file (no preallocation), an fdatasync after every write, like a log append
      fio --name="$name" --directory="$dir" --filename="$name.dat" --rw=write --bs="$bs" --size=4g \
        --fdatasync=1 --fallocate=none --ioengine=sync --runtime="$FIO_SECONDS" --output-format=json \
        >"$OUT/fio-$name.json"
      rm -f "$dir/$name.dat"
      results+=("$bs:$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]["write"]; print(j["bw_bytes"], j["iops"], sep=":")' "$OUT/fio-$name.json")")
      log "  fio $bs-byte writes, fdatasync each: ${results[-1]#*:} (bytes/s:writes/s)"
    done
    fio --name=stream --directory="$dir" --filename=stream.dat --rw=write --bs=1m --size=1g --end_fsync=1 \
      --fallocate=none --ioengine=sync --output-format=json >"$OUT/fio-stream.json"
    rm -f "$dir/stream.dat"
    results+=("stream:$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]["write"]; print(j["bw_bytes"], j["iops"], sep=":")' "$OUT/fio-stream.json")")
    log "  fio 1 GiB in 1 MiB writes, one fsync at the end: ${results[-1]#*:}"
    tool="fio $(fio --version)"
  else
    for bs in $SIZES; do
      local count=$(( (256 << 20) / bs )) t0 t1
      [ "$count" -gt 20000 ] && count=20000
      t0="$(date +%s.%N)"
      dd if=/dev/zero of="$dir/dd.dat" bs="$bs" count="$count" oflag=dsync status=none
      t1="$(date +%s.%N)"
      rm -f "$dir/dd.dat"
      results+=("$bs:$(awk -v b="$bs" -v c="$count" -v a="$t0" -v z="$t1" 'BEGIN{printf "%.0f:%.1f", b*c/(z-a), c/(z-a)}')")
    done
    tool="dd oflag=dsync"
  fi
  python3 - "$disk_json" "$tool" "${results[@]}" <<'EOF'
import json, sys
out, tool, rows = sys.argv[1], sys.argv[2], sys.argv[3:]
d = {"tool": tool, "fsync_each_write": {}, "stream_end_fsync": None}
for r in rows:
    k, bw, iops = r.split(":")
    v = {"bytes_per_sec": float(bw), "writes_per_sec": float(iops)}
    if k == "stream":
        d["stream_end_fsync"] = v
    else:
        d["fsync_each_write"][k] = v
json.dump(d, open(out, "w"), indent=2)
EOF
}

# --- Choir: one fresh cluster per value size ---------------------------------------------------------
run_size() {
  local size="$1" clients keys name progress bench_pid primary ppid c0 c1 t0 t1
  if [ "$CLIENTS" = auto ]; then
    clients=$(( (8 << 20) / size )); [ "$clients" -gt 64 ] && clients=64; [ "$clients" -lt 4 ] && clients=4
  else
    clients="$CLIENTS"
  fi
  keys=$(( STATE_BYTES / size )); [ "$keys" -lt 16 ] && keys=16
  name="$size"
  rm -rf "$tmp/choir"
  start_choir
  log "[$size B] bench: $clients clients, $keys keys, ${WARMUP} s warmup + ${DURATION} s (load $(cut -d' ' -f1-3 /proc/loadavg))"
  progress="$tmp/progress-$size"
  : >"$progress"
  CHOIR_JAVA_OPTS="-Djava.awt.headless=true -Xmx2g" "${choir[@]}" bench --endpoints "$choir_endpoints" \
    --clients "$clients" --duration "$DURATION" --warmup "$WARMUP" --value-size "$size" --write-ratio 1.0 \
    --keys "$keys" --seed "$SEED" --out "$OUT/runs/$name" >"$OUT/runs/$name.txt" \
    2> >(tee "$progress" | sed -u "s/^/  [$size B] /" >&2) &
  bench_pid=$!
  # the first measured second (the bench prints one progress line per second)
  while kill -0 "$bench_pid" 2>/dev/null && ! grep -q '\] measure' "$progress"; do sleep 0.1; done
  kill -0 "$bench_pid" 2>/dev/null || die "the bench at $size B ended before its first measured second"
  c0=(); for p in "${choir_pids[@]}"; do c0+=("$(cpu_of "$p")"); done
  t0="$(date +%s.%N)"
  primary="$(primary_id)"
  wait "$bench_pid" || die "the bench at $size B failed: $(tail -3 "$progress")"
  c1=(); for p in "${choir_pids[@]}"; do c1+=("$(cpu_of "$p")"); done
  t1="$(date +%s.%N)"
  [ "$(primary_id)" = "$primary" ] || log "  WARNING: the primary changed during the run ($primary -> $(primary_id))"
  [ -n "$primary" ] || die "no primary at $size B"
  ppid="$(pid_of_replica "$primary")" || die "no JVM for replica $primary"
  local i pc0 pc1 all=0
  for i in "${!choir_pids[@]}"; do
    all="$(awk -v a="$all" -v x="${c0[$i]}" -v y="${c1[$i]}" 'BEGIN{print a + y - x}')"
    [ "${choir_pids[$i]}" = "$ppid" ] && { pc0="${c0[$i]}"; pc1="${c1[$i]}"; }
  done
  local du_kb
  du_kb="$(du -sk "$tmp/choir/data" | awk '{print $1}')"
  python3 - "$OUT/runs/$name/cpu.json" "$primary" "$pc0" "$pc1" "$all" "$t0" "$t1" "$du_kb" <<'EOF'
import json, sys
out, primary, p0, p1, allcpu, t0, t1, du = sys.argv[1:]
json.dump({"primary_id": int(primary), "primary_cpu_s": round(float(p1) - float(p0), 3),
           "replicas_cpu_s": round(float(allcpu), 3), "wall_s": round(float(t1) - float(t0), 3),
           "data_dirs_kib_at_end": int(du)}, open(out, "w"), indent=2)
EOF
  cat "$OUT/runs/$name.txt" >&2
  # the replicas' counters (drops, NACKs, retransmits, BUSY ...) at the end of the run
  "${choir[@]}" status --counters --endpoints "$choir_endpoints" >"$OUT/runs/$name/status-after.txt" 2>&1 || true
  stop_pids "${pids[@]}"
  pids=()
  cp "$tmp/choir.log" "$OUT/runs/$name/choir.log" 2>/dev/null || true
}

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(nproc) cpus, $(free -g | awk '/Mem:/{print $2}') GiB memory, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "java: $(java -version 2>&1 | head -1)"
  echo "command: SIZES=\"$SIZES\" DURATION=$DURATION WARMUP=$WARMUP CLIENTS=$CLIENTS STATE_BYTES=$STATE_BYTES SEED=$SEED CHOIR_SETTINGS=$CHOIR_SETTINGS CHOIR_SERVER_JAVA_OPTS=\"$CHOIR_SERVER_JAVA_OPTS\" deploy/bench/large-values.sh"
} | tee "$OUT/environment.txt" >&2

if [ "$FIO" = 1 ]; then measure_disk; else echo '{"tool": "none", "fsync_each_write": {}, "stream_end_fsync": null}' >"$disk_json"; fi
for size in $SIZES; do run_size "$size"; done

python3 - "$OUT" $SIZES <<'EOF' | tee "$OUT/summary.md"
import json, os, sys
out, sizes = sys.argv[1], sys.argv[2:]
disk = json.load(open(os.path.join(out, "disk.json")))
env = open(os.path.join(out, "environment.txt")).read().strip().splitlines()
def human(b):
    b = int(b)
    return f"{b >> 20} MiB" if b >= 1 << 20 else f"{b >> 10} KiB" if b >= 1 << 10 else f"{b} B"
def retransmits(path):
    """The primary's retransmits and the backups' NACKs in a `choir status --counters` listing (-1: none)."""
    retx, nacks, role = -1, 0, None
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return -1, -1
    for line in lines:
        f = line.split()
        if line.startswith("127.") and len(f) > 2:
            role = f[2]
        elif len(f) == 2 and f[1].isdigit():
            if f[0] == "retransmits" and role == "primary":
                retx = int(f[1])
            elif f[0] == "nacks_sent" and role == "backup":
                nacks += int(f[1])
    return retx, nacks
rows, table = [], []
for s in sizes:
    r = json.load(open(os.path.join(out, "runs", s, "result.json")))
    c = json.load(open(os.path.join(out, "runs", s, "cpu.json")))
    wps = r["throughput_ops_per_sec"]
    mbs = wps * int(s) / 1e6
    d = disk["fsync_each_write"].get(s)
    dmbs = d["bytes_per_sec"] / 1e6 if d else None
    cores = c["primary_cpu_s"] / c["wall_s"] if c["wall_s"] > 0 else 0
    us = c["primary_cpu_s"] * 1e6 / (wps * c["wall_s"]) if wps > 0 and c["wall_s"] > 0 else 0
    row = {"value_bytes": int(s), "clients": r["config"]["clients"], "keys": r["config"]["keys"],
           "writes_per_sec": wps, "choir_mb_per_sec": round(mbs, 2),
           "p50_ms": r["latency_ms"]["p50"], "p99_ms": r["latency_ms"]["p99"],
           "errors": r["errors"]["total"], "primary_cpu_cores": round(cores, 2),
           "primary_cpu_us_per_write": round(us, 1), "replicas_cpu_s": c["replicas_cpu_s"],
           "disk_fsync_mb_per_sec": round(dmbs, 2) if dmbs else None,
           "disk_fsync_writes_per_sec": d["writes_per_sec"] if d else None,
           "ratio": round(mbs / dmbs, 2) if dmbs else None, "data_dirs_kib_at_end": c["data_dirs_kib_at_end"]}
    retx, nacks = retransmits(os.path.join(out, "runs", s, "status-after.txt"))
    row["primary_retransmits"] = retx
    row["backup_nacks"] = nacks
    rows.append(row)
stream = disk.get("stream_end_fsync")
json.dump({"environment": env, "disk": disk, "runs": rows}, open(os.path.join(out, "large-values.json"), "w"), indent=2)
print("Choir, 3 replicas on one machine (one disk), fsync durability, writes only; disk: " + disk["tool"])
print("| value | clients | writes/s | Choir MB/s | p50 ms | p99 ms | primary CPU (cores, µs/write) | disk fsync MB/s (writes/s) at that size | ratio | retransmits, NACKs |")
print("|---|---|---|---|---|---|---|---|---|---|")
for w in rows:
    disk_cell = f'{w["disk_fsync_mb_per_sec"]:.1f} ({w["disk_fsync_writes_per_sec"]:,.0f})' if w["disk_fsync_mb_per_sec"] else "-"
    ratio = f'{w["ratio"]:.2f}' if w["ratio"] is not None else "-"
    print(f'| {human(w["value_bytes"])} | {w["clients"]} | {w["writes_per_sec"]:,.0f} | {w["choir_mb_per_sec"]:.1f} | '
          f'{w["p50_ms"]:.2f} | {w["p99_ms"]:.2f} | {w["primary_cpu_cores"]:.2f}, {w["primary_cpu_us_per_write"]:,.0f} | '
          f'{disk_cell} | {ratio} | {w["primary_retransmits"]:,}, {w["backup_nacks"]:,} |')
if stream:
    print(f'disk stream (1 GiB in 1 MiB writes, one fsync at the end): {stream["bytes_per_sec"] / 1e6:.1f} MB/s')
print("Choir MB/s counts the values only; each replica writes every value to its log and its data (three "
      "replicas share the disk here). ratio = Choir MB/s / disk fsync MB/s at that size. retransmits: entries "
      "the primary resent after NACKs, NACKs: sent by the backups, both over the whole run (warmup included).")
for line in env:
    print(line)
EOF
log "results in $OUT (summary.md, large-values.json, disk.json, runs/)"
