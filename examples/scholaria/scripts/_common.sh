# Shared by backup.sh, restore.sh and backup-scheduler.sh (sourced, not run).
#
# Finds the scholaria-backup command and the configuration:
#   SCHOLARIA_BACKUP_BIN  the command to run (a path; a .js file is run with node)
#   BACKUP_CONFIG         the config file (default: backup.config.ts next to this scripts/ folder;
#                         "none" passes no --config: the CLI then uses a backup.config.* in the
#                         working directory, else the environment variables alone)
# Without a scholaria-backup command, the call is handed to the `backup` service of docker
# compose when one is running, so the host commands of the strategy document work as well.

# The real folder of the script, even when called through a symlink such as /scripts.
SCRIPT_DIR="$(cd -P "$(dirname "$(readlink -f "${BASH_SOURCE[1]:-$0}")")" && pwd)"
EXAMPLE_DIR="$(dirname "$SCRIPT_DIR")"

CLI=()
find_cli() {
  if [ -n "${SCHOLARIA_BACKUP_BIN:-}" ]; then
    case "$SCHOLARIA_BACKUP_BIN" in
      *.js | *.mjs) CLI=(node "$SCHOLARIA_BACKUP_BIN") ;;
      *) CLI=("$SCHOLARIA_BACKUP_BIN") ;;
    esac
    return 0
  fi
  if command -v scholaria-backup >/dev/null 2>&1; then
    CLI=(scholaria-backup)
    return 0
  fi
  local candidate
  for candidate in "$EXAMPLE_DIR/../../packages/cli/dist/bin.js" "$EXAMPLE_DIR/node_modules/@scholaria/backup-cli/dist/bin.js"; do
    if [ -f "$candidate" ]; then
      CLI=(node "$candidate")
      return 0
    fi
  done
  return 1
}

CONFIG_ARGS=()
find_config() {
  local config="${BACKUP_CONFIG:-$EXAMPLE_DIR/backup.config.ts}"
  if [ "$config" = "none" ]; then return 0; fi
  if [ ! -f "$config" ]; then
    echo "$(basename "$0"): config file $config not found (set BACKUP_CONFIG, or BACKUP_CONFIG=none to use the environment only)" >&2
    exit 2
  fi
  CONFIG_ARGS=(--config "$config")
}

# run_cli ARGS...: runs scholaria-backup with the configuration, or hands the whole script call to
# the compose `backup` service.
run_cli() {
  if find_cli; then
    find_config
    "${CLI[@]}" "${CONFIG_ARGS[@]}" "$@"
    return $?
  fi
  if [ -z "${SCHOLARIA_BACKUP_IN_CONTAINER:-}" ] && command -v docker >/dev/null 2>&1 &&
    docker compose ps --status running --services 2>/dev/null | grep -qx backup; then
    local tty=()
    [ -t 0 ] && [ -t 1 ] || tty=(-T)
    # RESTORE_CONFIRM is the one setting the scripts read from the caller's shell.
    docker compose exec "${tty[@]}" -e "RESTORE_CONFIRM=${RESTORE_CONFIRM:-}" backup "/scripts/$(basename "$0")" "${ORIGINAL_ARGS[@]}"
    return $?
  fi
  cat >&2 <<MSG
$(basename "$0"): the scholaria-backup command was not found.
  - in this repository: run ./scripts/setup.sh && pnpm build (it is then packages/cli/dist/bin.js);
  - elsewhere: npm install -g @scholaria/backup-cli, or set SCHOLARIA_BACKUP_BIN;
  - with docker compose: start the backup service (docker compose --profile backup up -d).
MSG
  return 2
}

# exec_cli ARGS...: like run_cli, but the command replaces this shell, so signals (SIGTERM from
# docker stop, Ctrl-C) reach scholaria-backup itself and it can stop cleanly.
exec_cli() {
  if find_cli; then
    find_config
    exec "${CLI[@]}" "${CONFIG_ARGS[@]}" "$@"
  fi
  run_cli "$@"
  exit $?
}
