#!/usr/bin/env bash
# keygen.sh: writes the compose cluster's key file secrets/cluster.key (mode 600, owned by the caller)
# with `choir keygen` run in the image, unless it exists. Never commit it (.gitignore keeps it out).
#   IMAGE=...      the image to run keygen in (default choir:latest)
#   --force        replace an existing key (every replica must then restart with the new one)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
key="$here/secrets/cluster.key"
if [ -f "$key" ] && [ "${1:-}" != "--force" ]; then
  echo "keygen: $key exists"
  exit 0
fi
mkdir -p "$here/secrets"
chmod 700 "$here/secrets"
rm -f "$key"
docker run --rm --user "$(id -u):$(id -g)" -v "$here/secrets:/out" --entrypoint /opt/choir/bin/choir \
  "${IMAGE:-choir:latest}" keygen --out /out/cluster.key >/dev/null
chmod 600 "$key"
echo "keygen: wrote $key"
