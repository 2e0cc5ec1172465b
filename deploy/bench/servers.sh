# servers.sh: the peer clusters of the benchmark scripts, sourced (compare-etcd.sh, ycsb-compare.sh)
# after the caller has set tmp (a scratch folder), OUT, KEEP, pids=(), log/die, and the ports
# ETCD_PORT ETCD_PEER_PORT CHOIR_PORT (REDIS_PORT for Redis; JGROUPS_PORT JGROUPS_MCAST_ADDR
# JGROUPS_MCAST_PORT and ycsb_cp, the YCSB bindings' classpath, for JGroups), and for Choir choir (the
# command, an array) CHOIR_DURABILITY CHOIR_SETTINGS. Each start_* starts three members on loopback in the
# background, appends their pids to pids and to its own array, and returns once the cluster serves;
# servers_cleanup (the caller's EXIT trap) stops every one and keeps the logs in OUT. Optional for Choir:
# CHOIR_METRICS_PORT (replica i serves its metrics endpoint on 127.0.0.1:CHOIR_METRICS_PORT+i-1).
etcd_clients=""
etcd_initial=""
for i in 1 2 3; do
  etcd_clients+="${etcd_clients:+,}http://127.0.0.1:$((ETCD_PORT + i - 1))"
  etcd_initial+="${etcd_initial:+,}m$i=http://127.0.0.1:$((ETCD_PEER_PORT + i - 1))"
done
choir_endpoints="127.0.0.1:${CHOIR_PORT},127.0.0.1:$((CHOIR_PORT + 1)),127.0.0.1:$((CHOIR_PORT + 2))"

# Stops the given processes: TERM, up to 10 s each, then KILL.
stop_pids() {
  local p
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "$@"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
}

