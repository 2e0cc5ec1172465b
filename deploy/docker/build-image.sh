#!/usr/bin/env bash
# build-image.sh: builds the distribution (if needed), the base image (if missing) and the server image
# choir:latest. Needs a running Docker engine (deploy/bin/install-docker starts one).
#   BASE_IMAGE=... build-image.sh   use another base (one with a Java 17 runtime)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
base="${BASE_IMAGE:-choir-base:bookworm}"
[ "$base" = "choir-base:bookworm" ] && "$root/deploy/docker/build-base-image.sh"
[ -d "$root/deploy/target/choir/lib" ] || (cd "$root" && mvn -q -B -DskipTests install -pl deploy -am)
ctx="$(mktemp -d /tmp/choir-image.XXXXXX)"
trap 'rm -rf "$ctx"' EXIT
cp -r "$root/deploy/target/choir/lib" "$ctx/lib"
mkdir -p "$ctx/bin" && cp "$root/deploy/docker/choir-in-image" "$ctx/bin/choir"
cp "$root/deploy/docker/choir-ready" "$ctx/bin/choir-ready"
docker build -q --build-arg BASE_IMAGE="$base" -t "${IMAGE:-choir:latest}" -f "$root/deploy/docker/Dockerfile" "$ctx"
