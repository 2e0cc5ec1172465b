#!/bin/sh
# entrypoint.sh: starts one Choir replica in a container (compose and Kubernetes alike).
#   CHOIR_REPLICA_ID   the replica id; when unset, the ordinal of the host name plus one
#                      (a StatefulSet's pod choir-0 is replica 1)
#   CHOIR_CONFIG       the configuration file (default /etc/choir/choir.yaml)
#   CHOIR_PEERS        host names to wait for in DNS before starting (space separated), so the
#                      first view forms at once (the replica also retries names that do not resolve yet)
#   CHOIR_PEER_WAIT_S  how long to wait for them (default 120), then start anyway
#   CHOIR_KEY_SOURCE   optional: a key file to copy to CHOIR_KEY_FILE with mode 600 first (a Kubernetes
#                      secret volume with fsGroup is group-readable, which the replica refuses)
# Further arguments go to `choir server`.
set -eu
config="${CHOIR_CONFIG:-/etc/choir/choir.yaml}"
id="${CHOIR_REPLICA_ID:-}"
if [ -z "$id" ]; then
  host="$(hostname)"
  ordinal="${host##*-}"
  case "$ordinal" in
    '' | *[!0-9]*)
      echo "entrypoint: CHOIR_REPLICA_ID is unset and host name $host ends in no ordinal" >&2
      exit 2 ;;
  esac
  id=$((ordinal + 1))
fi
if [ -n "${CHOIR_KEY_SOURCE:-}" ]; then
  : "${CHOIR_KEY_FILE:?CHOIR_KEY_SOURCE needs CHOIR_KEY_FILE}"
  (umask 077 && cat "$CHOIR_KEY_SOURCE" >"$CHOIR_KEY_FILE.tmp" && mv "$CHOIR_KEY_FILE.tmp" "$CHOIR_KEY_FILE")
fi
# the shell is process 1 until exec: without this it would ignore SIGTERM while it waits
trap 'exit 143' TERM INT
wait_s="${CHOIR_PEER_WAIT_S:-120}"
for peer in ${CHOIR_PEERS:-}; do
  waited=0
  until getent hosts "$peer" >/dev/null 2>&1; do
    if [ "$waited" -ge "$wait_s" ]; then
      echo "entrypoint: $peer does not resolve after ${wait_s} s; starting anyway" >&2
      break
    fi
    [ $((waited % 10)) -eq 0 ] && echo "entrypoint: waiting for $peer to resolve" >&2
    sleep 1
    waited=$((waited + 1))
  done
done
echo "entrypoint: replica $id, config $config" >&2
exec /opt/choir/bin/choir server --config "$config" --replica-id "$id" "$@"