# The EXIT trap: stops everything started, keeps the logs in OUT, removes tmp unless KEEP=1.
servers_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pids "${pids[@]}"
  cp "$tmp"/*.log "$OUT"/ 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}

etcd_pids=()
choir_pids=()
redis_pids=()
jgroups_pids=()

# --- etcd: 3 members on 127.0.0.1, default (fsync) durability ----------------------------------
start_etcd() {
  log "starting etcd $(etcd --version 2>/dev/null | head -1 | awk '{print $3}') x3 on $etcd_clients"
  for i in 1 2 3; do
    etcd --name "m$i" --data-dir "$tmp/etcd/m$i" \
      --listen-client-urls "http://127.0.0.1:$((ETCD_PORT + i - 1))" \
      --advertise-client-urls "http://127.0.0.1:$((ETCD_PORT + i - 1))" \
      --listen-peer-urls "http://127.0.0.1:$((ETCD_PEER_PORT + i - 1))" \
      --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PEER_PORT + i - 1))" \
      --initial-cluster "$etcd_initial" --initial-cluster-token choir-bench --initial-cluster-state new \
      >"$tmp/etcd-m$i.log" 2>&1 &
    pids+=($!)
    etcd_pids+=($!)
  done
  for _ in $(seq 1 60); do
    if ETCDCTL_API=3 etcdctl --endpoints="$etcd_clients" endpoint health >/dev/null 2>&1; then
      ETCDCTL_API=3 etcdctl --endpoints="$etcd_clients" endpoint status -w table >&2
      return 0
    fi
    sleep 0.5
  done
  die "etcd did not become healthy (logs in $tmp)"
}

# --- Choir: 3 replicas, durability fsync (the default) -----------------------------------------
start_choir() {
  log "starting choir x3 on $choir_endpoints (durability $CHOIR_DURABILITY)"
  "${choir[@]}" cluster init --replicas 3 --dir "$tmp/choir" --base-port "$CHOIR_PORT" --durability "$CHOIR_DURABILITY" >/dev/null
  if [ -n "$CHOIR_SETTINGS" ]; then
    local kv
    for f in "$tmp"/choir/node*.yaml; do
      IFS=, read -r -a kv <<<"$CHOIR_SETTINGS"
      for setting in "${kv[@]}"; do
        printf '%s: %s\n' "${setting%%=*}" "${setting#*=}" >>"$f"
      done
    done
  fi
  if [ -n "${CHOIR_METRICS_PORT:-}" ]; then
    local i
    for i in 1 2 3; do
      printf 'metrics_address: 127.0.0.1:%s\n' "$((CHOIR_METRICS_PORT + i - 1))" >>"$tmp/choir/node$i.yaml"
    done
  fi
  setsid "${choir[@]}" cluster up --dir "$tmp/choir" >"$tmp/choir.log" 2>&1 &
  pids+=($!)
  # Healthy: all three answer status, one is primary, and a write commits (a majority has it on disk).
  for _ in $(seq 1 120); do
    local st
    st="$("${choir[@]}" status --json --endpoints "$choir_endpoints" 2>/dev/null || true)"
    # Three replicas answered (one "cluster_id" each; "role" also names each member's role in the view).
    if [ "$(grep -o '"cluster_id":' <<<"$st" | wc -l)" = 3 ] && grep -q '"role":"primary"' <<<"$st" \
       && "${choir[@]}" put bench/health ok --endpoints "$choir_endpoints" --timeout-ms 2000 >/dev/null 2>&1; then
      "${choir[@]}" status --endpoints "$choir_endpoints" >&2
      mapfile -t choir_pids < <(pgrep -P "${pids[-1]}")
      return 0
    fi
    sleep 0.5
  done
  die "choir did not become healthy (log: $tmp/choir.log)"
}

# --- Redis: a primary and two replicas on 127.0.0.1, in memory (no RDB, no AOF): WAIT is what a
# write waits for, and a Redis replica acknowledges from memory ----------------------------------------
start_redis() {
  log "starting $(redis-server --version | awk '{print $1, $3}') x3 on ports $REDIS_PORT..$((REDIS_PORT + 2))"
  local i
  for i in 0 1 2; do
    local args=(--port "$((REDIS_PORT + i))" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp"
      --daemonize no --protected-mode yes --logfile "$tmp/redis-$i.log")
    [ "$i" -gt 0 ] && args+=(--replicaof 127.0.0.1 "$REDIS_PORT")
    redis-server "${args[@]}" &
    pids+=($!)
    redis_pids+=($!)
  done
  for _ in $(seq 1 60); do
    if [ "$(redis-cli -p "$REDIS_PORT" info replication 2>/dev/null | grep -c 'state=online')" = 2 ]; then
      return 0
    fi
    sleep 0.5
  done
  die "redis replicas did not come online (logs in $tmp)"
}

# --- JGroups: two member processes holding a ReplicatedHashMap (io.choir.ycsb.JGroupsMember, stack
# tests/ycsb/src/main/resources/jgroups-loopback.xml: UDP on 127.0.0.1, multicast on loopback with TTL 0);
# the YCSB process joins as the third member (io.choir.ycsb.JGroupsYcsbClient). In memory only. --------
jgroups_args() {
  echo "--cluster choir-bench --mcast-addr $JGROUPS_MCAST_ADDR --mcast-port $JGROUPS_MCAST_PORT --bind-port $JGROUPS_PORT"
}
start_jgroups() {
  local jar
  jar="$(awk -v RS=: '/\/jgroups-[0-9]/ {print; exit}' <<<"$ycsb_cp")"
  log "starting JGroups $(basename "$jar" .jar | sed 's/^jgroups-//') ReplicatedHashMap members x2 (the YCSB process is the third) on 127.0.0.1:$JGROUPS_PORT.., multicast $JGROUPS_MCAST_ADDR:$JGROUPS_MCAST_PORT on loopback"
  local i args
  read -r -a args <<<"$(jgroups_args)"
  # One after the other: two members started at once may each found a cluster (merged only later).
  for i in 1 2; do
    java -Xmx1g -XX:+UseG1GC -cp "$ycsb_cp" io.choir.ycsb.JGroupsMember "${args[@]}" --expect "$i" \
      >"$tmp/jgroups-m$i.log" 2>&1 &
    pids+=($!)
    jgroups_pids+=($!)
    for _ in $(seq 1 120); do
      grep -q "^ready members=$i" "$tmp/jgroups-m$i.log" && break
      kill -0 "${jgroups_pids[-1]}" 2>/dev/null || die "JGroups member $i exited (log: $tmp/jgroups-m$i.log)"
      sleep 0.5
    done
    grep -q "^ready members=$i" "$tmp/jgroups-m$i.log" || die "JGroups member $i saw no view of $i members (log: $tmp/jgroups-m$i.log)"
  done
  grep -h '^ready' "$tmp"/jgroups-m*.log >&2
}

# CPU seconds (user+system) used so far by the given processes and their children's threads.
cpu_seconds() {
  local tck total=0 p t
  tck="$(getconf CLK_TCK)"
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t="$(awk '{print $14 + $15}' "/proc/$p/stat")"
    total=$((total + t))
  done
  awk -v t="$total" -v k="$tck" 'BEGIN{printf "%.1f", t / k}'
}
