#!/usr/bin/env bash
# test.sh: brings the compose cluster up under its own project name, checks it from a client inside the
# compose network (checks.sh in a one-off cli container), stops the primary and checks that a write
# still succeeds, then always takes everything down again (docker-compose down -v). Builds the image
# and the key file when they are absent. Prints one summary line; exits non-zero on any failure.
#   CHOIR_COMPOSE_DEADLINE_S  how long the cluster may take to elect a primary (default 90)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
start=$(date +%s)
project="choirtest$$"
compose=(docker-compose -p "$project" -f "$here/docker-compose.yml")
stage="setup"
log="$(mktemp /tmp/choir-compose-test.XXXXXX.log)"

elapsed() { echo $(( $(date +%s) - start )); }
say() { echo "compose-test: [$(elapsed) s] $*"; }

finish() {
  rc=$?
  if [ "$rc" != 0 ]; then
    say "failed in stage '$stage'; replica logs (last 40 lines each):"
    for s in choir1 choir2 choir3; do
      "${compose[@]}" logs --no-color --tail 40 "$s" 2>&1 | sed "s/^/  /" || true
    done
  fi
  "${compose[@]}" down -v --remove-orphans >>"$log" 2>&1 || say "docker-compose down failed (see $log)"
  if [ "$rc" = 0 ]; then
    echo "compose-test: PASS in $(elapsed) s: 3 replicas up, put/sequential gets from each/cas/status ok," \
      "primary $old_primary stopped, write ok with new primary $new_primary; down -v done"
    rm -f "$log"
  else
    echo "compose-test: FAIL in $(elapsed) s at stage '$stage' (docker-compose output in $log)"
  fi
  exit "$rc"
}
trap finish EXIT

# pick_ports FROM N: sets ports to N TCP ports from FROM up that nothing listens on
pick_ports() {
  local p
  ports=()
  for p in $(seq "$1" $(( $1 + 500 ))); do
    ss -Htln "sport = :$p" | grep -q . || ports+=("$p")
    [ "${#ports[@]}" -lt "$2" ] || return 0
  done
  return 1
}

stage="prerequisites"
command -v docker-compose >/dev/null || { echo "compose-test: docker-compose is missing (deploy/bin/install-prereqs)" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "compose-test: no Docker engine (deploy/bin/install-docker)" >&2; exit 1; }
image="${CHOIR_IMAGE:-choir:latest}"
if ! docker image inspect "$image" >/dev/null 2>&1; then
  say "building $image"
  IMAGE="$image" "$root/deploy/docker/build-image.sh"
fi
IMAGE="$image" "$here/keygen.sh"
pick_ports 17301 3 || { echo "compose-test: no free ports from 17301" >&2; exit 1; }
CHOIR_PORT_1="${ports[0]}"; CHOIR_PORT_2="${ports[1]}"; CHOIR_PORT_3="${ports[2]}"
export CHOIR_PORT_1 CHOIR_PORT_2 CHOIR_PORT_3 CHOIR_IMAGE="$image"

stage="up"
say "docker-compose up -d (project $project, client ports 127.0.0.1:$CHOIR_PORT_1,$CHOIR_PORT_2,$CHOIR_PORT_3)"
"${compose[@]}" up -d >>"$log" 2>&1

stage="exposure"
# every published port is on 127.0.0.1; the network is a plain bridge (multicast stays on it, TTL 1)
for s in choir1 choir2 choir3; do
  id="$("${compose[@]}" ps -q "$s")"
  bindings="$(docker inspect -f '{{range $p, $b := .NetworkSettings.Ports}}{{range $b}}{{.HostIp}} {{end}}{{end}}' "$id")"
  for ip in $bindings; do
    [ "$ip" = 127.0.0.1 ] || { say "$s publishes a port on $ip, not 127.0.0.1"; exit 1; }
  done
  [ -n "$bindings" ] || { say "$s publishes no port"; exit 1; }
  mode="$(docker inspect -f '{{.HostConfig.NetworkMode}}' "$id")"
  [ "$mode" = "${project}_choir" ] || { say "$s is on network $mode, not ${project}_choir"; exit 1; }
done
driver="$(docker network inspect -f '{{.Driver}} internal={{.Internal}}' "${project}_choir")"
[ "$driver" = "bridge internal=false" ] || { say "network ${project}_choir is '$driver'"; exit 1; }
grep -Eq '^multicast_ttl: 1$' "$here/choir.yaml" && grep -Eq '^multicast_interface: eth0$' "$here/choir.yaml" \
  || { say "choir.yaml must multicast on eth0 with multicast_ttl 1"; exit 1; }
say "ports on 127.0.0.1 only; network ${project}_choir is a plain bridge; multicast on eth0, TTL 1"

stage="first checks"
cli=("${compose[@]}" run --rm -T --entrypoint /bin/sh cli /etc/choir/checks.sh)
out="$("${cli[@]}" first "${CHOIR_COMPOSE_DEADLINE_S:-90}" 2> >(sed "s/^/  /" >&2))"
echo "$out" | grep -v '^primary=' | sed 's/^/  /'
old_primary="$(echo "$out" | sed -n 's/^primary=//p')"
[ -n "$old_primary" ] || { say "the checks named no primary"; exit 1; }
say "first checks passed; primary is replica $old_primary"
# what the replicas report: multicast on the container's eth0, sealed (the key is in use)
for s in choir1 choir2 choir3; do
  "${compose[@]}" logs --no-color "$s" 2>/dev/null | grep 'peer transport up' | grep -q 'interface="eth0".*sealed="true"' \
    || { say "$s did not report its peer transport up on eth0, sealed"; exit 1; }
done
say "each replica multicasts on its eth0 with datagrams sealed"

stage="failover"
say "stopping the primary's container choir$old_primary"
"${compose[@]}" stop -t 15 "choir$old_primary" >>"$log" 2>&1
out="$("${cli[@]}" failover "$old_primary" 60 2> >(sed "s/^/  /" >&2))"
echo "$out" | sed 's/^/  /'
new_primary="$(echo "$out" | sed -n 's/.*new primary \([0-9]*\).*/\1/p')"
say "failover checks passed"
stage="down"
