#!/usr/bin/env bash
# Restores a backup set: `latest` (the newest complete set) or a set id.
#
#   ./scripts/restore.sh latest                        every component of the set
#   ./scripts/restore.sh --component postgres latest   PostgreSQL only
#   ./scripts/restore.sh --dry-run latest              verify the checksums and print the plan; changes nothing
#
# Every artifact's SHA-256 is verified before any live data is touched. Confirmation: on a
# terminal the command shows what it will overwrite and asks you to type "yes" (or the set id);
# without a terminal (cron, CI, `docker compose exec -T`) it refuses unless confirmed with
# RESTORE_CONFIRM=yes in the environment or --yes. --dry-run never asks.
# Exit codes: 0 restored, 1 failed or cancelled, 2 bad usage, unknown set or no confirmation.
set -uo pipefail
ORIGINAL_ARGS=("$@")
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/_common.sh"

args=("$@")
case "${1:-}" in
  -h | --help)
    sed -n '2,13p' "$SCRIPT_DIR/restore.sh" | sed 's/^# \{0,1\}//'
    echo
    ;;
esac
case "${RESTORE_CONFIRM:-}" in
  yes | YES | Yes) args+=(--yes) ;;
  "" | no | NO | No) ;;
  *)
    echo "restore.sh: RESTORE_CONFIRM must be \"yes\" (or unset), got \"$RESTORE_CONFIRM\"" >&2
    exit 2
    ;;
esac
run_cli restore "${args[@]}"
code=$?
if [ "$code" -eq 2 ] && [ ! -t 0 ] && [ -z "${RESTORE_CONFIRM:-}" ]; then
  case " $* " in
    *" --dry-run "* | *" --yes "* | *" -y "* | *" --help "* | *" -h "*) ;;
    *) echo "restore.sh: to confirm a restore without a terminal, run it with RESTORE_CONFIRM=yes (or --yes)" >&2 ;;
  esac
fi
exit "$code"
