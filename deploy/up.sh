#!/usr/bin/env bash
# Builds the image and starts the deployment (3 bootstrap members; with --nodes also the
# nodes of docker-compose.nodes.yml, which need the `peerchain node` subcommand).
#
#   deploy/up.sh            # bootstraps on 127.0.0.1:4000-4002
#   deploy/up.sh --nodes    # bootstraps + nodes
set -euo pipefail
cd "$(dirname "$0")"
. ./compose.sh

files=(-f docker-compose.yml)
if [ "${1:-}" = "--nodes" ]; then
  files+=(-f docker-compose.nodes.yml)
fi

../deploy/build-image.sh

# The cluster secret: generated once, kept in deploy/secrets/ (git-ignored). The directory
# is private to the host user; the file itself must be readable by the container's uid 10001.
if [ ! -s secrets/cluster-secret ]; then
  mkdir -p secrets && chmod 700 secrets
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > secrets/cluster-secret
  echo "== generated deploy/secrets/cluster-secret"
fi
chmod 644 secrets/cluster-secret

compose -p "${PEERCHAIN_PROJECT:-peerchain}" "${files[@]}" up -d
echo "== waiting for a leader"
for _ in $(seq 1 60); do
  # The binary just built into the image, run on the host against the published port.
  if .build/peerchain health --bootstrap "127.0.0.1:${PEERCHAIN_PORT_1:-4000}" --timeout 1 2>/dev/null; then
    compose -p "${PEERCHAIN_PROJECT:-peerchain}" "${files[@]}" ps
    exit 0
  fi
  sleep 1
done
echo "FAILED: no leader after 60 s; see: $(compose_cmd) -p ${PEERCHAIN_PROJECT:-peerchain} logs" >&2
exit 1
