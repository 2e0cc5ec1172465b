#!/usr/bin/env bash
# smoke-docker.sh: runs the StatefulSet's pods as Docker containers, with no Kubernetes: the ConfigMap's
# choir.yaml and entrypoint.sh, the pod's environment, uid 10001 with a read-only root, the key
# group-readable as a Secret volume with fsGroup makes it, host names choir-0..2 and the pods' DNS names
# (choir-N.choir-peers.choir.svc.cluster.local) as network aliases, on an --internal network, which
# drops multicast as most pod networks do. Then deploy/compose/checks.sh from a client container:
# a normal view, put, sequential gets from each replica, CAS, the primary stopped, a write.
# Always removes what it made. Needs a server with peer_transport (issue 12's transport work).
#   CHOIR_IMAGE       the image (default choir:latest)
#   CHOIR_SMOKE_KEEP=1  leave the containers and the network for a look after a failure
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
image="${CHOIR_IMAGE:-choir:latest}"
start=$(date +%s)
run="choir-k8s-smoke-$$"
tmp="$(mktemp -d /tmp/choir-k8s-smoke.XXXXXX)"
say() { echo "k8s-smoke: [$(( $(date +%s) - start )) s] $*"; }
cleanup() {
  rc=$?
  if [ "$rc" != 0 ]; then
    for i in 0 1 2; do docker logs --tail 30 "$run-choir-$i" 2>&1 | sed "s/^/  choir-$i: /" || true; done
  fi
  if [ -n "${CHOIR_SMOKE_KEEP:-}" ]; then
    say "kept: containers $run-choir-0..2, network $run, files $tmp"
  else
    for i in 0 1 2; do docker rm -f "$run-choir-$i" >/dev/null 2>&1 || true; done
    docker network rm "$run" >/dev/null 2>&1 || true
    rm -rf "$tmp"
  fi
  [ "$rc" = 0 ] && say "PASS" || say "FAIL"
  exit "$rc"
}
trap cleanup EXIT

k() { kubectl annotate --local --dry-run=client -f "$here/$1" choir.io/v=1 -o "jsonpath=$2"; }
k configmap.yaml '{.data.choir\.yaml}' >"$tmp/choir.yaml"
k configmap.yaml '{.data.entrypoint\.sh}' >"$tmp/entrypoint.sh"
envof() { k statefulset.yaml "{.spec.template.spec.containers[0].env[?(@.name==\"$1\")].value}"; }
peers="$(envof CHOIR_PEERS)"; key_source="$(envof CHOIR_KEY_SOURCE)"; key_file="$(envof CHOIR_KEY_FILE)"
java_opts="$(envof CHOIR_JAVA_OPTS)"
mkdir "$tmp/key"
docker run --rm --user "$(id -u):$(id -g)" -v "$tmp/key:/out" --entrypoint /opt/choir/bin/choir "$image" \
  keygen --out /out/cluster.key >/dev/null
chgrp 10001 "$tmp/key/cluster.key" && chmod 0440 "$tmp/key/cluster.key"
chmod 755 "$tmp" "$tmp/key" && chmod 644 "$tmp/choir.yaml" "$tmp/entrypoint.sh"

docker network create --internal "$run" >/dev/null
say "network $run (--internal: no multicast); starting choir-0..2 from the StatefulSet's pod spec"
i=0
for host in $peers; do
  docker run -d --name "$run-choir-$i" --hostname "choir-$i" --network "$run" --network-alias "$host" \
    --user 10001:10001 --group-add 10001 --read-only --cap-drop ALL --security-opt no-new-privileges \
    --tmpfs /tmp:exec,uid=10001,gid=10001 --tmpfs /run/choir:uid=10001,gid=10001 \
    --tmpfs /var/lib/choir:uid=10001,gid=10001 \
    -v "$tmp/choir.yaml:/etc/choir/choir.yaml:ro" -v "$tmp/entrypoint.sh:/etc/choir/entrypoint.sh:ro" \
    -v "$tmp/key/cluster.key:$key_source:ro" \
    -e CHOIR_CONFIG=/etc/choir/choir.yaml -e CHOIR_PEERS="$peers" -e CHOIR_KEY_SOURCE="$key_source" \
    -e CHOIR_KEY_FILE="$key_file" -e CHOIR_JAVA_OPTS="$java_opts -Xmx256m" \
    --entrypoint /bin/sh "$image" /etc/choir/entrypoint.sh >/dev/null
  i=$((i + 1))
done
# each replica starts or says why not (a refused configuration ends its container at once)
deadline=$(( $(date +%s) + 120 ))
while :; do
  started=0
  for i in 0 1 2; do
    if docker logs "$run-choir-$i" 2>&1 | grep -q 'replica started'; then
      started=$((started + 1))
    elif [ "$(docker inspect -f '{{.State.Running}}' "$run-choir-$i")" != true ]; then
      say "choir-$i exited: $(docker logs "$run-choir-$i" 2>&1 | grep -m1 'choir server:' | sed 's/ (known: .*//')"
      exit 1
    fi
  done
  [ "$started" -lt 3 ] || break
  [ "$(date +%s)" -lt "$deadline" ] || { say "only $started of 3 replicas started within 120 s"; exit 1; }
  sleep 1
done
say "the three replicas started"
endpoints="$(for h in $peers; do printf '%s:7301 ' "$h"; done)"
check() {
  docker run --rm --network "$run" -v "$root/deploy/compose/checks.sh:/checks.sh:ro" \
    -e CHOIR_CHECK_ENDPOINTS="$endpoints" -e CHOIR_JAVA_OPTS="-Xmx128m -XX:TieredStopAtLevel=1" \
    --entrypoint /bin/sh "$image" /checks.sh "$@"
}
out="$(check first 120 2> >(sed 's/^/  /' >&2))"
echo "$out" | grep -v '^primary=' | sed 's/^/  /'
old="$(echo "$out" | sed -n 's/^primary=//p')"
[ -n "$old" ] || { say "the checks named no primary"; exit 1; }
say "first checks passed; primary is replica $old (pod choir-$((old - 1)))"
docker stop -t 20 "$run-choir-$((old - 1))" >/dev/null
say "stopped choir-$((old - 1))"
check failover "$old" 60 2> >(sed 's/^/  /' >&2) | sed 's/^/  /'
say "failover checks passed"
