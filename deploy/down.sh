#!/usr/bin/env bash
# Stops the deployment and deletes its containers, network and volumes (the registry!).
# The cluster secret in deploy/secrets/ is kept.
set -euo pipefail
cd "$(dirname "$0")"
. ./compose.sh
compose -p "${PEERCHAIN_PROJECT:-peerchain}" -f docker-compose.yml down --volumes --remove-orphans
