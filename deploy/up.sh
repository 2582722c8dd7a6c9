#!/usr/bin/env bash
# Builds the image and starts the deployment: 3 bootstrap members (127.0.0.1:4000-4002) and
# 4 nodes (127.0.0.1:7000-7003), then waits for a leader and for every node to join.
#
#   deploy/up.sh
set -euo pipefail
cd "$(dirname "$0")"
. ./compose.sh

files=(-f docker-compose.yml)

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
leader=""
for _ in $(seq 1 60); do
  # The binary just built into the image, run on the host against the published port.
  if .build/peerchain health --bootstrap "127.0.0.1:${PEERCHAIN_PORT_1:-4000}" --timeout 1 >/dev/null 2>&1; then
    leader=yes
    break
  fi
  sleep 1
done
if [ -z "$leader" ]; then
  echo "FAILED: no leader after 60 s; see: $(compose_cmd) -p ${PEERCHAIN_PROJECT:-peerchain} logs" >&2
  exit 1
fi
echo "== waiting for the nodes"
for port in "${PEERCHAIN_NODE_PORT_1:-7000}" "${PEERCHAIN_NODE_PORT_2:-7001}" \
            "${PEERCHAIN_NODE_PORT_3:-7002}" "${PEERCHAIN_NODE_PORT_4:-7003}"; do
  ok=""
  for _ in $(seq 1 60); do
    if .build/peerchain health --node "127.0.0.1:$port" --timeout 1 2>/dev/null; then
      ok=yes
      break
    fi
    sleep 1
  done
  [ -n "$ok" ] || { echo "FAILED: node on 127.0.0.1:$port did not answer within 60 s" >&2; exit 1; }
done
compose -p "${PEERCHAIN_PROJECT:-peerchain}" "${files[@]}" ps
echo "== up: try  deploy/.build/peerchain ctl status --node 127.0.0.1:${PEERCHAIN_NODE_PORT_1:-7000}"
echo "== status pages: http://127.0.0.1:${PEERCHAIN_HTTP_PORT_1-8081}/ (member 1), http://127.0.0.1:${PEERCHAIN_NODE_HTTP_PORT_1-8091}/ (node 1); metrics at /metrics"
