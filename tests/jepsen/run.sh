#!/usr/bin/env bash
# run.sh: one command for a Jepsen-style run of Choir: builds what it needs (the server, client and checker
# with Maven, the images with deploy/docker/build-image.sh, this harness), then runs io.choir.jepsen.Run.
#
#   tests/jepsen/run.sh --nodes 3 --workload register --nemesis partition-halves,kill-primary --time-limit 60 --seed 42
#   tests/jepsen/run.sh --help                 every option and nemesis
#   tests/jepsen/run.sh --cleanup              remove every harness container/network (label choir.jepsen=true)
#
# Environment: SKIP_BUILD=1 uses what is already built (jars, choir:latest); IMAGE=name:tag builds and runs
# another image tag. Reports go to tests/jepsen/target/jepsen/<timestamp>/ (and `latest`); open index.html.
# Exit code: 0 valid, 1 invalid, 3 unknown (or the run broke), 2 usage error.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
image="${IMAGE:-choir:latest}"

# Ryuk's image cannot be pulled here (cleanup is by label instead), and /.dockerenv would make
# Testcontainers probe for a gateway with an alpine container; see ../shared/ENVIRONMENT.md.
export TESTCONTAINERS_RYUK_DISABLED=true
export TESTCONTAINERS_HOST_OVERRIDE=localhost

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    "$root/deploy/bin/install-docker"
  else
    echo "run.sh: no Docker engine (run deploy/bin/install-docker as root)" >&2
    exit 3
  fi
fi

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "run.sh: building the server, client, checker and distribution..."
  (cd "$root" && mvn -q -B -DskipTests install -pl deploy,tests/checker -am)
  echo "run.sh: building the image $image..."
  IMAGE="$image" "$root/deploy/docker/build-image.sh" >/dev/null
  echo "run.sh: building the harness..."
  (cd "$root" && mvn -q -B -DskipTests -f tests/jepsen/pom.xml package)
elif [ ! -f "$here/target/choir-jepsen-0.1.0-SNAPSHOT.jar" ]; then
  echo "run.sh: SKIP_BUILD is set but the harness is not built; run without SKIP_BUILD once" >&2
  exit 3
fi

extra=()
if [ -n "${IMAGE:-}" ]; then
  extra=(--image "$IMAGE")
fi
cd "$here"
exec java -Djava.awt.headless=true -cp "target/choir-jepsen-0.1.0-SNAPSHOT.jar:target/lib/*" \
  io.choir.jepsen.Run "${extra[@]}" "$@"
