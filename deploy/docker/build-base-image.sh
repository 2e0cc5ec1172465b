#!/usr/bin/env bash
# build-base-image.sh: makes the registry-free base image choir-base:bookworm from Debian's packages
# (debootstrap + docker import), as ../shared/ENVIRONMENT.md describes. Reused when it already exists.
#   FORCE=1 build-base-image.sh   rebuild even if present
set -euo pipefail
image="${BASE_IMAGE_NAME:-choir-base:bookworm}"
if [ -z "${FORCE:-}" ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image present"; exit 0
fi
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
dir="$(mktemp -d /tmp/choir-rootfs.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
echo "debootstrap bookworm into $dir (about a minute)..."
debootstrap --variant=minbase --include=openjdk-17-jre-headless,nftables,iproute2,procps bookworm "$dir" >/dev/null
tar -C "$dir" -c . | docker import - "$image" >/dev/null
echo "built $image"
