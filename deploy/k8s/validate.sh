#!/usr/bin/env bash
# validate.sh: checks deploy/k8s offline, with no cluster:
#   1. kubectl parses every manifest (and the Secret template in examples/) client-side;
#   2. check-manifests.py: the pieces fit (namespace, DNS names of the pods = replicas, probes, PDB...);
#   3. the ConfigMap's entrypoint.sh is deploy/compose/entrypoint.sh, and sh can parse it;
#   4. the server's own loader accepts the ConfigMap's choir.yaml: the pod start path run for real, in
#      the image as the pod runs it (uid 10001, read-only root, the key group-readable as a Secret
#      volume with fsGroup makes it, host name choir-1: replica 2), `choir server --print-config`.
#      Without Docker or the image: the built distribution (deploy/target/choir), else deploy/bin/choir.
# Prints one line per step and a summary; exits non-zero when any step fails, naming what failed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tmp="$(mktemp -d /tmp/choir-k8s-validate.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
failed=()
say() { echo "k8s-validate: $*"; }

# 1. kubectl, client side. `kubectl create --dry-run=client` asks the API server for the kinds' REST
# mapping even with --validate=false, so with no cluster it cannot run; a --local edit parses and
# prints every object with no server at all (the same decoding, no schema: --validate=false).
command -v kubectl >/dev/null || { say "kubectl is missing (deploy/bin/install-prereqs)"; exit 1; }
if kubectl annotate --local --dry-run=client -o yaml -f "$here" -f "$here/examples" \
    choir.io/validated=offline >"$tmp/all.yaml" 2>"$tmp/kubectl.err"; then
  say "kubectl parsed $(grep -c '^kind:' "$tmp/all.yaml") objects: $(sed -n 's/^kind: //p' "$tmp/all.yaml" | sort | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')"
else
  cat "$tmp/kubectl.err" >&2
  failed+=("kubectl")
fi

# 2. consistency (Debian's python, where install-prereqs puts python3-yaml, else the first on PATH)
py=/usr/bin/python3
[ -x "$py" ] && "$py" -c 'import yaml' 2>/dev/null || py=python3
if "$py" -c 'import yaml' 2>/dev/null; then
  "$py" "$here/check-manifests.py" "$tmp/all.yaml" | sed 's/^/k8s-validate: /' || failed+=("check-manifests")
else
  say "python3 with yaml is missing: consistency checks skipped"
  failed+=("check-manifests (python3-yaml missing)")
fi

# 3. the entrypoint
jp() { kubectl annotate --local --dry-run=client -f "$here/configmap.yaml" choir.io/v=1 -o "jsonpath={.data.$1}"; }
jp 'choir\.yaml' >"$tmp/choir.yaml"
jp 'entrypoint\.sh' >"$tmp/entrypoint.sh"
if cmp -s "$tmp/entrypoint.sh" "$root/deploy/compose/entrypoint.sh" && sh -n "$tmp/entrypoint.sh"; then
  say "entrypoint.sh in the ConfigMap is deploy/compose/entrypoint.sh and parses"
else
  diff "$root/deploy/compose/entrypoint.sh" "$tmp/entrypoint.sh" >&2 || true
  failed+=("entrypoint.sh differs from deploy/compose/entrypoint.sh")
fi

# 4. the server's loader
image="${CHOIR_IMAGE:-choir:latest}"
key_in_config="$(sed -n 's/^cluster_key_file: *//p' "$tmp/choir.yaml")"
if docker image inspect "$image" >/dev/null 2>&1; then
  how="image $image"
  mkdir -p "$tmp/key"
  docker run --rm --user "$(id -u):$(id -g)" -v "$tmp/key:/out" --entrypoint /opt/choir/bin/choir "$image" \
    keygen --out /out/cluster.key >/dev/null
  chgrp 10001 "$tmp/key/cluster.key" && chmod 0440 "$tmp/key/cluster.key" && chmod 755 "$tmp" "$tmp/key"
  chmod 644 "$tmp/choir.yaml" "$tmp/entrypoint.sh"
  load() {  # load CONFIG: runs the pod's start path with --print-config
    docker run --rm --hostname choir-1 --user 10001:10001 --group-add 10001 --read-only \
      --tmpfs /tmp:exec,uid=10001,gid=10001 --tmpfs /run/choir:uid=10001,gid=10001 \
      --tmpfs /var/lib/choir:uid=10001,gid=10001 \
      -v "$1:/etc/choir/choir.yaml:ro" -v "$tmp/entrypoint.sh:/etc/choir/entrypoint.sh:ro" \
      -v "$tmp/key/cluster.key:/etc/choir-key/cluster.key:ro" \
      -e CHOIR_CONFIG=/etc/choir/choir.yaml -e CHOIR_PEERS= -e CHOIR_KEY_SOURCE=/etc/choir-key/cluster.key \
      -e CHOIR_KEY_FILE="$key_in_config" --network none --entrypoint /bin/sh \
      "$image" /etc/choir/entrypoint.sh --print-config
  }
else
  mkdir -p "$tmp/data"
  if [ -d "$root/deploy/target/choir/lib" ]; then
    how="the distribution deploy/target/choir"
    choir=(java -cp "$root/deploy/target/choir/lib/*" io.choir.launcher.ChoirLauncher)
  else
    how="deploy/bin/choir"
    choir=("$root/deploy/bin/choir")
  fi
  "${choir[@]}" keygen --out "$tmp/cluster.key" >/dev/null
  load() {  # load CONFIG: the loader with the pod's paths replaced by local ones, replica 2
    "${choir[@]}" server --config "$1" --replica-id 2 --cluster-key-file "$tmp/cluster.key" \
      --data-dir "$tmp/data" --print-config
  }
fi
if load "$tmp/choir.yaml" >"$tmp/print.out" 2>"$tmp/print.err"; then
  say "the server ($how) accepts the ConfigMap's choir.yaml: $(grep -E '^(replica_id|peer_transport|cluster_key_file):' "$tmp/print.out" | tr '\n' ' ')"
else
  refusal="$(grep -m1 'bad configuration' "$tmp/print.err" || tail -3 "$tmp/print.err")"
  key="$(echo "$refusal" | sed -n "s/.*bad configuration: setting '\([a-z_]*\)'.*/\1/p")"
  say "the server ($how) refuses the ConfigMap's choir.yaml: $(echo "$refusal" | sed 's/ (known: .*//')"
  if [ -n "$key" ]; then
    # say whether the rest is accepted: the same file without the refused setting
    grep -v "^$key:" "$tmp/choir.yaml" >"$tmp/without.yaml"
    chmod 644 "$tmp/without.yaml"
    if load "$tmp/without.yaml" >"$tmp/print2.out" 2>"$tmp/print2.err"; then
      say "without $key the server accepts the rest (replica_id $(sed -n 's/^replica_id: //p' "$tmp/print2.out"))"
    else
      say "without $key it still refuses: $(grep -m1 'bad configuration' "$tmp/print2.err" || tail -1 "$tmp/print2.err")"
    fi
  fi
  failed+=("server loader refuses ${key:-the config}")
fi

if [ ${#failed[@]} -eq 0 ]; then
  say "PASS: manifests parse and fit; the server accepts the ConfigMap's configuration"
else
  say "FAIL: $(IFS=';'; echo "${failed[*]}")"
  exit 1
fi
