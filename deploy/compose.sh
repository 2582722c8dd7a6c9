# Sourced by up.sh / down.sh: `compose ARGS` runs Docker Compose v2 (`docker compose`) if
# present, else v1 (`docker-compose`), and fails loudly if neither exists.
compose_cmd() {
  if docker compose version >/dev/null 2>&1; then
    echo "docker compose"
  elif command -v docker-compose >/dev/null 2>&1; then
    echo "docker-compose"
  else
    echo "FAILED: neither 'docker compose' nor 'docker-compose' is installed" >&2
    return 1
  fi
}
compose() {
  local cmd
  cmd=$(compose_cmd) || exit 1
  # shellcheck disable=SC2086
  $cmd "$@"
}
