#!/usr/bin/env bash
# The backup service of the strategy document (the `backup` container runs `run`).
#
#   ./scripts/backup-scheduler.sh run            daily 02:00, weekly Sunday 03:00, monthly 1st 04:00
#                                                (Asia/Seoul), prune after each backup; until SIGTERM
#   ./scripts/backup-scheduler.sh status         next run and last set per tier, missed runs, running job
#   ./scripts/backup-scheduler.sh health-check   backup folder reachable and writable, a recent backup
#                                                per tier, free disk space, tools, sources reachable,
#                                                and these scripts executable
#
# Extra arguments go to scholaria-backup (e.g. --json). Exit codes: 0 ok, 1 failure,
# 2 bad usage or configuration, 3 warning (health-check).
set -uo pipefail
ORIGINAL_ARGS=("$@")
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/_common.sh"

usage() {
  sed -n '2,13p' "$SCRIPT_DIR/backup-scheduler.sh" | sed 's/^# \{0,1\}//'
}

# The strategy document's "스크립트 실행 권한" check: every wrapper must be executable.
scripts_check() {
  local bad=() s
  for s in backup.sh restore.sh backup-scheduler.sh; do
    [ -x "$SCRIPT_DIR/$s" ] || bad+=("$s")
  done
  if [ ${#bad[@]} -gt 0 ]; then
    echo "FAIL   script permissions   not executable: ${bad[*]} (run: chmod +x $SCRIPT_DIR/*.sh)" >&2
    return 1
  fi
  return 0
}

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  run | start)
    exec_cli scheduler run "$@"
    ;;
  status)
    exec_cli scheduler status "$@"
    ;;
  health-check | health)
    scripts_check
    scripts=$?
    run_cli health-check "$@"
    code=$?
    if [ "$scripts" -ne 0 ] && { [ "$code" -eq 0 ] || [ "$code" -eq 3 ]; }; then code=1; fi
    exit "$code"
    ;;
  -h | --help | help)
    usage
    ;;
  "")
    usage >&2
    exit 2
    ;;
  *)
    echo "backup-scheduler.sh: unknown command \"$command\" (expected run, status or health-check)" >&2
    exit 2
    ;;
esac
