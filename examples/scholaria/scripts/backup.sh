#!/usr/bin/env bash
# Backs up PostgreSQL, Redis and Qdrant into a new set under BACKUP_DIR (default /backup).
#
#   ./scripts/backup.sh                         a manual backup of every component
#   ./scripts/backup.sh --tier daily --prune    what the scheduler does at 02:00
#   ./scripts/backup.sh --component postgres    one component only
#
# Every option of `scholaria-backup backup` is accepted (see --help). Exit codes: 0 complete,
# 1 failed, 2 bad usage or configuration, 3 partial (some components failed).
set -uo pipefail
ORIGINAL_ARGS=("$@")
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/_common.sh"

case "${1:-}" in
  -h | --help)
    sed -n '2,9p' "$SCRIPT_DIR/backup.sh" | sed 's/^# \{0,1\}//'
    echo
    ;;
esac
exec_cli backup "$@"
