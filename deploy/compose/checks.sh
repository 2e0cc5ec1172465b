#!/bin/sh
# checks.sh: the client side of test.sh, run INSIDE the compose network in a one-off cli container
# (docker-compose run --rm --entrypoint /bin/sh cli /etc/choir/checks.sh PHASE ...). Every check has a
# deadline and prints its progress; any failure ends with a non-zero status and says what failed.
#   checks.sh first DEADLINE_S        wait for a normal view of 3, then put, sequential gets from each
#                                     replica, a CAS, status; prints "primary=ID" last
#   checks.sh failover OLD DEADLINE_S the old primary OLD is stopped: a write still succeeds, and the
#                                     two others show a normal view with a new primary
#   CHOIR_CHECK_ENDPOINTS             the replicas' client addresses, the Nth being replica N (default
#                                     the compose services'; deploy/k8s/smoke-docker.sh sets the pods')
set -eu
replicas="${CHOIR_CHECK_ENDPOINTS:-choir1:7301 choir2:7302 choir3:7303}"
all="$(echo $replicas | tr ' ' ',')"
export CHOIR_ENDPOINTS="$all"   # every command without --endpoints goes to the whole cluster
key="compose-test-$(date +%s)-$$"

fail() { echo "checks: FAIL: $*" >&2; exit 1; }
now() { date +%s; }

# count PATTERN TEXT: how many times PATTERN (grep -o) occurs in TEXT
count() { printf '%s' "$2" | grep -o "$1" | wc -l | tr -d ' '; }

# normal_view ENDPOINTS N: status of ENDPOINTS shows N members answering, one primary and N-1 backups,
# all in one view with one primary id; sets $status and $primary
normal_view() {
  status="$(choir status --endpoints "$1" --timeout-ms 2000 --json 2>/dev/null)" || return 1
  [ "$(count '"role":"primary"' "$status")" = 1 ] || return 1
  [ "$(count '"role":"backup"' "$status")" = $(($2 - 1)) ] || return 1
  [ "$(printf '%s' "$status" | grep -o '"view":[0-9]*' | sort -u | wc -l | tr -d ' ')" = 1 ] || return 1
  [ "$(printf '%s' "$status" | grep -o '"primary_id":[0-9]*' | sort -u | wc -l | tr -d ' ')" = 1 ] || return 1
  primary="$(printf '%s' "$status" | grep -o '"primary_id":[0-9]*' | head -1 | cut -d: -f2)"
}

# until_ok DEADLINE_S WHAT CMD...: runs CMD until it succeeds, printing progress, failing at the deadline
until_ok() {
  limit=$(($(now) + $1)); what="$2"; shift 2
  while ! "$@"; do
    [ "$(now)" -lt "$limit" ] || fail "$what: not within the deadline"
    echo "checks: waiting: $what" >&2
    sleep 1
  done
}

# quiet CMD...: CMD without its output
quiet() { "$@" >/dev/null; }

# equals EXPECTED CMD...: CMD prints exactly EXPECTED
equals() { want="$1"; shift; [ "$("$@" 2>/dev/null)" = "$want" ]; }

# cas_one_two: one attempt of the CAS one -> two; "unavailable" or "outcome unknown" (exit 3) is
# retried unless the value is already two (then the unknown outcome was a success); a refusal fails
cas_one_two() {
  if out="$(choir cas "$key" one two 2>&1)"; then v2="version $out"; return 0; else rc=$?; fi
  [ "$rc" = 3 ] || fail "cas $key one -> two: exit $rc: $out"
  if [ "$(choir get "$key" 2>/dev/null)" = two ]; then v2="after an unknown outcome"; return 0; fi
  return 1
}

# cas_stale: a CAS expecting the old value must be refused (exit 1); exit 3 is retried
cas_stale() {
  if choir cas "$key" one three >/dev/null 2>&1; then rc=0; else rc=$?; fi
  [ "$rc" != 0 ] || fail "a cas with a stale expectation succeeded"
  [ "$rc" = 1 ]
}

first() {
  until_ok "$1" "a primary and two backups in one view" normal_view "$all" 3
  echo "checks: normal view, primary $primary"
  # the first write registers the client's session; a view change just then (a young cluster on a
  # busy host) makes it wait: retry within the deadline (a put not executed is safe to retry)
  t0=$(now)
  until_ok 30 "the first put of $key" quiet choir put "$key" one
  echo "checks: put $key=one ($(($(now) - t0)) s)"
  for r in $replicas; do
    # a sequential read from this replica alone; a backup may apply the write a moment later
    until_ok 20 "sequential get of $key from $r" equals one choir get "$key" --sequential --endpoints "$r"
    echo "checks: $r serves $key=one (sequential read)"
  done
  until_ok 30 "a cas of $key from one to two" cas_one_two
  until_ok 20 "a linearizable get of $key after the cas" equals two choir get "$key"
  until_ok 30 "a cas of $key from one (now stale) to three" cas_stale
  echo "checks: cas one->two ($v2), then a cas with the stale expectation refused"
  until_ok 20 "3 members in a normal view after the writes" normal_view "$all" 3
  echo "checks: status shows 3 members in a normal view (primary $primary)"
  echo "primary=$primary"
}

failover() {
  old="$1"
  others=""
  n=0
  for r in $replicas; do
    n=$((n + 1))
    [ "$n" = "$old" ] || others="${others:+$others,}$r"
  done
  t0=$(now)
  until_ok "$2" "a write after replica $old stopped" quiet choir put "$key-after" written --timeout-ms 3000
  echo "checks: write succeeded $(($(now) - t0)) s after the check began"
  until_ok 20 "a normal view of the two others" normal_view "$others" 2
  [ "$primary" != "$old" ] || fail "primary is still $old"
  until_ok 20 "a linearizable get of $key-after from the two others" \
    equals written choir get "$key-after" --endpoints "$others"
  echo "checks: new primary $primary; the write reads back"
}

case "${1:-}" in
  first) first "${2:-90}" ;;
  failover) failover "$2" "${3:-60}" ;;
  *) echo "usage: checks.sh first [DEADLINE_S] | failover OLD_PRIMARY [DEADLINE_S]" >&2; exit 2 ;;
esac
